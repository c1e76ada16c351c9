/**
 * The side panel's state and the signals it emits; no DOM here (widget.tsx renders it).
 *
 * A run is rebuilt from its events only (run_started ... run_finished), the same way whether they
 * arrive live over the WebSocket or are read back from the store for the history, so what the panel
 * shows after a reload is what it showed live.
 */
import type * as nbformat from '@jupyterlab/nbformat';
import { ISignal, Signal } from '@lumino/signaling';

import { AgentAPI, AgentAPIError, ApprovalAction, IAgentEvent, IRunMessage, ISessionInfo, IStoredMessage } from './handler';

export const MODES = ['auto', 'chat', 'react', 'plan'] as const;
export type Mode = (typeof MODES)[number];
export type InsertPolicy = 'always' | 'ask' | 'never';
export type StepState = 'pending' | 'running' | 'ok' | 'error' | 'skipped';
export type CellState = 'awaiting' | 'running' | 'ok' | 'error' | 'timeout' | 'died' | 'skipped' | 'stopped';

export interface IStep {
  goal: string;
  tool: string;
  state: StepState;
  summary: string;
}

export interface ICellView {
  cellId: string;
  source: string;
  attempt: number;
  step: number | null;
  outputs: nbformat.IOutput[];
  state: CellState;
  failed: boolean;
  final: boolean;
  /** How the user let it run when approval was on ("approved", "edited"), from its code_cell event. */
  approval: string;
  originalSource: string;
}

export interface IRunView {
  runId: string;
  request: string;
  mode: string;
  steps: IStep[];
  tool: string;
  answer: string;
  cells: ICellView[];
  errors: { kind: string; message: string; recoverable: boolean }[];
  status: 'running' | 'stopping' | 'ok' | 'error' | 'cancelled' | 'interrupted';
  lastSeq: number;
  model: string;
  /** Cells into the notebook: not for this run, to be asked, or done. */
  insert: 'none' | 'ask' | 'inserted' | 'declined';
}

export type ChatItem = { kind: 'user'; text: string; files: string[] } | { kind: 'run'; run: IRunView };

const str = (value: unknown, fallback = ''): string => (typeof value === 'string' ? value : fallback);
const num = (value: unknown, fallback = 0): number => (typeof value === 'number' && isFinite(value) ? value : fallback);

export function newRun(runId: string, request = ''): IRunView {
  return {
    runId,
    request,
    mode: '',
    steps: [],
    tool: '',
    answer: '',
    cells: [],
    errors: [],
    status: 'running',
    lastSeq: 0,
    model: '',
    insert: 'none'
  };
}

function cellOf(run: IRunView, cellId: string): ICellView {
  let cell = run.cells.find(c => c.cellId === cellId);
  if (!cell) {
    cell = {
      cellId,
      source: '',
      attempt: 1,
      step: null,
      outputs: [],
      state: 'running',
      failed: false,
      final: false,
      approval: '',
      originalSource: ''
    };
    run.cells.push(cell);
  }
  return cell;
}

