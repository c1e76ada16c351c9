/**
 * The panel's slash commands, `/learn` and `/forget`: parsed here and answered in the chat as a note, through
 * the collections routes (no agent run). No DOM, no JupyterLab import: the API comes in as an argument.
 */
import type { ICollections, IForgetResult, ILearnResult } from './wire';

export type CollectionCommand =
  { verb: 'learn' | 'forget'; paths: string[]; collection: string; all: boolean } | { error: string };

/** The collections routes a command needs (handler.ts's AgentAPI has them). */
export interface ICollectionsAPI {
  collections(): Promise<ICollections>;
  learn(collection: string, paths: string[]): Promise<ILearnResult>;
  forget(collection: string, paths: string[], everything: boolean): Promise<IForgetResult>;
}

export const USAGE =
  'Use /learn PATH... [--collection NAME] or /forget PATH... | --all [--collection NAME] ' +
  '(paths under the folder Jupyter serves).';

/** `/learn docs/ notes.md --collection papers`, `/forget --all`: null when the text is not such a command. */
export function parseCollectionCommand(text: string): CollectionCommand | null {
  const words = text.split(/\s+/);
  const verb = words[0] === '/learn' ? 'learn' : words[0] === '/forget' ? 'forget' : null;
  if (!verb) {
    return null;
  }
  const paths: string[] = [];
  let collection = '';
  let all = false;
  for (let i = 1; i < words.length; i++) {
    if (words[i] === '--collection') {
      collection = words[++i] ?? '';
      if (!collection) {
        return { error: `--collection needs a name. ${USAGE}` };
      }
    } else if (words[i] === '--all' && verb === 'forget') {
      all = true;
    } else if (words[i].startsWith('--')) {
      return { error: `Unknown option ${words[i]}. ${USAGE}` };
    } else {
      paths.push(words[i]);
    }
  }
  if (!paths.length && !all) {
    return { error: `/${verb} needs at least one path. ${USAGE}` };
  }
  return { verb, paths, collection, all };
}

/** What a `/learn` did, in one paragraph. */
export function learnedText(result: ILearnResult): string {
  const skipped = Object.entries(result.skipped).map(([path, why]) => `${path} (${why})`);
  return (
    `Learned into ${result.collection}: ${result.added.length} added, ${result.changed.length} changed, ` +
    `${result.unchanged.length} unchanged, ${result.removed.length} removed (${result.embedded_chunks} chunks embedded); ` +
    `it now holds ${result.files} files, ${result.chunks} chunks.` +
    (skipped.length ? ` Skipped: ${skipped.join('; ')}.` : '')
  );
}

/** What a `/forget` did, in one paragraph. */
export function forgotText(result: IForgetResult): string {
  return result.deleted
    ? `Deleted the collection ${result.collection}.`
    : `Forgot ${result.removed.length} files of ${result.collection}; it now holds ${result.files} files, ` +
        `${result.chunks} chunks.` +
        (result.not_found.length ? ` Not in it: ${result.not_found.join(', ')}.` : '');
}

/**
 * Carry out a parsed command; `progress` hears what is being done (into which collection) before the route
 * answers. Resolves to the note that says what was done; rejects with the route's error.
 */
export async function runCollectionCommand(
  api: ICollectionsAPI,
  command: Exclude<CollectionCommand, { error: string }>,
  progress: (text: string) => void
): Promise<string> {
  const collection = command.collection || (await api.collections()).default;
  if (command.verb === 'learn') {
    progress(`Learning ${command.paths.join(', ')} into the collection ${collection}…`);
    return learnedText(await api.learn(collection, command.paths));
  }
  progress(`Forgetting ${command.all ? 'everything' : command.paths.join(', ')} in ${collection}…`);
  return forgotText(await api.forget(collection, command.paths, command.all));
}
