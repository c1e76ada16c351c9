/**
 * The runs of the chat and what the socket says about them: the run this panel asked for (until its
 * run_started names it), the runs it started (their cells may go into the notebook), stop and approval
 * replies. No DOM, no network: model.ts sends what these return and emits the signals.
 */
import { ChatItem, IRunView, applyEvent, endedCells, newRun } from './runs';
import { str } from './values';
import type { ApprovalAction, IApprovalMessage, IRefusal, IStopMessage, SocketMessage } from './wire';

export type InsertPolicy = 'always' | 'ask' | 'never';

/** The messages that start a run: a refusal of one ends the run the panel shows as pending. */
const STARTS_RUN = ['run', 'fix', 'explain'];

/** What a frame of the socket did to the chat. */
export type Received =
  | { kind: 'ignored' }
  | { kind: 'refused'; message: string }
  | { kind: 'applied'; run: IRunView; finished: boolean; own: boolean };

/**
 * Whether a run of this panel that ended with `cells` cells puts them into the notebook by itself ('inserted'),
 * offers to ('ask') or not. A chat that is not a notebook's session ("New chat") never inserts by itself.
 */
export function insertDecision(policy: InsertPolicy, ownNotebook: boolean, cells: number): IRunView['insert'] {
  if (cells && policy !== 'never' && (policy === 'ask' || !ownNotebook)) {
    return 'ask';
  }
  if (cells && policy === 'always') {
    return 'inserted';
  }
  return 'none';
}

/** A message the socket could not carry out: an error that names no run. */
function isRefusal(message: SocketMessage): message is IRefusal {
  return message.type === 'error' && !message.run_id;
}

export class ChatRuns {
  readonly items: ChatItem[] = [];

  /** The run asked for on the socket whose run_started has not come yet. */
  get pending(): IRunView | null {
    return this._pending;
  }

  /** The last run of the chat still going, if any. */
  get running(): IRunView | null {
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i];
      if (item.kind === 'run' && (item.run.status === 'running' || item.run.status === 'stopping')) {
        return item.run;
      }
    }
    return null;
  }

  findRun(runId: string): IRunView | null {
    for (const item of this.items) {
      if (item.kind === 'run' && item.run.runId === runId && runId) {
        return item.run;
      }
    }
    return null;
  }

  clear(): void {
    this.items.length = 0;
  }

  /** The user's request and the run that will answer it, shown before the server names the run. */
  start(request: string, files: string[]): IRunView {
    this.items.push({ kind: 'user', text: request, files });
    this._pending = newRun('', request);
    this.items.push({ kind: 'run', run: this._pending });
    return this._pending;
  }

  /** One frame of the session's socket, applied; `insert` decides what a run of this panel does with its cells. */
  receive(event: SocketMessage, insert: (cells: number) => IRunView['insert']): Received {
    if (isRefusal(event)) {
      const message = str(event.message, 'The server refused the request.');
      if (this._pending && !this._pending.runId && (event.request == null || STARTS_RUN.includes(event.request))) {
        this._pending.status = 'error';
        this._pending.errors.push({ kind: 'refused', message, recoverable: false });
        this._pending = null;
      }
      return { kind: 'refused', message };
    }
    if (event.type === 'stopping' || event.type === 'replayed') {
      return { kind: 'ignored' };
    }
    const runId = str(event.run_id);
    let run = this.findRun(runId);
    if (!run && event.type === 'run_started' && this._pending) {
      run = this._pending;
      run.runId = runId;
      this._pending = null;
      this._own.add(runId);
      run.insert = 'none';
    }
    if (!run) {
      run = newRun(runId);
      this.items.push({ kind: 'run', run });
    }
    if (typeof event.seq === 'number' && event.seq <= run.lastSeq && event.type !== 'run_started') {
      return { kind: 'ignored' }; // already applied (a replay after a reconnect overlaps what we had)
    }
    applyEvent(run, event);
    const finished = event.type === 'run_finished';
    const own = finished && this._own.delete(runId);
    if (own) {
      const decided = insert(endedCells(run));
      if (decided !== 'none') {
        run.insert = decided;
      }
    }
    return { kind: 'applied', run, finished, own };
  }

  /** The stop message for the running run (now 'stopping'), or null when none runs. */
  stop(): IStopMessage | null {
    const run = this.running;
    if (!run) {
      return null;
    }
    run.status = 'stopping';
    return { type: 'stop', run_id: run.runId };
  }

  /** The reply to a cell waiting for approval; the cell shows the choice at once (running, skipped, edited). */
  approve(run: IRunView, cellId: string, action: ApprovalAction, source = ''): IApprovalMessage {
    const reply: IApprovalMessage = { type: 'approval', run_id: run.runId, cell_id: cellId, action };
    if (action === 'edit') {
      reply.source = source;
    }
    const cell = run.cells.find(c => c.cellId === cellId);
    if (cell) {
      cell.state = action === 'skip' ? 'skipped' : 'running';
      if (action === 'edit') {
        cell.source = source;
      }
    }
    return reply;
  }

  /**
   * A run another process started, read from the store: added to the chat (with its request) if new, and
   * returned when it is one this panel follows from the store; null for a run of this panel's own socket or one
   * read with the history.
   */
  followStored(runId: string, request: string): IRunView | null {
    let run = this.findRun(runId);
    if (!run) {
      run = newRun(runId, request);
      this.items.push({ kind: 'user', text: request, files: [] });
      this.items.push({ kind: 'run', run });
      this._followed.add(runId);
    }
    return this._followed.has(runId) ? run : null;
  }

  /** A followed run ended: the store has nothing more of it. */
  unfollow(runId: string): void {
    this._followed.delete(runId);
  }

  private _pending: IRunView | null = null;
  private _own = new Set<string>();
  private _followed = new Set<string>();
}
