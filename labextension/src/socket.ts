/**
 * The WebSocket of the panel's session: opened for a session, closed on purpose when the session changes, and
 * opened again after a drop (500 ms, 1 s, ... five times), resuming the run that was streaming after the last
 * event the panel has. No JupyterLab import: the API that makes the socket comes in as an argument.
 */

/** A run to follow from the event after `after` (its seq) when the socket opens. */
export interface IResume {
  runId: string;
  after: number;
}

/** What makes the socket (handler.ts's AgentAPI). */
export interface ISocketAPI {
  socket(sessionId: string, resume?: IResume): WebSocket;
}

export interface ISocketHooks {
  /** A frame from the server. */
  message(raw: string): void;
  /** Where to pick up after a drop: the run of this session still streaming, if any. */
  resumePoint(): IResume | null;
  /** The socket opened or closed: `connected` changed. */
  changed(): void;
  /** The socket dropped more than MAX_RETRIES times in a row: no more tries (the panel says `LOST`). */
  gaveUp(): void;
}

/** How many times in a row the socket is opened again after it dropped before the panel says so. */
export const MAX_RETRIES = 5;
export const RETRY_MS = 500;

export const LOST = 'Lost the connection to the server. Check that Jupyter is still running, then reload the page.';

export class SessionSocket {
  constructor(
    private readonly api: ISocketAPI,
    private readonly hooks: ISocketHooks
  ) {}

  connected = false;
  /** Where the next socket opened starts (set by whoever read the history of a live run); used once. */
  resume: IResume | null = null;

  /** The socket now held (null between a drop and the next try): what is sent goes on it. */
  get current(): WebSocket | null {
    return this._socket;
  }

  get isOpen(): boolean {
    return this._socket !== null && this._socket.readyState === this._socket.OPEN;
  }

  open(sessionId: string): void {
    if (!sessionId) {
      return;
    }
    this.close();
    this._sessionId = sessionId;
    const resume = this.resume;
    this.resume = null;
    const socket = this.api.socket(sessionId, resume ?? undefined);
    this._socket = socket;
    socket.onopen = () => {
      this.connected = true;
      this._retries = 0;
      this.hooks.changed();
    };
    socket.onmessage = message => this.hooks.message(String(message.data));
    socket.onclose = () => {
      if (this._socket !== socket) {
        return; // closed on purpose
      }
      this._socket = null;
      this.connected = false;
      this.resume = this.hooks.resumePoint();
      this._retries += 1;
      if (this._retries > MAX_RETRIES) {
        this.hooks.gaveUp();
      } else {
        setTimeout(() => this.open(this._sessionId), RETRY_MS * this._retries);
      }
      this.hooks.changed();
    };
  }

  /** Close on purpose (another session, or the panel is gone): no reconnect. */
  close(): void {
    const socket = this._socket;
    this._socket = null;
    this._sessionId = ''; // a retry still waiting does not open it again
    this.connected = false;
    socket?.close();
  }

  /** Send on the socket held now; false when there is none. */
  send(message: object): boolean {
    if (!this._socket) {
      return false;
    }
    this._socket.send(JSON.stringify(message));
    return true;
  }

  private _socket: WebSocket | null = null;
  private _sessionId = '';
  private _retries = 0;
}
