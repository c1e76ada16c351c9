/**
 * The side panel's state and the signals it emits; no DOM here (widget.tsx renders it). The runs it holds
 * are built by runs.ts from their events.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { AgentAPI, AgentAPIError, ApprovalAction, IAgentEvent, IRunMessage, ISessionInfo, IStoredMessage } from './handler';
import { ChatItem, IRunView, applyEvent, endedCells, newRun } from './runs';
import { INotebookContext } from './context';
import type { ICellChip, INotebookBridge } from './cellchips';
import { withCells } from './cellchips';


export const MODES = ['auto', 'chat', 'react', 'plan'] as const;
export type Mode = (typeof MODES)[number];
/** What the mode picker says for each mode (the server's names are the values). */
export const MODE_LABELS: Record<Mode, string> = { auto: 'Auto', chat: 'Answer only', react: 'Use tools', plan: 'Plan steps' };
/** While no model could be listed (Ollama down), the panel asks again this often. */
export const MODELS_RETRY_MS = 60_000;

/** Ollama's "qwen3" is "qwen3:latest". */
export function sameModel(a: string, b: string): boolean {
  const full = (name: string): string => (name.includes(':') ? name : `${name}:latest`);
  return full(a) === full(b);
}
export type InsertPolicy = 'always' | 'ask' | 'never';

const str = (value: unknown, fallback = ''): string => (typeof value === 'string' ? value : fallback);

export interface IPanelSettings {
  insertCells: InsertPolicy;
  approval: boolean;
  mode: Mode;
}

export class AgentModel {
  constructor(readonly api: AgentAPI = new AgentAPI()) {}

