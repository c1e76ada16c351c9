/**
 * The shapes that travel between the panel and the server extension, with no JupyterLab import: the events
 * (generated from llm_agent_magic/events.py, see schema-gen/), the socket's own messages (handlers_runs.py)
 * and the REST replies. Readers ignore keys they do not know, as the Python side does, so a newer server does
 * not break an older tab.
 */
import type * as nbformat from '@jupyterlab/nbformat';

import type { INotebookContext } from './context';
import type { AgentEvent } from './generated/events';

export type * from './generated/events';

/** What a run's stored events hold besides its events: the streamed answer so far (events.PROGRESS_RECORDS). */
export interface IAnswerPartRecord {
  type: 'answer_part';
  run_id: string;
  text: string;
  seq?: number;
}

/** A message the socket could not carry out (the socket stays open); `request` is the type of that message. */
export interface IRefusal {
  type: 'error';
  message: string;
  request?: string | null;
  run_id?: undefined;
}

export interface IStopping {
  type: 'stopping';
  run_id: string;
}

/** After a resume from the store: the stored events of the run have all been sent. */
export interface IReplayed {
  type: 'replayed';
  run_id: string;
  status: string;
  last_seq: number;
}

/** Everything the session's WebSocket sends. */
export type SocketMessage = AgentEvent | IRefusal | IStopping | IReplayed;

/** One record of `GET runs/{id}/events`. */
export type StoredRecord = AgentEvent | IAnswerPartRecord;

export interface ISessionInfo {
  id: string;
  title: string;
  created_at: number;
  updated_at: number;
  message_count: number;
}

export interface IStoredMessage {
  id: number;
  role: string;
  content: string;
  mode: string;
  run_id: string | null;
  created_at: number;
}

export interface IModels {
  models: string[];
  default: string;
  host: string;
}

export interface IRunEvents {
  run_id: string;
  status: string;
  live: boolean;
  events: StoredRecord[];
}

/** The `application/vnd.llm-agent.cells+json` bundle of one run (cells.py's make_bundle). */
export interface IRunCells {
  version: number;
  run_id: string;
  session_id: string;
  status: string;
  cells: nbformat.ICodeCell[];
}

/** A `%%agent` output's cells as the panel inserts them, and the output once they are in (`POST output-cells`). */
export interface IOutputCells {
  run_id: string;
  cells: nbformat.ICodeCell[];
  output: nbformat.IOutput;
}

export type ApprovalAction = 'run' | 'edit' | 'skip';

export interface IRunMessage {
  type: 'run';
  request: string;
  mode: string;
  model?: string;
  files: string[];
  approval?: boolean;
  notebook_path: string;
  /** What the panel sees of the open notebook (context.ts). */
  context?: INotebookContext;
}

export interface IStopMessage {
  type: 'stop';
  run_id: string;
}

export interface IApprovalMessage {
  type: 'approval';
  run_id: string;
  cell_id: string;
  action: ApprovalAction;
  source?: string;
}

/** The user's choices from the Settings editor that the server applies to its sessions (empty or 0: its own). */
export interface IServerSettings {
  model: string;
  host: string;
  num_ctx: number;
  history_messages: number;
}

/** What `POST collections {"command": "/learn docs/"}` answers: a learn's or a forget's result, and its wording. */
export interface ICollectionCommandResult {
  collection: string;
  /** The result worded as `%agent learn` and `llm-agent learn` print it, one line each. */
  lines: string[];
}
