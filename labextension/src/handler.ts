/**
 * Typed calls to the server extension: REST under /llm-agent/api/ and the WebSocket of a session.
 *
 * The shapes mirror llm_agent_magic/events.py (to_dict + seq) and run_requests.py; readers ignore
 * keys they do not know, as the Python side does, so a newer server does not break an older tab.
 */
import { URLExt } from '@jupyterlab/coreutils';
import type * as nbformat from '@jupyterlab/nbformat';
import { ServerConnection } from '@jupyterlab/services';
import { INotebookContext } from './context';

const API = 'llm-agent/api';

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

/** One event as the server sends it: the common fields, and whatever its type carries. */
export interface IAgentEvent {
  type: string;
  run_id?: string;
  seq?: number;
  ts?: number;
  [key: string]: unknown;
}

export interface IRunEvents {
  run_id: string;
  status: string;
  live: boolean;
  events: IAgentEvent[];
}

/** The `application/vnd.llm-agent.cells+json` bundle of one run (cells.py's make_bundle). */
export interface IRunCells {
  version: number;
  run_id: string;
  session_id: string;
  status: string;
  cells: nbformat.ICodeCell[];
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

/** The user's choices from the Settings editor that the server applies to its sessions (empty or 0: its own). */
export interface IServerSettings {
  model: string;
  host: string;
  num_ctx: number;
  history_messages: number;
}

export interface ICollections {
  collections: { name: string; files: number; chunks: number }[];
  default: string;
}

export interface ILearnResult {
  collection: string;
  files: number;
  chunks: number;
  added: string[];
  changed: string[];
  unchanged: string[];
  removed: string[];
  skipped: Record<string, string>;
  embedded_chunks: number;
}

export interface IForgetResult {
  collection: string;
  removed: string[];
  not_found: string[];
  files: number;
  chunks: number;
  deleted: boolean;
}

/** A server answer that was not 2xx, with the message the server wrote for a person. */
export class AgentAPIError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

/** What is wrong when the server cannot be reached at all, said so that the user knows what to do. */
function unreachable(error: unknown): AgentAPIError {
  const detail = error instanceof Error ? error.message : String(error);
  return new AgentAPIError(
    `The Jupyter server did not answer (${detail}). Check that it is still running, then reload the page.`,
    0
  );
}

export class AgentAPI {
  constructor(readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()) {}

  private url(...parts: string[]): string {
    return URLExt.join(this.settings.baseUrl, API, ...parts);
  }

  private async request<T>(path: string[], init: RequestInit = {}, query = ''): Promise<T> {
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(this.url(...path) + query, init, this.settings);
    } catch (error) {
      throw unreachable(error);
    }
    const text = await response.text();
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message =
        data && typeof data === 'object' && typeof (data as { message?: unknown }).message === 'string'
          ? (data as { message: string }).message
          : `${response.status} ${response.statusText}`;
      throw new AgentAPIError(message, response.status);
    }
    return data as T;
  }

  async sessions(): Promise<ISessionInfo[]> {
    return (await this.request<{ sessions: ISessionInfo[] }>(['sessions'])).sessions;
  }

  createSession(id?: string, title = ''): Promise<ISessionInfo> {
    return this.request<ISessionInfo>(['sessions'], {
      method: 'POST',
      body: JSON.stringify(id ? { id, title } : { title })
    });
  }

  async messages(sessionId: string): Promise<IStoredMessage[]> {
    try {
      const reply = await this.request<{ messages: IStoredMessage[] }>(['sessions', encodeURIComponent(sessionId), 'messages']);
      return reply.messages;
    } catch (error) {
      if (error instanceof AgentAPIError && error.status === 404) {
        return []; // a notebook that never talked to the agent has no session yet
      }
      throw error;
    }
  }

  runEvents(runId: string, after = 0): Promise<IRunEvents> {
    return this.request<IRunEvents>(['runs', encodeURIComponent(runId), 'events'], {}, `?after=${after}`);
  }

  /** A run's generated cells, ready to insert (the server builds them as the magic's are built). */
  runCells(runId: string): Promise<IRunCells> {
    return this.request<IRunCells>(['runs', encodeURIComponent(runId), 'cells']);
  }

  models(): Promise<IModels> {
    return this.request<IModels>(['models']);
  }

  /** Give the server the user's settings (all of them: what is empty goes back to the server's own). */
  putSettings(settings: IServerSettings): Promise<IServerSettings> {
    return this.request<IServerSettings>(['settings'], { method: 'PUT', body: JSON.stringify(settings) });
  }

  /** The session id `%%agent` uses in the kernel of the notebook at this contents path. */
  async notebookSession(path: string): Promise<string> {
    const reply = await this.request<{ session_id: string }>(['notebook-session'], {}, `?path=${encodeURIComponent(path)}`);
    return reply.session_id;
  }

  async upload(sessionId: string, name: string, body: Blob): Promise<string> {
    const reply = await this.request<{ files: { name: string }[] }>(
      ['sessions', encodeURIComponent(sessionId), 'files'],
      { method: 'POST', body },
      `?name=${encodeURIComponent(name)}`
    );
    return reply.files[0]?.name ?? name;
  }

  /** The retrieval collections, and the one `/learn` and `/forget` use when none is named. */
  collections(): Promise<ICollections> {
    return this.request<ICollections>(['collections']);
  }

  /** Embed files and folders (paths under the server's root folder) into a collection. */
  learn(collection: string, paths: string[]): Promise<ILearnResult> {
    return this.request<ILearnResult>(['collections', encodeURIComponent(collection), 'learn'], {
      method: 'POST',
      body: JSON.stringify({ paths })
    });
  }

  /** Forget files (every file under a folder) of a collection, or the whole collection. */
  forget(collection: string, paths: string[], everything: boolean): Promise<IForgetResult> {
    return this.request<IForgetResult>(['collections', encodeURIComponent(collection), 'forget'], {
      method: 'POST',
      body: JSON.stringify(everything ? { all: true } : { paths })
    });
  }

  /** The session's WebSocket; `resume` asks for the events of a run after a seq it already has. */
  socket(sessionId: string, resume?: { runId: string; after: number }): WebSocket {
    let url = URLExt.join(this.settings.wsUrl, API, 'sessions', encodeURIComponent(sessionId), 'ws');
    const query: string[] = [];
    if (resume) {
      query.push(`run_id=${encodeURIComponent(resume.runId)}`, `after=${resume.after}`);
    }
    if (this.settings.token) {
      query.push(`token=${encodeURIComponent(this.settings.token)}`);
    }
    if (query.length) {
      url += `?${query.join('&')}`;
    }
    return new this.settings.WebSocket(url);
  }
}
