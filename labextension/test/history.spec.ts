import { beforeEach, describe, expect, it } from 'vitest';

import { applyFollowed, historyRunIds, runFromEvents, stitchHistory } from '../src/history';
import { IRunView, newRun } from '../src/runs';
import type { IRunEvents, IStoredMessage } from '../src/wire';
import * as ev from './events';

let id = 0;
const msg = (role: string, content: string, runId: string | null): IStoredMessage => ({
  id: ++id,
  role,
  content,
  mode: 'auto',
  run_id: runId,
  created_at: id
});

describe('the history of a session', () => {
  beforeEach(() => ev.resetSeq());

  it('reads the latest runs once each', () => {
    const messages = [msg('user', 'a', 'r1'), msg('assistant', 'A', 'r1'), msg('user', 'b', 'r2'), msg('user', 'c', null)];
    expect(historyRunIds(messages)).toEqual(['r1', 'r2']);
    expect(historyRunIds(messages, 1)).toEqual(['r2']);
  });

  it('rebuilds a run from its stored events, its status from the store', () => {
    const events = [ev.started('r1'), ev.token('r1', 'x'), { type: 'answer_part' as const, run_id: 'r1', text: 'x', seq: 3 }];
    const live: IRunEvents = { run_id: 'r1', status: 'running', live: true, events };
    expect(runFromEvents('r1', live)).toMatchObject({ status: 'running', lastSeq: 3, answer: 'x' });
    const cut: IRunEvents = { run_id: 'r1', status: 'interrupted', live: false, events: [ev.started('r1')] };
    expect(runFromEvents('r1', cut).status).toBe('interrupted');
    const done: IRunEvents = { run_id: 'r1', status: 'ok', live: true, events: [ev.finished('r1', 'ok')] };
    expect(runFromEvents('r1', done).status).toBe('running'); // the server still holds it
  });

  it('stitches each request to its run, once, and shows an answer whose run is gone', () => {
    const r1 = newRun('r1');
    r1.answer = 'from events';
    r1.status = 'ok';
    const messages = [
      msg('user', 'first', 'r1'),
      msg('assistant', 'stored first', 'r1'),
      msg('user', 'first, sent again', 'r1'),
      msg('user', 'second', 'r2'),
      msg('assistant', 'stored second', 'r2'),
      msg('assistant', 'note without run', null)
    ];
    const items = stitchHistory(messages, new Map([['r1', r1]]));
    expect(
      items.map(i =>
        i.kind === 'run' ? `run ${i.run.runId}: ${i.run.answer} (${i.run.status})` : i.kind === 'user' ? i.text : ''
      )
    ).toEqual([
      'first',
      'run r1: from events (ok)',
      'first, sent again',
      'second',
      'run r2: stored second (ok)',
      'run : note without run (ok)'
    ]);
  });

  it('follows a run of another process: streamed parts, then the answer and the end', () => {
    const run: IRunView = newRun('r9', 'sum it');
    const parts = [ev.started('r9'), { type: 'answer_part' as const, run_id: 'r9', text: 'The sum', seq: 2 }];
    expect(applyFollowed(run, { run_id: 'r9', status: 'running', live: false, events: parts })).toBe(true);
    expect(run).toMatchObject({ answer: 'The sum', lastSeq: 2, status: 'running' });
    const end = [{ type: 'answer_part' as const, run_id: 'r9', text: ' is 3', seq: 3 }, ev.answer('r9', 'The sum is **3**')];
    expect(applyFollowed(run, { run_id: 'r9', status: 'ok', live: false, events: end })).toBe(false);
    expect(run.answer).toBe('The sum is **3**');
    expect(run.status).toBe('ok');
    const stopping = newRun('r8');
    stopping.status = 'stopping';
    expect(applyFollowed(stopping, { run_id: 'r8', status: 'running', live: false, events: [] })).toBe(true);
    expect(stopping.status).toBe('stopping');
    const cut = newRun('r7');
    applyFollowed(cut, { run_id: 'r7', status: 'interrupted', live: false, events: [] });
    expect(cut.status).toBe('interrupted');
  });
});
