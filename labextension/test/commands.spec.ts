import { describe, expect, it } from 'vitest';

import { ICollectionsAPI, USAGE, forgotText, learnedText, parseCollectionCommand, runCollectionCommand } from '../src/commands';
import type { IForgetResult, ILearnResult } from '../src/wire';

describe('/learn and /forget', () => {
  it('are told from other text', () => {
    expect(parseCollectionCommand('plot the sales')).toBeNull();
    expect(parseCollectionCommand('/learned docs')).toBeNull();
  });

  it('read paths and options', () => {
    expect(parseCollectionCommand('/learn docs/  notes.md --collection papers')).toEqual({
      verb: 'learn',
      paths: ['docs/', 'notes.md'],
      collection: 'papers',
      all: false
    });
    expect(parseCollectionCommand('/forget --all')).toEqual({ verb: 'forget', paths: [], collection: '', all: true });
  });

  it('say what is wrong, with the usage', () => {
    expect(parseCollectionCommand('/learn')).toEqual({ error: `/learn needs at least one path. ${USAGE}` });
    expect(parseCollectionCommand('/learn --all')).toEqual({ error: `Unknown option --all. ${USAGE}` });
    expect(parseCollectionCommand('/forget a --collection')).toEqual({ error: `--collection needs a name. ${USAGE}` });
    expect(parseCollectionCommand('/forget a --force')).toEqual({ error: `Unknown option --force. ${USAGE}` });
  });

  it('word what was learned and forgotten', () => {
    const learned: ILearnResult = {
      collection: 'notes',
      files: 3,
      chunks: 12,
      added: ['a.md', 'b.md'],
      changed: [],
      unchanged: ['c.md'],
      removed: [],
      skipped: { 'x.bin': 'not text' },
      embedded_chunks: 8
    };
    expect(learnedText(learned)).toBe(
      'Learned into notes: 2 added, 0 changed, 1 unchanged, 0 removed (8 chunks embedded); it now holds 3 files, 12 chunks. ' +
        'Skipped: x.bin (not text).'
    );
    const forgot: IForgetResult = {
      collection: 'notes',
      removed: ['a.md'],
      not_found: ['z.md'],
      files: 2,
      chunks: 5,
      deleted: false
    };
    expect(forgotText(forgot)).toBe('Forgot 1 files of notes; it now holds 2 files, 5 chunks. Not in it: z.md.');
    expect(forgotText({ ...forgot, deleted: true })).toBe('Deleted the collection notes.');
  });

  it('go to the default collection when none is named', async () => {
    const calls: string[] = [];
    const api: ICollectionsAPI = {
      collections: () => Promise.resolve({ collections: [], default: 'notes' }),
      learn: (collection, paths) => {
        calls.push(`learn ${collection} ${paths.join(',')}`);
        return Promise.resolve({
          collection,
          files: 1,
          chunks: 1,
          added: paths,
          changed: [],
          unchanged: [],
          removed: [],
          skipped: {},
          embedded_chunks: 1
        });
      },
      forget: (collection, _paths, everything) => {
        calls.push(`forget ${collection} ${everything}`);
        return Promise.resolve({ collection, removed: [], not_found: [], files: 0, chunks: 0, deleted: everything });
      }
    };
    const progress: string[] = [];
    const learned = await runCollectionCommand(api, { verb: 'learn', paths: ['a.md'], collection: '', all: false }, p =>
      progress.push(p)
    );
    expect(learned).toMatch(/^Learned into notes: 1 added/);
    const forgot = await runCollectionCommand(api, { verb: 'forget', paths: [], collection: 'old', all: true }, p =>
      progress.push(p)
    );
    expect(forgot).toBe('Deleted the collection old.');
    expect(calls).toEqual(['learn notes a.md', 'forget old true']);
    expect(progress).toEqual(['Learning a.md into the collection notes…', 'Forgetting everything in old…']);
  });
});
