/**
 * Cells the user adds to the chat, and what the panel may do to the open notebook. Pure: no DOM, no JupyterLab
 * (cellactions.ts does those, with the helpers below); model.ts holds the chips and sends them with the next request.
 */
import type * as nbformat from '@jupyterlab/nbformat';

import type { INotebookContext } from './context';

/** Characters of one added cell sent, at most, and at least when many share the selection. */
const CHIP_CHARS = 20000;
const MIN_CHIP_CHARS = 2000;
/**
 * Characters of the selection a request goes with, the user's selected text and the added cells together: the
 * server refuses a selection over 200,000 (notebook_context.py's MAX_CELL_CHARS), and a JavaScript length is never
 * shorter than Python's.
 */
export const SELECTION_CHARS = 180000;
/** What the selection says before the added cells. */
const ADDED = 'Cells the user added to the chat:\n\n';
/**
 * Characters of a failing cell's error sent with a fix (its start and its end, where the exception is): the server
 * reads 12,000 of it (agents/fix.py's TRACEBACK_CHARS) and refuses a field over 200,000 outright.
 */
export const ERROR_CHARS = 12000;
/** Characters of a cell's printed outputs sent with a fix or an explanation. */
export const OUTPUT_CHARS = 4000;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

/** A cell of the notebook added to the chat: shown as a chip in the composer, sent with the next request. */
export interface ICellChip {
  /** The cell's model id (one chip per cell). */
  id: string;
  /** What the chip says: "cell [3]" (its execution count) or "cell 4" (its place). */
  label: string;
  source: string;
  kind: 'code' | 'markdown' | 'raw';
}

/** Where a fix goes, and how code from the panel reaches the notebook; each returns '' or what went wrong. */
export interface INotebookBridge {
  /** Put `source` in place of the cell `cellId` (else the notebook's cell whose source is `was`). */
  replaceCell(cellId: string, was: string, source: string): string;
  /** A new cell below that cell (or below the active one when `cellId` is ''), holding `source`. */
  insertBelow(cellId: string, was: string, source: string): string;
  /** Run a cell of the notebook in its own kernel (the user's). */
  runCell(cellId: string, was: string): Promise<string>;
  /** Put `source` in place of the active cell's. */
  replaceActive(source: string): string;
  /** The notebook's failing active cell, if it has one: what the panel offers to fix or explain. */
  failingActive(): { label: string; cellId: string } | null;
  /** Names of the files in the notebook's folder (`sub` a folder below it, "" for itself); folders end in "/". */
  listFiles(sub: string): Promise<string[]>;
  /** Names of the variables in the notebook's kernel. */
  listVariables(): Promise<string[]>;
  /** Fix or explain a cell (the panel's own buttons run the same commands as the cell's context menu). */
  act(action: 'fix' | 'explain', cellId: string): void;
}

/** The notebook cell a fix run was asked for (the run's view is the key; a run read from the history has none). */
export const fixTargets = new WeakMap<object, string>();

/**
 * The first `n` characters of `text` (UTF-16 units), one fewer rather than half of a character outside the basic
 * plane (an emoji): a lone surrogate is not text, and the server could not store it.
 */
export function head(text: string, n: number): string {
  const code = text.charCodeAt(n - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? n - 1 : n);
}

/** The last `n` characters of `text`, as `head` does at the start. */
export function tail(text: string, n: number): string {
  const at = Math.max(0, text.length - n);
  const code = text.charCodeAt(at);
  return text.slice(code >= 0xdc00 && code <= 0xdfff ? at + 1 : at);
}

/** `text` cut to about `limit` characters, its start and its end kept. */
export function clipped(text: string, limit = CHIP_CHARS): string {
  const half = Math.floor(limit / 2);
  return text.length <= limit ? text : head(text, half) + '\n[...]\n' + tail(text, half);
}

/** A text field of an output or a cell as nbformat holds it: a string, or a list of lines. */
export function nbText(value: unknown): string {
  return Array.isArray(value)
    ? value.map(part => (typeof part === 'string' ? part : '')).join('')
    : typeof value === 'string'
      ? value
      : '';
}

/** The error of a code cell's outputs as plain text (its traceback without colours), '' when it has none. */
export function errorText(outputs: nbformat.IOutput[]): string {
  for (const out of outputs) {
    if (out.output_type === 'error') {
      const lines: unknown[] = Array.isArray(out.traceback) ? out.traceback : [];
      const trace = lines.filter((line): line is string => typeof line === 'string').join('\n');
      return clipped((trace || `${nbText(out.ename)}: ${nbText(out.evalue)}`).replace(ANSI, ''), ERROR_CHARS);
    }
  }
  return '';
}

/** What a code cell printed and showed as text, without colours, bounded. */
export function outputsText(outputs: nbformat.IOutput[]): string {
  const texts: string[] = [];
  let length = 0;
  for (const out of outputs) {
    if (length > OUTPUT_CHARS) {
      break; // a cell that printed a million lines: only the start is sent
    }
    let part = '';
    if (out.output_type === 'stream') {
      part = nbText(out.text);
    } else if (out.output_type === 'execute_result' || out.output_type === 'display_data') {
      part = nbText((out.data as Record<string, unknown> | undefined)?.['text/plain']);
    }
    texts.push(part);
    length += part.length;
  }
  return head(texts.join('').replace(ANSI, ''), OUTPUT_CHARS);
}

