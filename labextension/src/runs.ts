/**
 * One run as the panel shows it, rebuilt from its events only (run_started ... run_finished): the same way
 * whether they arrive live over the WebSocket or are read back from the store for the history, so what
 * the panel shows after a reload is what it showed live. Pure functions, no DOM, no network.
 */
import type * as nbformat from '@jupyterlab/nbformat';

import type { AgentEvent } from './wire';
import { num, str } from './values';

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
  /** What the model was shown of the notebook ("Context: 12 cells, 40 files, 3 variables"), else "". */
  context: string;
  steps: IStep[];
  tool: string;
  /** Who holds the session's sandbox while this run waits for it (a `waiting` event), else "". */
  waiting: string;
  answer: string;
  cells: ICellView[];
  errors: { kind: string; message: string; recoverable: boolean }[];
  status: 'running' | 'stopping' | 'ok' | 'error' | 'cancelled' | 'interrupted';
  lastSeq: number;
  model: string;
  /** Cells into the notebook: not for this run, to be asked, or done. */
  insert: 'none' | 'ask' | 'inserted' | 'declined';
  /** The corrected cell a "Fix with agent" run proposes (its `fix_proposed` event), and what the user did with it. */
  fix?: IFixView;
}

export interface IFixView {
  source: string;
  fixed: string;
  diff: string;
  state: 'proposed' | 'accepted' | 'sandbox' | 'rejected';
}

export type ChatItem =
  | { kind: 'user'; text: string; files: string[] }
  | { kind: 'run'; run: IRunView }
  | { kind: 'note'; text: string; state: 'working' | 'ok' | 'error' };

export function newRun(runId: string, request = ''): IRunView {
  return {
    runId,
    request,
    mode: '',
    context: '',
    steps: [],
    tool: '',
    waiting: '',
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
export function applyEvent(run: IRunView, event: AgentEvent): void {
  if (typeof event.seq === 'number') {
    run.lastSeq = Math.max(run.lastSeq, event.seq);
  }
  if (event.type !== 'waiting' && event.type !== 'run_started' && event.type !== 'usage') {
    run.waiting = ''; // the run has its session now
  }
  switch (event.type) {
    case 'waiting':
      run.waiting = str(event.holder, 'another run');
      break;
    case 'run_started':
      run.request = str(event.request, run.request);
      break;
    case 'context_gathered':
      run.context = str(event.summary);
      break;
    case 'classified':
      run.mode = str(event.mode);
      break;
    case 'plan_created':
      run.steps = (Array.isArray(event.steps) ? event.steps : []).map(s => ({
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
    case 'fix_proposed':
      run.fix = { source: str(event.source), fixed: str(event.fixed), diff: str(event.diff), state: 'proposed' };
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
 * How many of a run's cells ended (ran, failed or were skipped): whether there is anything to insert. The cells
 * themselves come ready from the server (`GET runs/{id}/cells`, built by cells.py as the magic's are).
 */
export function endedCells(run: IRunView): number {
  return run.cells.filter(c => c.state !== 'awaiting' && c.state !== 'running' && c.state !== 'stopped').length;
}
