import { beforeEach, describe, expect, it } from 'vitest';

import { applyEvent, endedCells, newRun } from '../src/runs';
import type { AgentEvent } from '../src/wire';
import * as ev from './events';

function rebuilt(events: AgentEvent[]) {
  const run = newRun('r1');
  events.forEach(e => applyEvent(run, e));
  return run;
}

describe('a run rebuilt from its events', () => {
  beforeEach(() => ev.resetSeq());

  it('follows a plan run from start to answer', () => {
    const run = rebuilt([
      ev.started('r1', 'chart sales'),
      ev.waiting('r1', 'a %%agent cell (pid 7)'),
      ev.plan('r1', ['load', 'chart']),
      ev.stepStarted('r1', 0),
      ev.code('r1', 'c1', 'df = load()'),
      ev.output('r1', 'c1', 'error', { failed: true }),
      ev.code('r1', 'c2', 'df = load(x)', 2),
      ev.output('r1', 'c2', 'ok', { final: true }),
      ev.stepFinished('r1', 0, 'ok'),
      ev.stepFinished('r1', 1, 'weird'),
      ev.error('r1', 'NameError: x'),
      ev.token('r1', 'Sales '),
      ev.token('r1', 'rose'),
      ev.usage('r1', 'qwen3:8b'),
      ev.finished('r1', 'ok')
    ]);
    expect(run.request).toBe('chart sales');
    expect(run.waiting).toBe(''); // the plan came: the run has its session
    expect(run.steps.map(s => [s.goal, s.state, s.summary])).toEqual([
      ['load', 'ok', 'step 0 ok'],
      ['chart', 'error', 'step 1 weird'] // an unknown status is an error, not a new state
    ]);
    expect(run.cells.map(c => [c.cellId, c.attempt, c.state, c.failed, c.final])).toEqual([
      ['c1', 1, 'error', true, false],
      ['c2', 2, 'ok', false, true]
    ]);
    expect(run.cells[1].outputs).toEqual([{ output_type: 'stream', name: 'stdout', text: 'ok\n' }]);
    expect(run.errors).toEqual([{ kind: 'CodeError', message: 'NameError: x', recoverable: true }]);
    expect(run.answer).toBe('Sales rose');
    expect(run.model).toBe('qwen3:8b');
    expect(run.status).toBe('ok');
    expect(run.lastSeq).toBe(15);
    expect(endedCells(run)).toBe(2);
  });

  it('shows who holds the session while the run waits', () => {
    const run = rebuilt([ev.started('r1'), ev.waiting('r1', 'the panel (pid 3)'), ev.usage('r1', 'm')]);
    expect(run.waiting).toBe('the panel (pid 3)');
    expect(run.status).toBe('running');
  });

  it('lets the answer event replace what streamed', () => {
    const run = rebuilt([ev.token('r1', 'draft'), ev.answer('r1', '**final**')]);
    expect(run.answer).toBe('**final**');
  });

  it('keeps an approval waiting, then the edited cell, and stops what never ran', () => {
    const run = rebuilt([
      ev.code('r1', 'c1', 'print(1)'),
      ev.asked('r1', 'c1', 'print(1)'),
      ev.code('r1', 'c2', 'print(2)'),
      ev.asked('r1', 'c2', 'print(2)')
    ]);
    expect(run.cells.map(c => c.state)).toEqual(['awaiting', 'awaiting']);
    applyEvent(run, { ...ev.code('r1', 'c1', 'print(10)'), approval: 'edited', original_source: 'print(1)' });
    expect(run.cells[0]).toMatchObject({
      source: 'print(10)',
      approval: 'edited',
      originalSource: 'print(1)',
      state: 'awaiting'
    });
    applyEvent(run, ev.output('r1', 'c1', 'ok', { final: true }));
    applyEvent(run, ev.finished('r1', 'cancelled'));
    expect(run.cells.map(c => c.state)).toEqual(['ok', 'stopped']);
    expect(run.status).toBe('cancelled');
    expect(endedCells(run)).toBe(1);
  });

  it('ignores an event type it does not know', () => {
    const run = rebuilt([ev.started('r1')]);
    applyEvent(run, { type: 'from_the_future', run_id: 'r1', seq: 9 } as unknown as AgentEvent);
    expect(run.status).toBe('running');
    expect(run.lastSeq).toBe(9);
  });

  it('makes an unknown finishing status an error', () => {
    const run = rebuilt([{ ...ev.finished('r1', 'ok'), status: 'odd' } as unknown as AgentEvent]);
    expect(run.status).toBe('error');
  });
});
