import type * as nbformat from '@jupyterlab/nbformat';
import { describe, expect, it } from 'vitest';

import { CELLS_MIME, INSERTED_BY, bundleRunOf, hasRun, replacedCells, sourceHash, withSourceHashes } from '../src/cellinsert';

const ready = (source: string): nbformat.ICodeCell => ({
  cell_type: 'code',
  execution_count: null,
  metadata: { llm_agent: { run_id: 'r1', inserted_by: INSERTED_BY, origin: 'magic', from_cell: 'agent' } },
  outputs: [],
  source
});

describe('cells into the notebook', () => {
  it('hash a source stably, and tell an edit', () => {
    expect(sourceHash('%%sandbox\nprint(1)')).toBe(sourceHash('%%sandbox\nprint(1)'));
    expect(sourceHash('%%sandbox\nprint(1)')).not.toBe(sourceHash('%%sandbox\nprint(2)'));
    expect(sourceHash('')).toMatch(/^[0-9a-f]+$/);
  });

  it('keep the server provenance and add the source each cell goes in with', () => {
    const cells = withSourceHashes([ready('%%sandbox\nx = 1'), { ...ready(''), source: ['%%sandbox\n', 'y = 2'] }]);
    expect(cells[0].metadata.llm_agent).toEqual({
      run_id: 'r1',
      inserted_by: INSERTED_BY,
      origin: 'magic',
      from_cell: 'agent',
      source_hash: sourceHash('%%sandbox\nx = 1')
    });
    expect((cells[1].metadata.llm_agent as { source_hash: string }).source_hash).toBe(sourceHash('%%sandbox\ny = 2'));
    expect(cells[0].source).toBe('%%sandbox\nx = 1');
  });

  it('find the bundle of a %%agent output, of this version only', () => {
    const output = (bundle: unknown): nbformat.IOutput => ({
      output_type: 'display_data',
      data: { [CELLS_MIME]: bundle as nbformat.IMimeBundle[string], 'text/plain': 'llm-agent: 1 cell' },
      metadata: {}
    });
    expect(bundleRunOf(output({ version: 1, run_id: 'r1', cells: [] }))).toBe('r1');
    expect(bundleRunOf(output({ version: 2, run_id: 'r1', cells: [] }))).toBeNull();
    expect(bundleRunOf(output({ version: 1, run_id: 'r1' }))).toBeNull();
    expect(bundleRunOf({ output_type: 'stream', name: 'stdout', text: 'hi' })).toBeNull();
  });

  it('insert a run once', () => {
    expect(hasRun([null, { run_id: 'r1' }], 'r1')).toBe(true);
    expect(hasRun([null, { run_id: 'r1' }], 'r2')).toBe(false);
    expect(hasRun([{ run_id: '' }], '')).toBe(false);
  });

  it('replace the unedited cells of an earlier run of the same %%agent cell, last first', () => {
    const [a, b] = withSourceHashes([ready('%%sandbox\na'), ready('%%sandbox\nb')]);
    const other = withSourceHashes([
      { ...ready('%%sandbox\nc'), metadata: { llm_agent: { from_cell: 'another', inserted_by: INSERTED_BY } } }
    ])[0];
    const cell = (c: nbformat.ICodeCell, source = c.source as string) => ({
      provenance: c.metadata.llm_agent as Record<string, unknown>,
      source
    });
    const notebook = [
      { provenance: null, source: '%%agent plot' },
      cell(a),
      cell(b, '%%sandbox\nb # mine now'),
      cell(other),
      cell(a)
    ];
    expect(replacedCells(notebook, 'agent')).toEqual([4, 1]);
    expect(replacedCells(notebook, 'nobody')).toEqual([]);
  });
});
