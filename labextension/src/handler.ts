/**
 * Typed calls to the server extension: REST under /llm-agent/api/ and the WebSocket of a session. The shapes
 * they carry are in wire.ts (re-exported here for the modules that know this one).
 */
import { URLExt } from '@jupyterlab/coreutils';
import type * as nbformat from '@jupyterlab/nbformat';
import { ServerConnection } from '@jupyterlab/services';

import type {
  ICollectionCommandResult,
  IModels,
  IOutputCells,
  IRunCells,
  IRunEvents,
  IServerSettings,
  ISessionInfo,
  IStoredMessage
} from './wire';

export type * from './wire';

const API = 'llm-agent/api';

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

  /** A run's generated cells, ready to insert below the active cell (the server builds them as the magic's). */
  runCells(runId: string): Promise<IRunCells> {
    return this.request<IRunCells>(['runs', encodeURIComponent(runId), 'cells'], {}, '?origin=panel');
  }

  /** The cells of a `%%agent` output (its bundle), ready to insert below cell `fromCell`, and the output after. */
  outputCells(output: nbformat.IOutput, fromCell: string): Promise<IOutputCells> {
    return this.request<IOutputCells>(['output-cells'], {
      method: 'POST',
      body: JSON.stringify({ output, from_cell: fromCell })
    });
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

  /** `/learn docs/ --collection papers` or `/forget ...` as typed: read and carried out by the server. */
  collectionCommand(command: string): Promise<ICollectionCommandResult> {
    return this.request<ICollectionCommandResult>(['collections'], { method: 'POST', body: JSON.stringify({ command }) });
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
