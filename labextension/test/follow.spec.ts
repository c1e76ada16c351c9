import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { FOLLOW_MS, IStoreAPI, StoreFollower } from '../src/follow';
import { ChatRuns } from '../src/runcontrol';
import type { IRunEvents, IStoredMessage, StoredRecord } from '../src/wire';
import * as ev from './events';

/** A store another process writes into while the panel reads it. */
class Store implements IStoreAPI {
  messages_: IStoredMessage[] = [];
  events = new Map<string, StoredRecord[]>();
  status = new Map<string, string>();
  reads: string[] = [];

  add(runId: string, request: string): void {
    this.messages_.push({
      id: this.messages_.length,
      role: 'user',
      content: request,
      mode: 'auto',
      run_id: runId,
      created_at: 0
    });
    this.events.set(runId, []);
    this.status.set(runId, 'running');
  }

  write(runId: string, record: StoredRecord): void {
    const events = this.events.get(runId)!;
    events.push({ ...record, seq: events.length + 1 });
  }

  messages(): Promise<IStoredMessage[]> {
    return Promise.resolve([...this.messages_]);
  }

  runEvents(runId: string, after = 0): Promise<IRunEvents> {
    this.reads.push(`${runId} after ${after}`);
    const events = (this.events.get(runId) ?? []).filter(e => (e.seq ?? 0) > after);
    return Promise.resolve({ run_id: runId, status: this.status.get(runId) ?? 'ok', live: false, events });
  }
}

describe('following the runs of the notebook kernel', () => {
  let store: Store;
  let runs: ChatRuns;
  let session: string;
  let follower: StoreFollower;

  beforeEach(() => {
    ev.resetSeq();
    store = new Store();
    runs = new ChatRuns();
    session = 's';
    follower = new StoreFollower(store, runs, { sessionId: () => session, disposed: () => false, changed: () => undefined });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('adds a new run with its request and reads only what is new of it', async () => {
    store.add('m1', 'sum the column');
    store.write('m1', ev.started('m1', 'sum the column'));
    store.write('m1', { type: 'answer_part', run_id: 'm1', text: 'It is' });
    expect(await follower.read('s')).toBe(true);
    const run = runs.findRun('m1')!;
    expect(runs.items.map(i => i.kind)).toEqual(['user', 'run']);
    expect(run).toMatchObject({ request: 'sum the column', answer: 'It is', status: 'running', lastSeq: 2 });
    store.write('m1', ev.answer('m1', 'It is **6**'));
    store.write('m1', ev.finished('m1', 'ok'));
    store.status.set('m1', 'ok');
    expect(await follower.read('s')).toBe(false);
    expect(run).toMatchObject({ answer: 'It is **6**', status: 'ok', lastSeq: 4 });
    expect(await follower.read('s')).toBe(false); // ended: not read again
    expect(store.reads).toEqual(['m1 after 0', 'm1 after 2']);
  });

  it('leaves alone the runs of the panel itself and those of the history', async () => {
    runs.receive(ev.started('p1'), () => 'none');
    store.add('p1', 'from the panel');
    runs.start('waiting for its run_started', []);
    store.add('m2', 'from the kernel');
    expect(await follower.read('s')).toBe(false); // the panel's own request is pending: nothing is added now
    expect(runs.findRun('m2')).toBeNull();
    expect(store.reads).toEqual([]);
  });

  it('stops one look after the cell finished and the last run ended', async () => {
    vi.useFakeTimers();
    store.add('m1', 'plot');
    let cellDone = false;
    const following = follower.follow(() => cellDone);
    await vi.advanceTimersByTimeAsync(FOLLOW_MS * 3);
    expect(runs.findRun('m1')?.status).toBe('running');
    store.write('m1', ev.finished('m1', 'ok'));
    store.status.set('m1', 'ok');
    cellDone = true;
    await vi.advanceTimersByTimeAsync(FOLLOW_MS * 3);
    await following;
    expect(runs.findRun('m1')?.status).toBe('ok');
    const looks = store.reads.length;
    await vi.advanceTimersByTimeAsync(FOLLOW_MS * 5);
    expect(store.reads.length).toBe(looks);
  });

  it('stops when the panel shows another session', async () => {
    vi.useFakeTimers();
    store.add('m1', 'plot');
    const following = follower.follow(() => false);
    await vi.advanceTimersByTimeAsync(FOLLOW_MS);
    session = 'other';
    await vi.advanceTimersByTimeAsync(FOLLOW_MS * 2);
    await following;
    const looks = store.reads.length;
    await vi.advanceTimersByTimeAsync(FOLLOW_MS * 5);
    expect(store.reads.length).toBe(looks);
  });
});
