import { describe, expect, it } from 'vitest';

import { ICollectionsAPI, isCollectionCommand, runCollectionCommand, workingText } from '../src/commands';
import type { ICollectionCommandResult } from '../src/wire';

/** Answers as the server's `POST collections {"command"}` would, and keeps what it was sent. */
function server(answer: (text: string) => ICollectionCommandResult): ICollectionsAPI & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    collectionCommand: text => {
      sent.push(text);
      return new Promise(resolve => resolve(answer(text))); // a throw in `answer` rejects, as a 4xx does
    }
  };
}

describe('/learn and /forget', () => {
  it('are told from other text', () => {
    expect(isCollectionCommand('/learn docs/ --collection papers')).toBe(true);
    expect(isCollectionCommand('  /forget\t--all')).toBe(true);
    expect(isCollectionCommand('/learn')).toBe(true);
    expect(isCollectionCommand('plot the sales')).toBe(false);
    expect(isCollectionCommand('/learned docs')).toBe(false);
    expect(isCollectionCommand('please /learn docs')).toBe(false);
  });

  it('say what is under way', () => {
    expect(workingText('/learn docs/')).toBe('Learning…');
    expect(workingText('/forget --all')).toBe('Forgetting…');
  });

  it('go to the server as typed and come back in its words', async () => {
    const api = server(() => ({
      collection: 'papers',
      lines: [
        "Collection 'papers': 2 file(s), 2 chunk(s) (2 added, 0 changed, 0 unchanged, 0 removed; 2 chunk(s) embedded).",
        '  skipped x.bin: not text'
      ]
    }));
    const note = await runCollectionCommand(api, ' /learn docs/  notes.md --collection papers --reembed ');
    expect(api.sent).toEqual(['/learn docs/  notes.md --collection papers --reembed']);
    expect(note).toBe(
      "Collection 'papers': 2 file(s), 2 chunk(s) (2 added, 0 changed, 0 unchanged, 0 removed; 2 chunk(s) embedded).\n" +
        '  skipped x.bin: not text'
    );
  });

  it("reject with the server's error, which says what to do", async () => {
    const refusal = new Error('unrecognized arguments: --frobnicate\nusage: /learn PATH... [--collection NAME] [--reembed]');
    const api = server(() => {
      throw refusal;
    });
    await expect(runCollectionCommand(api, '/learn docs --frobnicate')).rejects.toBe(refusal);
    expect(api.sent).toEqual(['/learn docs --frobnicate']);
  });
});
