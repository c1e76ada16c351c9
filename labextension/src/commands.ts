/**
 * The panel's slash commands, `/learn` and `/forget`: told from other text here, then sent to the server as typed
 * (`POST collections {"command"}`), which reads them with the grammar `%agent learn` uses and words the result as
 * the magic and the CLI print it. The chat shows that wording as a note (no agent run). No DOM, no JupyterLab
 * import: the API comes in as an argument.
 */
import type { ICollectionCommandResult } from './wire';

/** The route a command needs (handler.ts's AgentAPI has it). */
export interface ICollectionsAPI {
  collectionCommand(text: string): Promise<ICollectionCommandResult>;
}

const VERBS = ['/learn', '/forget'];

/** Whether `text` is a `/learn` or `/forget` command (`/learned docs` is not); the server reads the rest. */
export function isCollectionCommand(text: string): boolean {
  return VERBS.includes(text.trim().split(/\s/, 1)[0]);
}

/** What the note says while the server works on `text`. */
export function workingText(text: string): string {
  return text.trim().startsWith('/learn') ? 'Learning…' : 'Forgetting…';
}

/** Carry out `text` as typed; resolves to the server's wording of the result, rejects with its error. */
export async function runCollectionCommand(api: ICollectionsAPI, text: string): Promise<string> {
  return (await api.collectionCommand(text.trim())).lines.join('\n');
}
