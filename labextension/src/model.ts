/**
 * The side panel's state and the signals it emits; no DOM here (widget.tsx renders it). The jobs are in their
 * own modules: the socket (socket.ts), the runs and what the socket says of them (runcontrol.ts, runs.ts), the
 * history (history.ts) and the runs of the notebook's kernel read from the store (follow.ts), the request being
 * written (composer.ts) and the slash commands (commands.ts); this class holds the state they share, fetches,
 * and tells the widget when something changed.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { isCollectionCommand, runCollectionCommand, workingText } from './commands';
import { MODES, MODE_LABELS, Mode, runMessage, sameModel, withAttachment } from './composer';
import { INotebookContext } from './context';
import { AgentAPI, AgentAPIError } from './handler';
import { StoreFollower } from './follow';
import { historyRunIds, runFromEvents, stitchHistory } from './history';
import { ChatRuns, InsertPolicy, insertDecision } from './runcontrol';
import { ChatItem, IRunView } from './runs';
import { LOST, SessionSocket } from './socket';
import { message } from './values';
import type { ApprovalAction, ISessionInfo, IStoredMessage, SocketMessage } from './wire';
import type { ICellChip, INotebookBridge } from './cellchips';
import { withCells } from './cellchips';

export { MODES, MODE_LABELS, sameModel };
export type { InsertPolicy, Mode };

/** While no model could be listed (Ollama down), the panel asks again this often. */
export const MODELS_RETRY_MS = 60_000;

export interface IPanelSettings {
  insertCells: InsertPolicy;
  approval: boolean;
  mode: Mode;
}

export class AgentModel {
  constructor(readonly api: AgentAPI = new AgentAPI()) {}

  get items(): ChatItem[] {
    return this._runs.items;
  }

  sessions: ISessionInfo[] = [];
  sessionId = '';
  /** The contents path of the notebook whose session this is, when there is one. */
  notebookPath = '';
  /** What the open notebook shows now (its cells, active cell, selection), sent with each run. */
  notebookContext: () => Promise<INotebookContext | null> = () => Promise.resolve(null);
  models: string[] = [];
  defaultModel = '';
  model = '';
  mode: Mode = 'auto';
  approval = false;
  insertPolicy: InsertPolicy = 'always';
  attachments: string[] = [];
  error = '';
  /** Why the models could not be listed (Ollama down): said once, above the chat, with a Retry. */
  modelsProblem = '';
  modelsLoading = false;
  /** Text an example request (or another part of the panel) puts into the message box; `draftSeq` says when. */
  draft = '';
  draftSeq = 0;

  get connected(): boolean {
    return this._socket.connected;
  }
  /** Cells the user added to the chat ("Add selected cells to chat", a drag): sent with the next request. */
  cellChips: ICellChip[] = [];
  /** What the panel may do to the open notebook (replace or insert a cell), set by the plugin (cellactions.ts). */
  bridge: INotebookBridge | null = null;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A run this panel started finished: its cells may go into the notebook. */
  get runFinished(): ISignal<this, IRunView> {
    return this._runFinished;
  }

  /** The user said yes to "insert the cells" for a run (policy "ask"). */
  get insertRequested(): ISignal<this, IRunView> {
    return this._insertRequested;
  }

  get running(): IRunView | null {
    return this._runs.running;
  }

  applySettings(settings: IPanelSettings): void {
    this.insertPolicy = settings.insertCells;
    this.approval = settings.approval;
    this.mode = settings.mode;
    this.emit();
  }

  /** Show session `id` (its history, then its live runs), creating it on the server if it is new. */
  async selectSession(id: string, notebookPath = ''): Promise<void> {
    if (id === this.sessionId && this._socket.current) {
      return;
    }
    this._socket.close();
    this.sessionId = id;
    this.notebookPath = notebookPath;
    this._runs.clear();
    this.attachments = [];
    this.error = '';
    this.emit();
    await this.loadHistory();
    this._socket.open(this.sessionId);
    await this.refreshSessions();
  }

  async newChat(): Promise<void> {
    try {
      const stamp = new Date().toISOString().slice(0, 16).replace('T', ' ');
      const session = await this.api.createSession(undefined, `Chat ${stamp}`);
      await this.selectSession(session.id, '');
    } catch (error) {
      this.fail(error);
    }
  }

  async refreshSessions(): Promise<void> {
    try {
      this.sessions = await this.api.sessions();
    } catch (error) {
      this.fail(error);
    }
    this.emit();
  }

