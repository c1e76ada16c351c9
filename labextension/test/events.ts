/** Events as the server sends them (to_dict() plus seq), for the tests: every field, so the types hold. */
import type {
  AgentEvent,
  IAnswerEvent,
  IApprovalRequestedEvent,
  ICellOutputEvent,
  ICodeCellEvent,
  IErrorEvent,
  IPlanCreatedEvent,
  IRunFinishedEvent,
  IRunStartedEvent,
  IStepFinishedEvent,
  IStepStartedEvent,
  ITokenEvent,
  IUsageEvent,
  IWaitingEvent
} from '../src/wire';

let seq = 0;
const base = (runId: string) => ({ run_id: runId, ts: 1, seq: ++seq });

export function resetSeq(): void {
  seq = 0;
}

export const started = (runId: string, request = 'plot it'): IRunStartedEvent => ({
  type: 'run_started',
  ...base(runId),
  request,
  mode_requested: 'auto',
  session_id: 's',
  request_key: ''
});
export const waiting = (runId: string, holder: string): IWaitingEvent => ({
  type: 'waiting',
  ...base(runId),
  holder,
  front_end: 'magic',
  pid: 7,
  since: null,
  timeout: 30
});
export const plan = (runId: string, goals: string[]): IPlanCreatedEvent => ({
  type: 'plan_created',
  ...base(runId),
  steps: goals.map(goal => ({ goal, tool: 'python_coder', success_criteria: 'done' })),
  note: ''
});
export const stepStarted = (runId: string, index: number): IStepStartedEvent => ({
  type: 'step_started',
  ...base(runId),
  index,
  goal: ''
});
export const stepFinished = (runId: string, index: number, status: string): IStepFinishedEvent => ({
  type: 'step_finished',
  ...base(runId),
  index,
  status,
  summary: `step ${index} ${status}`
});
export const code = (runId: string, cellId: string, source: string, attempt = 1): ICodeCellEvent => ({
  type: 'code_cell',
  ...base(runId),
  source,
  attempt,
  step: 0,
  cell_id: cellId,
  approval: '',
  original_source: ''
});
export const asked = (runId: string, cellId: string, source: string): IApprovalRequestedEvent => ({
  type: 'approval_requested',
  ...base(runId),
  cell_id: cellId,
  code: source,
  attempt: 1,
  step: null,
  task: '',
  reason: '',
  tool: 'python_coder',
  actions: ['run', 'edit', 'skip'],
  timeout: 0
});
export const output = (
  runId: string,
  cellId: string,
  status: ICellOutputEvent['status'],
  flags: { final?: boolean; failed?: boolean } = {}
): ICellOutputEvent => ({
  type: 'cell_output',
  ...base(runId),
  cell_id: cellId,
  outputs: [{ output_type: 'stream', name: 'stdout', text: 'ok\n' }],
  status,
  duration: 0.1,
  final: flags.final ?? false,
  failed: flags.failed ?? false
});
export const token = (runId: string, text: string): ITokenEvent => ({ type: 'token', ...base(runId), text });
export const answer = (runId: string, markdown: string): IAnswerEvent => ({ type: 'answer', ...base(runId), markdown });
export const usage = (runId: string, model: string): IUsageEvent => ({
  type: 'usage',
  ...base(runId),
  prompt_tokens: 1,
  completion_tokens: 1,
  duration: 0,
  purpose: 'answer',
  model
});
export const error = (runId: string, message: string): IErrorEvent => ({
  type: 'error',
  ...base(runId),
  kind: 'CodeError',
  message,
  recoverable: true
});
export const finished = (runId: string, status: IRunFinishedEvent['status']): IRunFinishedEvent => ({
  type: 'run_finished',
  ...base(runId),
  status,
  duration: 1
});

export type { AgentEvent };
