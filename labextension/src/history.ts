/**
 * A session's history as the panel shows it: its stored messages stitched with the runs rebuilt from their
 * events, and the runs another process (`%%agent` in the notebook's kernel) adds to the store while the panel
 * watches. Pure functions, no DOM, no network: model.ts fetches, these decide what the chat shows.
 */
import { ChatItem, IRunView, applyEvent, newRun } from './runs';
import { num, str } from './values';
import type { IRunEvents, IStoredMessage } from './wire';

/** How many of a session's latest runs the history reads back in full (older ones show their answer). */
export const HISTORY_RUNS = 30;

/** The runs whose events the history reads: the latest `limit` runs the messages name, each once, in order. */
export function historyRunIds(messages: IStoredMessage[], limit = HISTORY_RUNS): string[] {
  return [...new Set(messages.map(m => m.run_id).filter((r): r is string => !!r))].slice(-limit);
}

/** A run rebuilt from its stored events; the reply's status wins where the events cannot tell (a live run). */
export function runFromEvents(runId: string, reply: IRunEvents): IRunView {
  const run = newRun(runId);
  for (const record of reply.events) {
    if (record.type === 'answer_part') {
      // Its text is in the answer event (or the stored message); its number counts for a resume.
      run.lastSeq = Math.max(run.lastSeq, num(record.seq));
      run.waiting = '';
    } else {
      applyEvent(run, record);
    }
  }
  if (reply.status === 'interrupted') {
    run.status = 'interrupted';
  } else if (reply.live && run.status !== 'running') {
    run.status = 'running';
  }
  return run;
}

/**
 * The chat of a session: each user message followed by its run (once), an answer whose run was read shown as
 * that run, and an answer whose run's events are gone (or were not read) as a run holding only that answer.
 */
export function stitchHistory(messages: IStoredMessage[], runs: Map<string, IRunView>): ChatItem[] {
  const items: ChatItem[] = [];
  const shown = new Set<string>();
  for (const message of messages) {
    if (message.role === 'user') {
      items.push({ kind: 'user', text: message.content, files: [] });
      const run = message.run_id ? runs.get(message.run_id) : undefined;
      if (run && !shown.has(run.runId)) {
        shown.add(run.runId);
        items.push({ kind: 'run', run });
      }
    } else if (message.role === 'assistant' && !(message.run_id && shown.has(message.run_id))) {
      const run = (message.run_id && runs.get(message.run_id)) || newRun(message.run_id ?? '');
      if (!run.answer) {
        run.answer = message.content;
        run.status = run.status === 'running' ? 'ok' : run.status;
      }
      shown.add(run.runId);
      items.push({ kind: 'run', run });
    }
  }
  return items;
}

/**
 * The new stored records of a run another process makes, applied to its view; true while it is still going.
 * The store keeps no single tokens: an `answer_part` is what streamed since the last part, until `answer`.
 */
export function applyFollowed(run: IRunView, reply: IRunEvents): boolean {
  for (const record of reply.events) {
    if (record.type === 'answer_part') {
      run.answer += str(record.text);
      run.lastSeq = Math.max(run.lastSeq, num(record.seq));
    } else {
      applyEvent(run, record);
    }
  }
  if (reply.status === 'running') {
    run.status = run.status === 'stopping' ? 'stopping' : 'running';
    return true;
  }
  if (run.status === 'running') {
    run.status = reply.status === 'interrupted' ? 'interrupted' : (reply.status as IRunView['status']);
  }
  return false;
}
