import { describe, expect, it, vi } from 'vitest';

import type { INotebookBridge } from '../src/cellchips';
import { blockCode, doneLabel, putCode } from '../src/codeblocks';

// The clipboard of @jupyterlab/apputils needs a browser to load (vitest hoists this above the imports); the helpers
// tested here do not use it.
vi.mock('@jupyterlab/apputils', () => ({ Clipboard: { copyToSystem: (): void => undefined } }));

/** A notebook bridge that records what the code block asked of it. */
function recorder(problem = ''): { bridge: INotebookBridge; calls: string[][] } {
  const calls: string[][] = [];
  const none = (): never => {
    throw new Error('not asked of a code block');
  };
  const bridge: INotebookBridge = {
    insertBelow: (cellId, was, source) => (calls.push(['insertBelow', cellId, was, source]), problem),
    replaceActive: source => (calls.push(['replaceActive', source]), problem),
    replaceCell: none,
    runCell: none,
    failingActive: none,
    listFiles: none,
    listVariables: none,
    act: none
  };
  return { bridge, calls };
}

describe("a code block's buttons", () => {
  it("take the block's code without the newline that ends its last line", () => {
    expect(blockCode('x = 1\nprint(x)\n')).toBe('x = 1\nprint(x)');
    expect(blockCode('x = 1\n\n')).toBe('x = 1\n');
    expect(blockCode(null)).toBe('');
    expect(blockCode(undefined)).toBe('');
  });

  it('insert the code in a new cell below the active one', () => {
    const { bridge, calls } = recorder();
    expect(putCode('insert', 'print(1)', bridge)).toBe('');
    expect(calls).toEqual([['insertBelow', '', '', 'print(1)']]);
  });

  it("replace the active cell's source", () => {
    const { bridge, calls } = recorder();
    expect(putCode('replace', 'print(1)', bridge)).toBe('');
    expect(calls).toEqual([['replaceActive', 'print(1)']]);
  });

  it('say what went wrong: no notebook, or what the notebook said', () => {
    expect(putCode('insert', 'x', null)).toBe('Open a notebook first.');
    expect(putCode('replace', 'x', recorder('Open a notebook and select the cell to replace.').bridge)).toBe(
      'Open a notebook and select the cell to replace.'
    );
  });

  it('say what they did', () => {
    expect(['Copy', 'Insert below', 'Replace'].map(doneLabel)).toEqual(['Copied', 'Inserted', 'Replaced']);
  });
});
