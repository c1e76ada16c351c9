import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { IResume, MAX_RETRIES, RETRY_MS, SessionSocket } from '../src/socket';

/** A socket that records what it was asked and lets the test open, drop or feed it. */
class FakeSocket {
  static made: FakeSocket[] = [];
  readonly OPEN = 1;
  readyState = 0;
  sent: string[] = [];
  closed = false;
  onopen: (() => void) | null = null;
  onmessage: ((message: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;

  constructor(
    readonly sessionId: string,
    readonly resume: IResume | undefined
  ) {
    FakeSocket.made.push(this);
  }

  send(data: string): void {
    this.sent.push(data);
  }

  close(): void {
    this.closed = true;
  }

  opened(): void {
    this.readyState = 1;
    this.onopen?.();
  }

  dropped(): void {
    this.readyState = 3;
    this.onclose?.();
  }
}

describe('the session socket', () => {
  let messages: string[];
  let gaveUp: number;
  let resumePoint: IResume | null;
  let socket: SessionSocket;

  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.made = [];
    messages = [];
    gaveUp = 0;
    resumePoint = null;
    const api = { socket: (id: string, resume?: IResume) => new FakeSocket(id, resume) as unknown as WebSocket };
    socket = new SessionSocket(api, {
      message: raw => messages.push(raw),
      resumePoint: () => resumePoint,
      changed: () => undefined,
      gaveUp: () => (gaveUp += 1)
    });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('opens for a session, resuming where it was told once, and passes frames on', () => {
    socket.resume = { runId: 'r1', after: 4 };
    socket.open('s1');
    const first = FakeSocket.made[0];
    expect([first.sessionId, first.resume]).toEqual(['s1', { runId: 'r1', after: 4 }]);
    expect(socket.isOpen).toBe(false);
    first.opened();
    expect(socket.connected && socket.isOpen).toBe(true);
    first.onmessage?.({ data: '{"type":"token"}' });
    expect(messages).toEqual(['{"type":"token"}']);
    expect(socket.send({ type: 'stop', run_id: 'r1' })).toBe(true);
    expect(first.sent).toEqual(['{"type":"stop","run_id":"r1"}']);
    expect(socket.resume).toBeNull();
  });

  it('comes back after a drop, resuming the run that streamed', () => {
    socket.open('s1');
    FakeSocket.made[0].opened();
    resumePoint = { runId: 'r1', after: 9 };
    FakeSocket.made[0].dropped();
    expect(socket.connected).toBe(false);
    expect(socket.send({ type: 'stop' })).toBe(false);
    vi.advanceTimersByTime(RETRY_MS);
    expect(FakeSocket.made.length).toBe(2);
    expect(FakeSocket.made[1].resume).toEqual({ runId: 'r1', after: 9 });
  });

  it('gives up after MAX_RETRIES drops in a row, waiting longer each time', () => {
    socket.open('s1');
    for (let i = 1; i <= MAX_RETRIES; i++) {
      FakeSocket.made[i - 1].dropped();
      vi.advanceTimersByTime(RETRY_MS * i - 1);
      expect(FakeSocket.made.length).toBe(i); // not yet
      vi.advanceTimersByTime(1);
      expect(FakeSocket.made.length).toBe(i + 1);
    }
    FakeSocket.made[MAX_RETRIES].dropped();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.made.length).toBe(MAX_RETRIES + 1);
    expect(gaveUp).toBe(1);
  });

  it('does not come back when closed on purpose, even with a retry waiting', () => {
    socket.open('s1');
    FakeSocket.made[0].dropped();
    socket.close();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.made.length).toBe(1);
    socket.open('s2');
    expect(FakeSocket.made[1].sessionId).toBe('s2');
    socket.open('s3'); // another session: the socket of s2 is closed on purpose
    expect(FakeSocket.made[1].closed).toBe(true);
    FakeSocket.made[1].onclose?.();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.made.length).toBe(3);
  });
});
