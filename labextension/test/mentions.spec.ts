import { describe, expect, it } from 'vitest';

import { SharedListing, complete, folderOf, insideCode, listKey, mentionAt, movesCaret, rank } from '../src/mentions';

/** The mention at the caret written as `|` in `typed`. */
const at = (typed: string): ReturnType<typeof mentionAt> => mentionAt(typed.replace('|', ''), typed.indexOf('|'));

describe('the mention under the caret', () => {
  it('is a file after `@` at the start of a word, up to the caret', () => {
    expect(at('Plot @sal|')).toEqual({ kind: 'file', start: 5, end: 9, query: 'sal' });
    expect(at('@|')).toEqual({ kind: 'file', start: 0, end: 1, query: '' });
    expect(at('Plot\n@data/sa|')).toEqual({ kind: 'file', start: 5, end: 13, query: 'data/sa' });
  });

  it('is not an `@` inside a word, nor a word the caret has left', () => {
    expect(at('mail bob@example.com|')).toBeNull();
    expect(at('Plot @sales.csv |')).toBeNull();
    expect(at('Plot| @sales.csv')).toBeNull();
    expect(at('plain words|')).toBeNull();
  });

  it('covers the whole word when the caret is inside it, so a choice replaces the rest', () => {
    expect(at('Plot @sa|les.csv now')).toEqual({ kind: 'file', start: 5, end: 15, query: 'sa' });
    expect(at('by {to|tals} now')).toEqual({ kind: 'variable', start: 3, end: 11, query: 'to' });
  });

  it('is a variable after `{`, also inside a word, until the brace is closed', () => {
    expect(at('by {tot|')).toEqual({ kind: 'variable', start: 3, end: 7, query: 'tot' });
    expect(at('f"{x|')).toEqual({ kind: 'variable', start: 2, end: 4, query: 'x' });
    expect(at('{|')).toEqual({ kind: 'variable', start: 0, end: 1, query: '' });
    expect(at('by {totals}|')).toBeNull();
    expect(at('by {a.b|')).toBeNull();
    expect(at('by {a-b|')).toBeNull();
  });

  it('stays inside the text whatever the caret says', () => {
    expect(mentionAt('@abc', 99)).toEqual({ kind: 'file', start: 0, end: 4, query: 'abc' });
    expect(mentionAt('@abc', -3)).toBeNull();
    expect(mentionAt('', 0)).toBeNull();
  });

  it('is none inside code the user writes: a decorator, a dict, an f-string', () => {
    expect(at('Why does\n```python\n@prop|')).toBeNull();
    expect(at('```\nd = {ke|')).toBeNull();
    expect(at('use `@cache|')).toBeNull();
    expect(at('use `f"{na|')).toBeNull();
    // after the code, mentions again
    expect(at('```\n@x\n```\n@sal|')).toMatchObject({ kind: 'file', query: 'sal' });
    expect(at('use `@cache` on @sal|')).toMatchObject({ kind: 'file', query: 'sal' });
    expect(at('`a`\n`b {d|')).toBeNull();
    expect(at('`a\n{d|')).toMatchObject({ kind: 'variable', query: 'd' }); // a span ends with its line
  });

  it('knows when the caret is in code', () => {
    expect(insideCode('```\nx', 5)).toBe(true);
    expect(insideCode('```\nx\n```\ny', 11)).toBe(false);
    expect(insideCode('a `b', 4)).toBe(true);
    expect(insideCode('a `b` c', 7)).toBe(false);
    expect(insideCode('```', 2)).toBe(false); // the fence is not written yet
    expect(insideCode('~~~\nx', 5)).toBe(true);
    expect(insideCode('  ```py\nx', 9)).toBe(true);
    expect(insideCode('    ```\nx', 9)).toBe(false); // four spaces in: an indented line, not a fence
    expect(insideCode('~~~\n```\nx', 9)).toBe(true); // ``` inside a ~~~ block does not close it
    expect(insideCode('~~~\n```\n~~~\nx', 13)).toBe(false);
  });
});

describe('completing a mention', () => {
  it('writes the file followed by a space, and puts the caret after it', () => {
    const text = 'Plot @sal';
    expect(complete(text, at('Plot @sal|')!, 'sales.csv')).toEqual({ text: 'Plot @sales.csv ', caret: 16 });
  });

  it('does not double the space that follows already', () => {
    const done = complete('Plot @sal by region', at('Plot @sal| by region')!, 'sales.csv');
    expect(done).toEqual({ text: 'Plot @sales.csv by region', caret: 16 });
  });

  it('writes a folder without a space, so its files come next', () => {
    expect(complete('@da', at('@da|')!, 'data/')).toEqual({ text: '@data/', caret: 6 });
    expect(complete('@data/sa', at('@data/sa|')!, 'data/sales.csv')).toEqual({ text: '@data/sales.csv ', caret: 16 });
  });

  it('writes a file name with spaces or pattern characters as it is, as the server finds it', () => {
    const done = complete('see @my', at('see @my|')!, 'my data (v2)+[1].csv');
    expect(done.text).toBe('see @my data (v2)+[1].csv ');
    expect(done.caret).toBe(done.text.length);
  });

  it('replaces the rest of the word the caret was in', () => {
    expect(complete('Plot @sa.csv now', at('Plot @sa|.csv now')!, 'sales.csv')).toEqual({
      text: 'Plot @sales.csv now',
      caret: 16
    });
  });

  it('closes a variable once, also when the brace was closed already', () => {
    expect(complete('by {tot', at('by {tot|')!, 'totals')).toEqual({ text: 'by {totals}', caret: 11 });
    expect(complete('by {t} now', at('by {t|} now')!, 'totals')).toEqual({ text: 'by {totals} now', caret: 11 });
    expect(complete('by {} now', at('by {|} now')!, 'df')).toEqual({ text: 'by {df} now', caret: 7 });
  });
});