/** "cell [3]" for a cell that ran (its execution count), else its place (`index` from 0): "cell 4". */
export function cellLabel(count: number | null | undefined, index: number): string {
  return count ? `cell [${count}]` : `cell ${index + 1}`;
}

/** A cell type as a chip's kind. */
export function chipKind(type: unknown): ICellChip['kind'] {
  return type === 'code' || type === 'markdown' ? type : 'raw';
}

/**
 * The chips of cells dragged in as nbformat JSON (another notebook's drag, without its cell widgets). A cell without
 * an id gets one from its place in the drag, `now` telling drags apart.
 */
export function droppedChips(cells: unknown[], now: number): ICellChip[] {
  return cells
    .filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null)
    .map((c, i) => ({
      id: typeof c.id === 'string' && c.id ? c.id : `dropped-${now}-${i}`,
      label: typeof c.execution_count === 'number' && c.execution_count ? `cell [${c.execution_count}]` : 'cell',
      source: nbText(c.source),
      kind: chipKind(c.cell_type)
    }));
}

/**
 * The folder to list for a file mention: `sub` (a folder the user typed, "data/") under the notebook's own folder.
 * Null when `sub` climbs out of it (`..`) or starts at the root: the completion offers the notebook's files only.
 */
export function listingFolder(notebookPath: string, sub: string): string | null {
  const parts = sub.split('/').filter(p => p && p !== '.');
  if (sub.startsWith('/') || parts.includes('..')) {
    return null;
  }
  const slash = notebookPath.lastIndexOf('/');
  return [slash >= 0 ? notebookPath.slice(0, slash) : '', ...parts].filter(p => p).join('/');
}

/** A character that has no place in a message (a file's name may hold a newline; written out, it splits the text). */
function control(c: string): boolean {
  const code = c.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
}

/** A contents listing's entries as completion names: hidden ones and those with control characters left out, folders ending in "/". */
export function listedNames(content: unknown): string[] {
  if (!Array.isArray(content)) {
    return [];
  }
  return (content as { name?: unknown; type?: unknown }[])
    .filter(i => typeof i.name === 'string' && i.name && !i.name.startsWith('.') && ![...i.name].some(control))
    .map(i => (i.type === 'directory' ? `${i.name as string}/` : (i.name as string)));
}

/** Each cell once (by id, or by kind and source: one cell dragged in twice from another notebook). */
export function uniqueChips(chips: ICellChip[]): ICellChip[] {
  const ids = new Set<string>();
  const texts = new Set<string>();
  return chips.filter(chip => {
    const text = `${chip.kind}\n${chip.source}`;
    if (ids.has(chip.id) || texts.has(text)) {
      return false;
    }
    ids.add(chip.id);
    texts.add(text);
    return true;
  });
}

/** The longest run of backticks in `text` (a loop: the text is a stranger's, no pattern over it). */
function longestTicks(text: string): number {
  let longest = 0;
  let run = 0;
  for (const c of text) {
    run = c === '`' ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

/**
 * A cell as the text the model reads, in a fence longer than any backtick run inside (as widget.tsx's `fenced`): a
 * markdown cell's own fences or a line like "cell [3]:" in it cannot pass for another cell.
 */
function cellText(chip: ICellChip, limit: number): string {
  const source = clipped(chip.source.trimEnd(), limit);
  const fence = '`'.repeat(Math.max(2, longestTicks(source)) + 1);
  const language = chip.kind === 'code' ? 'python' : chip.kind === 'markdown' ? 'markdown' : 'text';
  const title = chip.kind === 'code' ? chip.label : `${chip.label} (${chip.kind})`;
  return `${title}:\n${fence}${language}\n${source}\n${fence}`;
}

/**
 * The cells as the text the model reads, each once, in at most `room` characters: each cell gets its share (between
 * 2,000 and 20,000 characters of it), and the cells that do not fit then are left out, saying how many.
 */
export function cellsText(chips: ICellChip[], room = SELECTION_CHARS - ADDED.length): string {
  const unique = uniqueChips(chips);
  const note = (left: number): string => `[${left} more cells the user added were left out: too long to send]`;
  const share = Math.min(CHIP_CHARS, Math.max(MIN_CHIP_CHARS, Math.floor(room / unique.length) - 200));
  const parts: string[] = [];
  let used = 0;
  for (const chip of unique) {
    const part = cellText(chip, share);
    if (used + part.length + 2 + note(unique.length).length > room) {
      parts.push(note(unique.length - parts.length));
      break;
    }
    parts.push(part);
    used += part.length + 2;
  }
  return parts.join('\n\n');
}

/**
 * The context sent with a request, with the added cells in its selection (the part of the notebook the user
 * pointed at): the server shows the model "Selected text in the notebook", whatever `AgentConfig.context` says
 * of the rest. Without a notebook (a chat of its own), a context holding only them.
 */
export function withCells(context: INotebookContext | null, chips: ICellChip[]): INotebookContext | null {
  if (!chips.length) {
    return context;
  }
  const base: INotebookContext = context ?? { cells: [], active: -1, selection: '', variables: [] };
  const before = base.selection ? `${base.selection}\n\n` : '';
  const added = ADDED + cellsText(chips, SELECTION_CHARS - before.length - ADDED.length);
  return { ...base, selection: before + added };
}
