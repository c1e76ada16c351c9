import { beforeEach, describe, expect, it } from 'vitest';

import { ChatRuns, InsertPolicy, insertDecision } from '../src/runcontrol';
import { IRunView } from '../src/runs';
import * as ev from './events';

const never = (): IRunView['insert'] => 'none';

describe('the runs of the chat and the socket', () => {
  beforeEach(() => ev.resetSeq());

  it('names the pending run by its run_started and reports the end of a run of this panel', () => {
    const runs = new ChatRuns();
    const pending = runs.start('plot it', ['sales.csv']);
    expect(runs.running).toBe(pending);
    expect(runs.items).toEqual([
      { kind: 'user', text: 'plot it', files: ['sales.csv'] },
      { kind: 'run', run: pending }
    ]);
    expect(runs.receive(ev.started('r1'), never)).toEqual({ kind: 'applied', run: pending, finished: false, own: false });
    expect(pending.runId).toBe('r1');
    expect(runs.pending).toBeNull();
    runs.receive(ev.code('r1', 'c1', 'plot()'), never);
    runs.receive(ev.output('r1', 'c1', 'ok', { final: true }), never);
    const cells: number[] = [];
    const end = runs.receive(ev.finished('r1', 'ok'), n => {
      cells.push(n);
      return 'inserted';
    });
    expect(end).toEqual({ kind: 'applied', run: pending, finished: true, own: true });
    expect(cells).toEqual([1]);
    expect(pending.insert).toBe('inserted');
    expect(runs.running).toBeNull();
  });

  it('shows a run of another socket without owning it', () => {
    const runs = new ChatRuns();
    runs.receive(ev.started('r2'), never);
    const end = runs.receive(ev.finished('r2', 'ok'), () => 'inserted');
    expect(end).toMatchObject({ kind: 'applied', finished: true, own: false });
    expect(runs.findRun('r2')?.insert).toBe('none');
  });

  it('marks the pending run refused when the server refuses the request', () => {
    const runs = new ChatRuns();
    const pending = runs.start('plot it', []);
    expect(runs.receive({ type: 'error', message: 'busy', request: 'run' }, never)).toEqual({ kind: 'refused', message: 'busy' });
    expect(pending.status).toBe('error');
    expect(pending.errors).toEqual([{ kind: 'refused', message: 'busy', recoverable: false }]);
    expect(runs.running).toBeNull();
    // a refused stop leaves a pending run alone
    const next = runs.start('again', []);
    runs.receive({ type: 'error', message: 'nothing to stop', request: 'stop' }, never);
    expect(next.status).toBe('running');
  });

  it('skips what a replay after a reconnect sends again, and the socket notes', () => {
    const runs = new ChatRuns();
    runs.receive(ev.started('r1'), never);
    const token = ev.token('r1', 'a');
    runs.receive(token, never);
    expect(runs.receive(token, never)).toEqual({ kind: 'ignored' });
    expect(runs.findRun('r1')?.answer).toBe('a');
    expect(runs.receive({ type: 'stopping', run_id: 'r1' }, never)).toEqual({ kind: 'ignored' });
    expect(runs.receive({ type: 'replayed', run_id: 'r1', status: 'ok', last_seq: 2 }, never)).toEqual({ kind: 'ignored' });
  });

  it('sends stop and approval replies, showing the choice at once', () => {
    const runs = new ChatRuns();
    expect(runs.stop()).toBeNull();
    runs.receive(ev.started('r1'), never);
    const run = runs.findRun('r1')!;
    runs.receive(ev.code('r1', 'c1', 'x = 1'), never);
    runs.receive(ev.asked('r1', 'c1', 'x = 1'), never);
    expect(runs.approve(run, 'c1', 'edit', 'x = 2')).toEqual({
      type: 'approval',
      run_id: 'r1',
      cell_id: 'c1',
      action: 'edit',
      source: 'x = 2'
    });
    expect(run.cells[0]).toMatchObject({ state: 'running', source: 'x = 2' });
    expect(runs.approve(run, 'c1', 'skip')).toEqual({ type: 'approval', run_id: 'r1', cell_id: 'c1', action: 'skip' });
    expect(run.cells[0].state).toBe('skipped');
    expect(runs.stop()).toEqual({ type: 'stop', run_id: 'r1' });
    expect(run.status).toBe('stopping');
  });

  it('follows stored runs of another process once each', () => {
    const runs = new ChatRuns();
    const run = runs.followStored('m1', 'sum it');
    expect(run?.request).toBe('sum it');
    expect(runs.items.map(i => i.kind)).toEqual(['user', 'run']);
    expect(runs.followStored('m1', 'sum it')).toBe(run);
    runs.unfollow('m1');
    expect(runs.followStored('m1', 'sum it')).toBeNull();
    runs.receive(ev.started('p1'), never);
    expect(runs.followStored('p1', 'mine')).toBeNull(); // the socket brings its events
    expect(runs.items.length).toBe(3);
  });
});

describe('whether a finished run inserts its cells', () => {
  const cases: [InsertPolicy, boolean, number, IRunView['insert']][] = [
    ['always', true, 2, 'inserted'],
    ['always', false, 2, 'ask'], // a "New chat" is no notebook's session
    ['ask', true, 2, 'ask'],
    ['never', true, 2, 'none'],
    ['never', false, 2, 'none'],
    ['always', true, 0, 'none']
  ];
  it.each(cases)('policy %s, own notebook %s, %d cells: %s', (policy, own, cells, expected) => {
    expect(insertDecision(policy, own, cells)).toBe(expected);
  });
});