  readonly items: ChatItem[] = [];
  sessions: ISessionInfo[] = [];
  sessionId = '';
  /** The contents path of the notebook whose session this is, when there is one. */
  notebookPath = '';
  /** What the open notebook shows now (its cells, active cell, selection), sent with each run. */
  notebookContext: () => Promise<INotebookContext | null> = async () => null;
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
  connected = false;
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
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i];
      if (item.kind === 'run' && (item.run.status === 'running' || item.run.status === 'stopping')) {
        return item.run;
      }
    }
    return null;
  }

  applySettings(settings: IPanelSettings): void {
    this.insertPolicy = settings.insertCells;
    this.approval = settings.approval;
    this.mode = settings.mode;
    this.emit();
  }

  /** Show session `id` (its history, then its live runs), creating it on the server if it is new. */
  async selectSession(id: string, notebookPath = ''): Promise<void> {
    if (id === this.sessionId && this._socket) {
      return;
    }
    this.closeSocket();
    this.sessionId = id;
    this.notebookPath = notebookPath;
    this.items.length = 0;
    this.attachments = [];
    this.error = '';
    this.emit();
    await this.loadHistory();
    this.openSocket();
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
          : `The models could not be listed: ${error instanceof Error ? error.message : String(error)}`;
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
    const runIds = [...new Set(messages.map(m => m.run_id).filter((r): r is string => !!r))].slice(-HISTORY_RUNS);
    const runs = new Map<string, IRunView>();
    await Promise.all(
      runIds.map(async runId => {
        try {
          const reply = await this.api.runEvents(runId);
          const run = newRun(runId);
          reply.events.forEach(e => applyEvent(run, e));
          if (reply.status === 'interrupted') {
            run.status = 'interrupted';
          } else if (reply.live && run.status !== 'running') {
            run.status = 'running';
          }
          runs.set(runId, run);
        } catch {
          // a run whose events are gone still shows its stored answer below
        }
      })
    );
    if (sessionId !== this.sessionId) {
      return; // the user switched sessions while this loaded
    }
    const shown = new Set<string>();
    for (const message of messages) {
      if (message.role === 'user') {
        this.items.push({ kind: 'user', text: message.content, files: [] });
        const run = message.run_id ? runs.get(message.run_id) : undefined;
        if (run && !shown.has(run.runId)) {
          shown.add(run.runId);
          this.items.push({ kind: 'run', run });
        }
      } else if (message.role === 'assistant' && !(message.run_id && shown.has(message.run_id))) {
        const run = (message.run_id && runs.get(message.run_id)) || newRun(message.run_id ?? '');
        if (!run.answer) {
          run.answer = message.content;
          run.status = run.status === 'running' ? 'ok' : run.status;
        }
        shown.add(run.runId);
        this.items.push({ kind: 'run', run });
      }
    }
    this.emit();
    const live = this.running;
    if (live) {
      this._resume = { runId: live.runId, after: live.lastSeq };
    }
  }

  /**
   * Show the `%%agent` runs another process (the notebook's kernel) is making in this session, live: their
   * request and events are in the store as they happen, read here every FOLLOW_MS until `done()` says the
   * cell finished and the last run read has ended.
   */
  async followMagicRuns(done: () => boolean): Promise<void> {
    const sessionId = this.sessionId;
    if (!sessionId || this._following) {
      return;
    }
    this._following = true;
    try {
      let finishedAt = 0;
      while (sessionId === this.sessionId && !this._disposed) {
        const live = await this.readStoredRuns(sessionId);
        if (done() && !live) {
          if (++finishedAt > 1) {
            break; // one more look after the cell ended, for the run's last events
          }
        }
        await new Promise(resolve => window.setTimeout(resolve, FOLLOW_MS));
      }
    } finally {
      this._following = false;
    }
  }

  /** New runs of the session in the store, and the new events of those still going; true while one is. */
  private async readStoredRuns(sessionId: string): Promise<boolean> {
    let messages: IStoredMessage[];
    try {
      messages = await this.api.messages(sessionId);
    } catch {
      return false; // the next look tries again
    }
    let live = false;
    for (const message of messages) {
      if (message.role !== 'user' || !message.run_id || sessionId !== this.sessionId || this._pending) {
        continue;
      }
      let run = this.findRun(message.run_id);
      if (!run) {
        run = newRun(message.run_id, message.content);
        this.items.push({ kind: 'user', text: message.content, files: [] });
        this.items.push({ kind: 'run', run });
        this._followed.add(message.run_id);
      }
      if (!this._followed.has(run.runId)) {
        continue; // a run of this panel (its socket brings the events) or one read from the history
      }
      try {
        const reply = await this.api.runEvents(run.runId, run.lastSeq);
        for (const event of reply.events) {
          if (event.type === 'answer_part') {
            // What streamed since the last part (the store keeps no single tokens); the answer event replaces it.
            run.answer += str(event.text);
            run.lastSeq = Math.max(run.lastSeq, typeof event.seq === 'number' ? event.seq : 0);
          } else {
            applyEvent(run, event);
          }
        }
        if (reply.status === 'running') {
          run.status = run.status === 'stopping' ? 'stopping' : 'running';
          live = true;
        } else {
          this._followed.delete(run.runId);
          if (run.status === 'running') {
            run.status = reply.status === 'interrupted' ? 'interrupted' : (reply.status as IRunView['status']);
          }
        }
      } catch {
        live = true; // not readable yet: look again
      }
    }
    this.emit();
    return live;
  }

  /** Read the history again (a `%%agent` run in the notebook added to it); not while a run streams here. */
  async reloadHistory(): Promise<void> {
    if (this.running) {
      return;
    }
    this.items.length = 0;
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
        const name = await this.api.upload(this.sessionId, file.name, file.body);
        if (!this.attachments.includes(name)) {
          this.attachments.push(name);
        }
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
    const command = parseCollectionCommand(request);
    if (command) {
      void this.runCollectionCommand(request, command);
      return true;
    }
    if (this.running) {
      this.error = 'A run is still going in this session: stop it or wait for it to finish.';
      this.emit();
      return false;
    }
    if (!this._socket || this._socket.readyState !== WebSocket.OPEN) {
      this.error = 'Not connected to the server yet; try again in a moment (or reload the page if this stays).';
      this.emit();
      this.openSocket();
      return false;
    }
    const message: IRunMessage = {
      type: 'run',
      request,
      mode: this.mode,
      files: [...this.attachments],
      notebook_path: this.notebookPath
    };
    if (this.approval) {
      message.approval = true; // left out, the server's own AgentConfig.approval decides
    }
    if (this.model) {
      message.model = this.model;
    }
    this.items.push({ kind: 'user', text: request, files: [...this.attachments] });
    this._pending = newRun('', request);
    this.items.push({ kind: 'run', run: this._pending });
    this.attachments = [];
    this.error = '';
    const socket = this._socket;
    // The notebook's context (its kernel's variables take a moment, bounded in context.ts) goes with the run.
    const chips = this.cellChips;
    this.cellChips = [];
    void this.notebookContext().then(context => {
      const sent = withCells(context, chips);
      if (sent) {
        message.context = sent;
      }
      try {
        socket.send(JSON.stringify(message));
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
    if (this.running || !this._socket || this._socket.readyState !== WebSocket.OPEN) {
      this.error = this.running
        ? 'A run is still going in this session: stop it or wait for it to finish.'
        : 'Not connected to the server yet; try again in a moment.';
      this.emit();
      return null;
    }
    if (this.model) {
      message.model = this.model;
    }
    this.items.push({ kind: 'user', text: shown, files: [] });
    const run = newRun('', shown);
    this._pending = run;
    this.items.push({ kind: 'run', run });
    this.error = '';
    try {
      this._socket.send(JSON.stringify(message));
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

  /** `/learn` and `/forget`: the collections routes, answered in the chat as a note (no agent run). */
  async runCollectionCommand(text: string, command: ICollectionCommand): Promise<void> {
    if ('error' in command) {
      this.items.push({ kind: 'note', text: command.error, state: 'error' });
      this.emit();
      return;
    }
    this.items.push({ kind: 'user', text, files: [] });
    const note: ChatItem = { kind: 'note', text: '', state: 'working' };
    this.items.push(note);
    this.error = '';
    try {
      const collection = command.collection || (await this.api.collections()).default;
      if (command.verb === 'learn') {
        note.text = `Learning ${command.paths.join(', ')} into the collection ${collection}…`;
        this.emit();
        const result = await this.api.learn(collection, command.paths);
        const skipped = Object.entries(result.skipped).map(([path, why]) => `${path} (${why})`);
        note.text =
          `Learned into ${result.collection}: ${result.added.length} added, ${result.changed.length} changed, ` +
          `${result.unchanged.length} unchanged, ${result.removed.length} removed (${result.embedded_chunks} chunks embedded); ` +
          `it now holds ${result.files} files, ${result.chunks} chunks.` +
          (skipped.length ? ` Skipped: ${skipped.join('; ')}.` : '');
      } else {
        note.text = `Forgetting ${command.all ? 'everything' : command.paths.join(', ')} in ${collection}…`;
        this.emit();
        const result = await this.api.forget(collection, command.paths, command.all);
        note.text = result.deleted
          ? `Deleted the collection ${result.collection}.`
          : `Forgot ${result.removed.length} files of ${result.collection}; it now holds ${result.files} files, ` +
            `${result.chunks} chunks.` +
            (result.not_found.length ? ` Not in it: ${result.not_found.join(', ')}.` : '');
      }
      note.state = 'ok';
    } catch (error) {
      note.text = error instanceof Error ? error.message : String(error);
      note.state = 'error';
    }
    this.emit();
  }

  stop(): void {
    const run = this.running;
    if (!run || !this._socket) {
      return;
    }
    this._socket.send(JSON.stringify({ type: 'stop', run_id: run.runId }));
    run.status = 'stopping';
    this.emit();
  }

  approve(run: IRunView, cellId: string, action: ApprovalAction, source = ''): void {
    if (!this._socket) {
      return;
    }
    const reply: Record<string, string> = { type: 'approval', run_id: run.runId, cell_id: cellId, action };
    if (action === 'edit') {
      reply.source = source;
    }
    this._socket.send(JSON.stringify(reply));
    const cell = run.cells.find(c => c.cellId === cellId);
    if (cell) {
      cell.state = action === 'skip' ? 'skipped' : 'running';
      if (action === 'edit') {
        cell.source = source;
      }
    }
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
    this.closeSocket();
    Signal.clearData(this);
  }

  private openSocket(): void {
    if (!this.sessionId) {
      return;
    }
    this.closeSocket();
    const resume = this._resume;
    this._resume = null;
    const socket = this.api.socket(this.sessionId, resume ?? undefined);
    this._socket = socket;
    socket.onopen = () => {
      this.connected = true;
      this._retries = 0;
      this.emit();
    };
    socket.onmessage = message => this.receive(String(message.data));
    socket.onclose = () => {
      if (this._socket !== socket) {
        return; // closed on purpose
      }
      this._socket = null;
      this.connected = false;
      const live = this.running;
      if (live && live.runId) {
        this._resume = { runId: live.runId, after: live.lastSeq };
      }
      this._retries += 1;
      if (this._retries > 5) {
        this.error = 'Lost the connection to the server. Check that Jupyter is still running, then reload the page.';
      } else {
        window.setTimeout(() => this.openSocket(), 500 * this._retries);
      }
      this.emit();
    };
  }

  private closeSocket(): void {
    const socket = this._socket;
    this._socket = null;
    this.connected = false;
    socket?.close();
  }

  private receive(raw: string): void {
    let event: IAgentEvent;
    try {
      event = JSON.parse(raw) as IAgentEvent;
    } catch {
      return; // the server only sends JSON; anything else is not ours to show
    }
    if (event.type === 'error' && !event.run_id) {
      this.error = str(event.message, 'The server refused the request.');
      if (this._pending && !this._pending.runId && (event.request == null || STARTS_RUN.includes(str(event.request)))) {
        this._pending.status = 'error';
        this._pending.errors.push({ kind: 'refused', message: this.error, recoverable: false });
        this._pending = null;
      }
      this.emit();
      return;
    }
    if (event.type === 'stopping' || event.type === 'replayed') {
      return;
    }
    const runId = str(event.run_id);
    let run = this.findRun(runId);
    if (!run && event.type === 'run_started' && this._pending) {
      run = this._pending;
      run.runId = runId;
      this._pending = null;
      this._ownRuns.add(runId);
      run.insert = 'none';
    }
    if (!run) {
      run = newRun(runId);
      this.items.push({ kind: 'run', run });
    }
    if (typeof event.seq === 'number' && event.seq <= run.lastSeq && event.type !== 'run_started') {
      return; // already applied (a replay after a reconnect overlaps what we had)
    }
    applyEvent(run, event);
    if (event.type === 'run_finished') {
      if (this._ownRuns.has(runId)) {
        this._ownRuns.delete(runId);
        const cells = endedCells(run);
        // A chat that is not a notebook's session ("New chat") never puts cells into a notebook by itself: the
        // run offers "Insert the cells into the notebook" instead.
        const ownNotebook = this.notebookPath !== '';
        if (cells && this.insertPolicy !== 'never' && (this.insertPolicy === 'ask' || !ownNotebook)) {
          run.insert = 'ask';
        } else if (cells && this.insertPolicy === 'always') {
          run.insert = 'inserted';
        }
        this._runFinished.emit(run);
      }
      void this.refreshSessions();
    }
    this.emit();
  }

  private findRun(runId: string): IRunView | null {
    for (const item of this.items) {
      if (item.kind === 'run' && item.run.runId === runId && runId) {
        return item.run;
      }
    }
    return null;
  }

  private fail(error: unknown): void {
    this.error = error instanceof Error ? error.message : String(error);
    this.emit();
  }

  private emit(): void {
    this._changed.emit();
  }

  private _socket: WebSocket | null = null;
  private _following = false;
  private _followed = new Set<string>();
  private _modelsTimer = 0;
  private _disposed = false;
  private _retries = 0;
  private _resume: { runId: string; after: number } | null = null;
  private _pending: IRunView | null = null;
  private _ownRuns = new Set<string>();
  private _changed = new Signal<this, void>(this);
  private _runFinished = new Signal<this, IRunView>(this);
  private _insertRequested = new Signal<this, IRunView>(this);
}

/** The messages that start a run: a refusal of one ends the run the panel shows as pending. */
const STARTS_RUN = ['run', 'fix', 'explain'];

/** How often the panel reads the store while a `%%agent` cell of its notebook runs. */
const FOLLOW_MS = 400;

/** How many of a session's latest runs the history reads back in full (older ones show their answer). */
const HISTORY_RUNS = 30;

type ICollectionCommand =
  | { verb: 'learn' | 'forget'; paths: string[]; collection: string; all: boolean }
  | { error: string };

const USAGE =
  'Use /learn PATH... [--collection NAME] or /forget PATH... | --all [--collection NAME] ' +
  '(paths under the folder Jupyter serves).';

/** `/learn docs/ notes.md --collection papers`, `/forget --all`: null when the text is not such a command. */
export function parseCollectionCommand(text: string): ICollectionCommand | null {
  const words = text.split(/\s+/);
  const verb = words[0] === '/learn' ? 'learn' : words[0] === '/forget' ? 'forget' : null;
  if (!verb) {
    return null;
  }
  const paths: string[] = [];
  let collection = '';
  let all = false;
  for (let i = 1; i < words.length; i++) {
    if (words[i] === '--collection') {
      collection = words[++i] ?? '';
      if (!collection) {
        return { error: `--collection needs a name. ${USAGE}` };
      }
    } else if (words[i] === '--all' && verb === 'forget') {
      all = true;
    } else if (words[i].startsWith('--')) {
      return { error: `Unknown option ${words[i]}. ${USAGE}` };
    } else {
      paths.push(words[i]);
    }
  }
  if (!paths.length && !all) {
    return { error: `/${verb} needs at least one path. ${USAGE}` };
  }
  return { verb, paths, collection, all };
}