  /** Ask the server for the chat models again; while none can be listed, again every minute. */
  async refreshModels(): Promise<void> {
    window.clearTimeout(this._modelsTimer);
    this.modelsLoading = true;
    this.emit();
    try {
      const reply = await this.api.models();
      this.models = reply.models;
      this.defaultModel = reply.default;
      this.modelsProblem = '';
    } catch (error) {
      this.models = [];
      this.modelsProblem =
        error instanceof AgentAPIError && error.status === 502
          ? `The model server does not answer: ${error.message}` +
            (error.message.includes('ollama serve') ? ' Then press Retry.' : ' Start it, then press Retry.')
          : `The models could not be listed: ${message(error)}`;
    }
    this.modelsLoading = false;
    if (!this.models.length && !this._disposed) {
      this._modelsTimer = window.setTimeout(() => void this.refreshModels(), MODELS_RETRY_MS);
    }
    this.emit();
  }

  /** The model a run would use when Ollama answers but has not pulled it ('' when it has, or nothing is known). */
  get missingModel(): string {
    const wanted = this.model || this.defaultModel;
    return wanted && this.models.length && !this.models.some(m => sameModel(m, wanted)) ? wanted : '';
  }

  setDraft(text: string): void {
    this.draft = text;
    this.draftSeq += 1;
    this.emit();
  }

  /** The session's stored messages and, for each answer, its run's events (cells, plan, errors). */
  async loadHistory(): Promise<void> {
    const sessionId = this.sessionId;
    let messages: IStoredMessage[] = [];
    try {
      messages = await this.api.messages(sessionId);
    } catch (error) {
      this.fail(error);
      return;
    }
    const runs = new Map<string, IRunView>();
    await Promise.all(
      historyRunIds(messages).map(async runId => {
        try {
          runs.set(runId, runFromEvents(runId, await this.api.runEvents(runId)));
        } catch {
          // a run whose events are gone still shows its stored answer below
        }
      })
    );
    if (sessionId !== this.sessionId) {
      return; // the user switched sessions while this loaded
    }
    this.items.push(...stitchHistory(messages, runs));
    this.emit();
    const live = this.running;
    if (live) {
      this._socket.resume = { runId: live.runId, after: live.lastSeq };
    }
  }

  /**
   * Show the `%%agent` runs another process (the notebook's kernel) is making in this session, live, until
   * `done()` says the cell finished and the last run read has ended (follow.ts).
   */
  followMagicRuns(done: () => boolean): Promise<void> {
    return this._follower.follow(done);
  }

  /** Read the history again (a `%%agent` run in the notebook added to it); not while a run streams here. */
  async reloadHistory(): Promise<void> {
    if (this.running) {
      return;
    }
    this._runs.clear();
    await this.loadHistory();
  }

  showError(message: string): void {
    this.error = message;
    this.emit();
  }

  async attach(files: { name: string; body: Blob }[]): Promise<void> {
    if (!this.sessionId) {
      this.error = 'Open a notebook or start a new chat before attaching files.';
      this.emit();
      return;
    }
    for (const file of files) {
      try {
        this.attachments = withAttachment(this.attachments, await this.api.upload(this.sessionId, file.name, file.body));
      } catch (error) {
        this.fail(error);
      }
    }
    this.emit();
  }

  detach(name: string): void {
    this.attachments = this.attachments.filter(n => n !== name);
    this.emit();
  }

  send(text: string): boolean {
    const request = text.trim();
    if (!request) {
      return false;
    }
    if (isCollectionCommand(request)) {
      void this.runCollectionCommand(request);
      return true;
    }
    if (this.running) {
      this.error = 'A run is still going in this session: stop it or wait for it to finish.';
      this.emit();
      return false;
    }
    const socket = this._socket.current;
    if (!socket || !this._socket.isOpen) {
      this.error = 'Not connected to the server yet; try again in a moment (or reload the page if this stays).';
      this.emit();
      this._socket.open(this.sessionId);
      return false;
    }
    const run = runMessage(request, this);
    this._runs.start(request, [...this.attachments]);
    this.attachments = [];
    this.error = '';
    // The notebook's context (its kernel's variables take a moment, bounded in context.ts) goes with the run.
    const chips = this.cellChips;
    this.cellChips = [];
    void this.notebookContext().then(context => {
      const sent = withCells(context, chips);
      if (sent) {
        run.context = sent;
      }
      try {
        socket.send(JSON.stringify(run));
      } catch (error) {
        this.fail(error);
      }
    });
    this.emit();
    return true;
  }

