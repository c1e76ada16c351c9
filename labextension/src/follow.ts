/**
 * The `%%agent` runs another process (the notebook's kernel) makes in the panel's session, shown live: their
 * request and events are in the store as they happen, read every FOLLOW_MS while the cell runs. No JupyterLab
 * import: the API comes in as an argument, the chat's runs are runcontrol.ts's.
 */
import { applyFollowed } from './history';
import type { ChatRuns } from './runcontrol';
import type { IRunEvents, IStoredMessage } from './wire';

/** How often the panel reads the store while a `%%agent` cell of its notebook runs. */
export const FOLLOW_MS = 400;

/** What reading the store needs (handler.ts's AgentAPI). */
export interface IStoreAPI {
  messages(sessionId: string): Promise<IStoredMessage[]>;
  runEvents(runId: string, after?: number): Promise<IRunEvents>;
}

export interface IFollowHooks {
  /** The session the panel shows now: following stops when it is another. */
  sessionId(): string;
  /** The panel is gone. */
  disposed(): boolean;
  changed(): void;
}

export class StoreFollower {
  constructor(
    private readonly api: IStoreAPI,
    private readonly runs: ChatRuns,
    private readonly hooks: IFollowHooks
  ) {}

  /** Read the store until `done()` says the cell finished and the last run read has ended (one look more). */
  async follow(done: () => boolean): Promise<void> {
    const sessionId = this.hooks.sessionId();
    if (!sessionId || this._following) {
      return;
    }
    this._following = true;
    try {
      let finishedAt = 0;
      while (sessionId === this.hooks.sessionId() && !this.hooks.disposed()) {
        const live = await this.read(sessionId);
        if (done() && !live) {
          if (++finishedAt > 1) {
            break; // one more look after the cell ended, for the run's last events
          }
        }
        await new Promise(resolve => setTimeout(resolve, FOLLOW_MS));
      }
    } finally {
      this._following = false;
    }
  }

  /** New runs of the session in the store, and the new events of those still going; true while one is. */
  async read(sessionId: string): Promise<boolean> {
    let messages: IStoredMessage[];
    try {
      messages = await this.api.messages(sessionId);
    } catch {
      return false; // the next look tries again
    }
    let live = false;
    for (const stored of messages) {
      if (stored.role !== 'user' || !stored.run_id || sessionId !== this.hooks.sessionId() || this.runs.pending) {
        continue;
      }
      // Not followed: a run of this panel (its socket brings the events) or one read from the history.
      const run = this.runs.followStored(stored.run_id, stored.content);
      if (!run) {
        continue;
      }
      try {
        if (applyFollowed(run, await this.api.runEvents(run.runId, run.lastSeq))) {
          live = true;
        } else {
          this.runs.unfollow(run.runId);
        }
      } catch {
        live = true; // not readable yet: look again
      }
    }
    this.hooks.changed();
    return live;
  }

  private _following = false;
}