/** Apply one event to a run's view. Unknown types are ignored: a newer server may send more. */
export function applyEvent(run: IRunView, event: IAgentEvent): void {
  if (typeof event.seq === 'number') {
    run.lastSeq = Math.max(run.lastSeq, event.seq);
  }
  switch (event.type) {
    case 'run_started':
      run.request = str(event.request, run.request);
      break;
    case 'classified':
      run.mode = str(event.mode);
      break;
    case 'plan_created':
      run.steps = (Array.isArray(event.steps) ? event.steps : []).map((s: Record<string, unknown>) => ({
        goal: str(s?.goal),
        tool: str(s?.tool),
        state: 'pending',
        summary: ''
      }));
      break;
    case 'step_started': {
      const step = run.steps[num(event.index, -1)];
      if (step) {
        step.state = 'running';
      }
      break;
    }
    case 'step_finished': {
      const step = run.steps[num(event.index, -1)];
      if (step) {
        const status = str(event.status);
        step.state = status === 'ok' || status === 'error' || status === 'skipped' ? status : 'error';
        step.summary = str(event.summary);
      }
      break;
    }
    case 'tool_call':
      run.tool = str(event.tool);
      break;
    case 'code_cell': {
      const cell = cellOf(run, str(event.cell_id));
      cell.source = str(event.source);
      cell.attempt = num(event.attempt, 1);
      cell.step = typeof event.step === 'number' ? event.step : null;
      cell.approval = str(event.approval, cell.approval);
      cell.originalSource = str(event.original_source, cell.originalSource);
      if (cell.state !== 'awaiting' && cell.state !== 'skipped') {
        cell.state = 'running';
      }
      break;
    }
    case 'approval_requested': {
      const cell = cellOf(run, str(event.cell_id));
      cell.source = str(event.code, cell.source);
      cell.attempt = num(event.attempt, cell.attempt);
      cell.step = typeof event.step === 'number' ? event.step : cell.step;
      cell.state = 'awaiting';
      break;
    }
    case 'cell_output': {
      const cell = cellOf(run, str(event.cell_id));
      cell.outputs = Array.isArray(event.outputs) ? (event.outputs as nbformat.IOutput[]) : [];
      const status = str(event.status, 'ok');
      cell.state = status === 'error' || status === 'timeout' || status === 'died' || status === 'skipped' ? status : 'ok';
      cell.failed = event.failed === true;
      cell.final = event.final === true;
      break;
    }
    case 'token':
      run.answer += str(event.text);
      break;
    case 'answer':
      run.answer = str(event.markdown, run.answer);
      break;
    case 'usage':
      run.model = str(event.model, run.model);
      break;
    case 'error':
      run.errors.push({ kind: str(event.kind, 'error'), message: str(event.message), recoverable: event.recoverable === true });
      break;
    case 'run_finished': {
      const status = str(event.status);
      run.status = status === 'ok' || status === 'cancelled' ? status : 'error';
      run.tool = '';
      for (const cell of run.cells) {
        if (cell.state === 'awaiting' || cell.state === 'running') {
          cell.state = 'stopped';
        }
      }
      break;
    }
  }
}

/**
 * nbformat code cells of a run, with the provenance cells.py writes: failed attempts collapsed and tagged,
 * skipped ones kept (no outputs, tagged) so the notebook shows what was proposed.
 */
export function runCells(run: IRunView): nbformat.ICodeCell[] {
  return run.cells
    .filter(c => c.state !== 'awaiting' && c.state !== 'running' && c.state !== 'stopped')
    .map(c => {
      const skipped = c.state === 'skipped';
      const provenance: Record<string, unknown> = {
        run_id: run.runId,
        cell_id: c.cellId,
        step: c.step,
        attempt: c.attempt,
        status: c.failed ? 'failed' : c.final ? 'final' : c.state,
        execution_status: c.state,
        model: run.model
      };
      if (skipped || c.approval) {
        provenance.approval = skipped ? 'skipped' : c.approval;
      }
      if (c.approval === 'edited' && c.originalSource) {
        provenance.original_source = c.originalSource;
      }
      const metadata: Record<string, unknown> = { llm_agent: provenance };
      if (c.failed) {
        metadata.tags = ['llm-agent-failed'];
        metadata.jupyter = { source_hidden: true, outputs_hidden: true };
      } else if (skipped) {
        metadata.tags = ['llm-agent-skipped'];
      }
      return { cell_type: 'code', execution_count: null, metadata, outputs: c.outputs, source: c.source } as nbformat.ICodeCell;
    });
}

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
  models: string[] = [];
  defaultModel = '';
  model = '';
  mode: Mode = 'auto';
  approval = false;
  insertPolicy: InsertPolicy = 'always';
  attachments: string[] = [];
  error = '';
  notice = '';
  connected = false;

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

  async refreshModels(): Promise<void> {
    try {
      const reply = await this.api.models();
      this.models = reply.models;
      this.defaultModel = reply.default;
    } catch (error) {
      this.models = [];
      this.notice =
        error instanceof AgentAPIError && error.status === 502
          ? `Ollama does not answer: ${error.message} Start Ollama (ollama serve) or set LLMConfig.host, then reopen the panel.`
          : `The models could not be listed: ${error instanceof Error ? error.message : String(error)}`;
    }
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
    this._socket.send(JSON.stringify(message));
    this.emit();
    return true;
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
    this.notice = '';
    this.emit();
  }

  dispose(): void {
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
      if (this._pending && !this._pending.runId && (event.request === 'run' || event.request == null)) {
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
        const cells = runCells(run).length;
        if (cells && this.insertPolicy === 'ask') {
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
  private _retries = 0;
  private _resume: { runId: string; after: number } | null = null;
  private _pending: IRunView | null = null;
  private _ownRuns = new Set<string>();
  private _changed = new Signal<this, void>(this);
  private _runFinished = new Signal<this, IRunView>(this);
  private _insertRequested = new Signal<this, IRunView>(this);
}

/** How many of a session's latest runs the history reads back in full (older ones show their answer). */
const HISTORY_RUNS = 30;
