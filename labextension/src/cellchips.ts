/**
 * Cells the user adds to the chat, and what the panel may do to the open notebook. Pure: no DOM, no JupyterLab
 * (cellactions.ts does those); model.ts holds the chips and sends them with the next request.
 */
import type { INotebookContext } from './context';

/** Characters of one added cell sent (the server bounds the whole selection again). */
const CHIP_CHARS = 20000;

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

function clipped(text: string): string {
  return text.length <= CHIP_CHARS ? text : text.slice(0, CHIP_CHARS / 2) + '\n[...]\n' + text.slice(-CHIP_CHARS / 2);
}

/** The cells as the text the model reads (a fence longer than any backtick run inside, as widget.tsx's `fenced`). */
export function cellsText(chips: ICellChip[]): string {
  return chips
    .map(chip => {
      const source = clipped(chip.source.replace(/\s+$/, ''));
      if (chip.kind !== 'code') {
        return `${chip.label} (${chip.kind}):\n${source}`;
      }
      const longest = Math.max(2, ...(source.match(/`+/g) ?? []).map(run => run.length));
      const fence = '`'.repeat(longest + 1);
      return `${chip.label}:\n${fence}python\n${source}\n${fence}`;
    })
    .join('\n\n');
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
  const added = `Cells the user added to the chat:\n\n${cellsText(chips)}`;
  return { ...base, selection: base.selection ? `${base.selection}\n\n${added}` : added };
}
