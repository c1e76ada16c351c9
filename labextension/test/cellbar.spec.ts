import { describe, expect, it } from 'vitest';

import { chipPreview } from '../src/cellbar';

const chip = (source: string) => ({ id: '1', label: 'cell [1]', source, kind: 'code' as const });

describe("a chip's preview", () => {
  it("is the cell's first line that holds something", () => {
    expect(chipPreview(chip('\n\n   # Sales by region\nx = 1'))).toBe('# Sales by region');
    expect(chipPreview(chip('x = 1'))).toBe('x = 1');
  });

  it('is short', () => {
    const preview = chipPreview(chip('y = ' + 'a'.repeat(100)));
    expect(preview).toBe('y = ' + 'a'.repeat(35) + '…');
    expect(preview).toHaveLength(40);
    expect(chipPreview(chip('b'.repeat(40)))).toBe('b'.repeat(40));
    expect(chipPreview(chip('c'.repeat(41)))).toBe('c'.repeat(39) + '…');
  });

  it('is empty for an empty cell', () => {
    expect(chipPreview(chip(''))).toBe('');
    expect(chipPreview(chip(' \n\t\n'))).toBe('');
  });
});