describe('the names offered', () => {
  it('lists the folder the query is in, and what is typed of a name', () => {
    expect(folderOf('sa')).toEqual({ folder: '', rest: 'sa' });
    expect(folderOf('data/sub/sa')).toEqual({ folder: 'data/sub/', rest: 'sa' });
    expect(folderOf('data/')).toEqual({ folder: 'data/', rest: '' });
  });

  it('start with those that begin with the query, then those that hold it, A to Z, case aside', () => {
    const names = ['old_sales.csv', 'Sales.ipynb', 'notes.md', 'sales.csv', 'wholesale/'];
    expect(rank(names, 'sal')).toEqual(['sales.csv', 'Sales.ipynb', 'old_sales.csv', 'wholesale/']);
    expect(rank(names, 'SAL')).toEqual(rank(names, 'sal'));
    expect(rank(names, '')).toEqual(['notes.md', 'old_sales.csv', 'sales.csv', 'Sales.ipynb', 'wholesale/']);
    expect(rank(names, 'zzz')).toEqual([]);
  });

  it('take pattern characters in a query literally', () => {
    expect(rank(['a.csv', 'abcsv', 'a(1).csv', 'a[1].csv'], 'a.')).toEqual(['a.csv']);
    expect(rank(['a.csv', 'a(1).csv', 'a[1].csv', 'b*'], '(1')).toEqual(['a(1).csv']);
    expect(rank(['a.csv', 'b*', 'c'], '*')).toEqual(['b*']);
  });

  it('are each offered once, and at most twelve of thousands', () => {
    expect(rank(['df', 'df', 'data'], 'd')).toEqual(['data', 'df']);
    const many = Array.from({ length: 5000 }, (_, i) => `file${String(i).padStart(4, '0')}.csv`);
    const shown = rank(many, 'file');
    expect(shown).toHaveLength(12);
    expect(shown[0]).toBe('file0000.csv');
    expect(shown[11]).toBe('file0011.csv');
  });
});

describe('the keys of the list', () => {
  it('move the choice round the list', () => {
    expect(listKey('ArrowDown', false, 0, 3)).toEqual({ move: 1 });
    expect(listKey('ArrowDown', false, 2, 3)).toEqual({ move: 0 });
    expect(listKey('ArrowUp', false, 0, 3)).toEqual({ move: 2 });
    expect(listKey('ArrowUp', false, 2, 3)).toEqual({ move: 1 });
  });

  it('choose with Enter or Tab, close with Escape, leave the other keys to the box', () => {
    expect(listKey('Enter', false, 1, 3)).toEqual({ choose: true });
    expect(listKey('Tab', false, 1, 3)).toEqual({ choose: true });
    expect(listKey('Escape', false, 1, 3)).toEqual({ close: true });
    expect(listKey('a', false, 1, 3)).toBeNull();
    expect(listKey('ArrowLeft', false, 1, 3)).toBeNull();
  });

  it('that move the caret along the line make the list follow it; ArrowUp and ArrowDown keep its choice', () => {
    expect(['ArrowLeft', 'ArrowRight', 'Home', 'End'].every(movesCaret)).toBe(true);
    expect(['ArrowUp', 'ArrowDown', 'Enter', 'a', 'Shift'].some(movesCaret)).toBe(false);
  });

  it('do nothing without names, or while an input method composes', () => {
    expect(listKey('Enter', false, 0, 0)).toBeNull();
    expect(listKey('Enter', true, 0, 3)).toBeNull();
    expect(listKey('ArrowDown', true, 0, 3)).toBeNull();
  });
});

describe('a listing shared by the keystrokes of a mention', () => {
  it('asks once while it is fresh, and again once it is not', async () => {
    let asked = 0;
    let now = 0;
    const listing = new SharedListing(
      () => Promise.resolve([`df${++asked}`]),
      3000,
      () => now
    );
    const first = await Promise.all([listing.get(), listing.get(), listing.get()]);
    expect(asked).toBe(1);
    expect(first).toEqual([['df1'], ['df1'], ['df1']]);
    now = 2999;
    expect(await listing.get()).toEqual(['df1']);
    now = 3001;
    expect(await listing.get()).toEqual(['df2']);
    expect(asked).toBe(2);
  });

  it('does not keep a listing that came back empty (a busy kernel)', async () => {
    const answers = [[], ['totals']];
    let asked = 0;
    const listing = new SharedListing(
      () => Promise.resolve(answers[asked++]),
      3000,
      () => 0
    );
    expect(await listing.get()).toEqual([]);
    expect(await listing.get()).toEqual(['totals']);
    expect(await listing.get()).toEqual(['totals']);
    expect(asked).toBe(2);
  });
});