  /**
   * Start a run from a message other than the composer's (a cell's `fix` / `explain`, cellactions.ts), shown in
   * the chat as `shown`; null when none can start now (the error says why).
   */
  startRun(message: Record<string, unknown>, shown: string): IRunView | null {
    const socket = this._socket.current;
    if (this.running || !socket || !this._socket.isOpen) {
      this.error = this.running
        ? 'A run is still going in this session: stop it or wait for it to finish.'
        : 'Not connected to the server yet; try again in a moment.';
      this.emit();
      return null;
    }
    if (this.model) {
      message.model = this.model;
    }
    const run = this._runs.start(shown, []);
    this.error = '';
    try {
      socket.send(JSON.stringify(message));
    } catch (error) {
      this.fail(error);
    }
    this.emit();
    return run;
  }

  addCells(chips: ICellChip[]): void {
    for (const chip of chips) {
      if (!this.cellChips.some(c => c.id === chip.id)) {
        this.cellChips.push(chip);
      }
    }
    this.emit();
  }

  removeCell(id: string): void {
    this.cellChips = this.cellChips.filter(c => c.id !== id);
    this.emit();
  }

  /** `/learn` and `/forget`: sent as typed to the server, whose wording is the note in the chat (no agent run). */
  async runCollectionCommand(text: string): Promise<void> {
    this.items.push({ kind: 'user', text, files: [] });
    const note: ChatItem = { kind: 'note', text: workingText(text), state: 'working' };
    this.items.push(note);
    this.error = '';
    this.emit();
    try {
      note.text = await runCollectionCommand(this.api, text);
      note.state = 'ok';
    } catch (error) {
      note.text = message(error);
      note.state = 'error';
    }
    this.emit();
  }

  stop(): void {
    if (!this._socket.current) {
      return;
    }
    const stop = this._runs.stop();
    if (stop) {
      this._socket.send(stop);
      this.emit();
    }
  }

  approve(run: IRunView, cellId: string, action: ApprovalAction, source = ''): void {
    if (!this._socket.current) {
      return;
    }
    this._socket.send(this._runs.approve(run, cellId, action, source));
    this.emit();
  }

  requestInsert(run: IRunView, yes: boolean): void {
    if (yes) {
      this._insertRequested.emit(run);
    }
    run.insert = yes ? 'inserted' : 'declined';
    this.emit();
  }

  setMode(mode: Mode): void {
    this.mode = mode;
    this.emit();
  }

  setModel(model: string): void {
    this.model = model;
    this.emit();
  }

  setApproval(on: boolean): void {
    this.approval = on;
    this.emit();
  }

  dismissError(): void {
    this.error = '';
    this.emit();
  }

  dispose(): void {
    this._disposed = true;
    window.clearTimeout(this._modelsTimer);
    this._socket.close();
    Signal.clearData(this);
  }

  private receive(raw: string): void {
    let event: SocketMessage;
    try {
      event = JSON.parse(raw) as SocketMessage;
    } catch {
      return; // the server only sends JSON; anything else is not ours to show
    }
    const received = this._runs.receive(event, cells => insertDecision(this.insertPolicy, this.notebookPath !== '', cells));
    if (received.kind === 'ignored') {
      return;
    }
    if (received.kind === 'refused') {
      this.error = received.message;
    } else if (received.finished) {
      if (received.own) {
        this._runFinished.emit(received.run);
      }
      void this.refreshSessions();
    }
    this.emit();
  }

  private fail(error: unknown): void {
    this.error = message(error);
    this.emit();
  }

  private emit(): void {
    this._changed.emit();
  }

  private _runs = new ChatRuns();
  private _socket = new SessionSocket(this.api, {
    message: raw => this.receive(raw),
    resumePoint: () => {
      const live = this.running;
      return live && live.runId ? { runId: live.runId, after: live.lastSeq } : null;
    },
    changed: () => this.emit(),
    gaveUp: () => {
      this.error = LOST;
    }
  });
  private _follower = new StoreFollower(this.api, this._runs, {
    sessionId: () => this.sessionId,
    disposed: () => this._disposed,
    changed: () => this.emit()
  });
  private _modelsTimer = 0;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
  private _runFinished = new Signal<this, IRunView>(this);
  private _insertRequested = new Signal<this, IRunView>(this);
}
