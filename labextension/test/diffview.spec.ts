import { describe, expect, it } from 'vitest';

import { DIFF_LINES, diffLines, fixedCell, sandboxCell } from '../src/diffview';

describe('the diff of a proposed fix', () => {
  it('marks the file lines, the hunks, the added and the removed lines', () => {
    const diff = '--- cell [3]\n+++ proposed fix\n@@ -1,2 +1,2 @@\n-print(x)\n+print(y)\n import os\n';
    expect(diffLines(diff)).toEqual([
      { text: '--- cell [3]', className: 'lam-diff-file' },
      { text: '+++ proposed fix', className: 'lam-diff-file' },
      { text: '@@ -1,2 +1,2 @@', className: 'lam-diff-hunk' },
      { text: '-print(x)', className: 'lam-diff-del' },
      { text: '+print(y)', className: 'lam-diff-add' },
      { text: ' import os', className: '' }
    ]);
  });

  it('reads `---` and `+++` inside a hunk as removed and added lines, not file lines', () => {
    const diff = '--- the cell\n+++ proposed fix\n@@ -1 +1 @@\n--- an SQL comment\n+++x\n';
    expect(diffLines(diff).map(l => l.className)).toEqual([
      'lam-diff-file',
      'lam-diff-file',
      'lam-diff-hunk',
      'lam-diff-del',
      'lam-diff-add'
    ]);
  });

  it('keeps the text of each line as it is (it is shown as text, never as HTML)', () => {
    expect(diffLines('@@ -1 +1 @@\n+<img src=x onerror=alert(1)>')[1].text).toBe('+<img src=x onerror=alert(1)>');
  });

  it('draws at most DIFF_LINES lines, and says how many more there are', () => {
    const diff = '@@ -1 +1 @@\n' + Array.from({ length: DIFF_LINES + 500 }, (_, i) => `+line ${i}`).join('\n');
    const lines = diffLines(diff);
    expect(lines).toHaveLength(DIFF_LINES + 1);
    expect(lines[DIFF_LINES - 1].text).toBe(`+line ${DIFF_LINES - 2}`);
    expect(lines[DIFF_LINES].text).toBe('[... 501 more lines of the diff not shown]');
  });

  it('is empty for an empty diff', () => {
    expect(diffLines('')).toEqual([{ text: '', className: '' }]);
  });
});

describe('the fixed cell', () => {
  it('goes into the notebook without the final newline', () => {
    expect(fixedCell('x = 1\nprint(x)\n')).toBe('x = 1\nprint(x)');
    expect(fixedCell('x = 1\n\n')).toBe('x = 1\n');
  });

  it('runs in the sandbox with %%sandbox first, written once', () => {
    expect(sandboxCell('print(1)\n')).toBe('%%sandbox\nprint(1)');
    expect(sandboxCell('%%sandbox\nprint(1)\n')).toBe('%%sandbox\nprint(1)');
    expect(sandboxCell('%%sandbox --skip\nprint(1)')).toBe('%%sandbox --skip\nprint(1)');
    expect(sandboxCell('%%sandboxes\nprint(1)')).toBe('%%sandbox\n%%sandboxes\nprint(1)');
  });
});
