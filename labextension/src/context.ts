/**
 * What the panel sends of the open notebook with a run (`RunRequest.context` on the server): the cells in
 * order with their text outputs and errors (trimmed here; the server bounds and fits them again), the active
 * cell and the selected text. The server adds the notebook folder's file names; the model sees no values.
 */
import { ICodeCellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import { str } from './values';

/** Bounds the server also checks (`llm_agent_magic/notebook_context.py`). */
const MAX_CELLS = 2000;
const MAX_CHARS = 20000;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g;

export interface IContextCell {
  source: string;
  kind: 'code' | 'markdown' | 'raw';
  outputs: string;
  error: string;
}

export interface IContextVariable {
  name: string;
  type: string;
  shape: string;
  columns: string[][];
}

export interface INotebookContext {
  cells: IContextCell[];
  active: number;
  selection: string;
  variables: IContextVariable[];
}

/** How long the panel waits for the kernel to describe its variables before it sends the run without them. */
const VARIABLES_TIMEOUT_MS = 2000;
/** A user expression: evaluated by the kernel without running a cell, storing or changing anything. */
const VARIABLES_EXPRESSION = "__import__('llm_agent_magic.magic.namespace', fromlist=['_']).PanelVariables()";

function trim(text: string): string {
  const clean = text.replace(ANSI, '');
  return clean.length <= MAX_CHARS ? clean : clean.slice(0, MAX_CHARS / 2) + '\n[...]\n' + clean.slice(-MAX_CHARS / 2);
}

function joined(value: unknown): string {
  return Array.isArray(value) ? value.join('') : typeof value === 'string' ? value : '';
}

function outputsOf(model: ICodeCellModel): { outputs: string; error: string } {
  const texts: string[] = [];
  let error = '';
  for (const out of model.outputs.toJSON()) {
    if (out.output_type === 'stream') {
      texts.push(joined(out.text));
    } else if (out.output_type === 'execute_result' || out.output_type === 'display_data') {
      const data = out.data as Record<string, unknown> | undefined;
      if (data && 'text/plain' in data) {
        texts.push(joined(data['text/plain']));
      }
    } else if (out.output_type === 'error') {
      const trace = Array.isArray(out.traceback) ? out.traceback.join('\n') : '';
      error = trace || `${str(out.ename)}: ${str(out.evalue)}`;
    }
  }
  return { outputs: trim(texts.join('')), error: trim(error) };
}

/**
 * The names, types, shapes and DataFrame columns of the variables in `nb`'s kernel (never their values), or []
 * when the kernel is busy (a run never waits behind the user's cell), has no llm_agent_magic, or is slow.
 */
export async function kernelVariables(nb: NotebookPanel): Promise<IContextVariable[]> {
  const kernel = nb.sessionContext.session?.kernel;
  if (!kernel || kernel.status !== 'idle') {
    return [];
  }
  const future = kernel.requestExecute(
    { code: '', silent: true, store_history: false, allow_stdin: false, user_expressions: { v: VARIABLES_EXPRESSION } },
    true
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>(resolve => {
    timer = setTimeout(() => resolve(null), VARIABLES_TIMEOUT_MS);
  });
  try {
    const reply = await Promise.race([future.done, late]);
    if (!reply || reply.content.status !== 'ok') {
      return [];
    }
    const expressions = reply.content.user_expressions as Record<string, { status?: string; data?: Record<string, unknown> }>;
    const found = expressions?.v;
    const text = found?.status === 'ok' ? found.data?.['text/plain'] : undefined;
    const parsed: unknown = typeof text === 'string' ? JSON.parse(text) : [];
    return Array.isArray(parsed) ? (parsed as IContextVariable[]) : [];
  } catch {
    return []; // a kernel that answered something else: the run goes without variables
  } finally {
    clearTimeout(timer);
  }
}

/** The context of `nb` as the user sees it now, or null when no notebook is open. */
export async function notebookContext(nb: NotebookPanel | null): Promise<INotebookContext | null> {
  if (!nb || nb.isDisposed) {
    return null;
  }
  const notebook = nb.content;
  const cells: IContextCell[] = notebook.widgets.slice(-MAX_CELLS).map(cell => {
    const kind = cell.model.type === 'code' || cell.model.type === 'markdown' ? cell.model.type : 'raw';
    const found = kind === 'code' ? outputsOf(cell.model as ICodeCellModel) : { outputs: '', error: '' };
    return { source: trim(cell.model.sharedModel.getSource()), kind, ...found };
  });
  const offset = Math.max(0, notebook.widgets.length - MAX_CELLS);
  const active = notebook.activeCellIndex - offset;
  let selection = '';
  const editor = notebook.activeCell?.editor;
  if (editor) {
    const range = editor.getSelection();
    const start = editor.getOffsetAt(range.start);
    const end = editor.getOffsetAt(range.end);
    selection = trim(editor.model.sharedModel.getSource().slice(Math.min(start, end), Math.max(start, end)));
  }
  const variables = await kernelVariables(nb);
  return { cells, active: active >= 0 && active < cells.length ? active : -1, selection, variables };
}
