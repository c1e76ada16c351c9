/**
 * Generated code into the notebook as real cells: a panel run's cells below the active cell, and the
 * `application/vnd.llm-agent.cells+json` bundle of a `%%agent` output as cells below that cell.
 *
 * Inserted cells are never executed in the user's kernel: they ran in the sandbox, and their outputs are
 * the recorded ones, untrusted like any output the user did not produce. Each carries `metadata.llm_agent`
 * (the provenance cells.py writes) plus the hash of the source it was inserted with, so a later re-run
 * of the `%%agent` cell can tell cells the user has edited (kept) from untouched ones (replaced).
 */
import type { ICodeCellModel } from '@jupyterlab/cells';
import type * as nbformat from '@jupyterlab/nbformat';
import type { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';

export const CELLS_MIME = 'application/vnd.llm-agent.cells+json';
const BUNDLE_VERSION = 1;
export const INSERTED_BY = 'llm-agent panel';

type Provenance = Record<string, unknown>;

/** A short stable hash of a cell's source (53-bit FNV-style mix; not for security, only "did it change"). */
export function sourceHash(source: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < source.length; i++) {
    const ch = source.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16);
}

function provenanceOf(cell: { getMetadata(key: string): unknown }): Provenance | null {
  const meta = cell.getMetadata('llm_agent');
  return meta && typeof meta === 'object' ? (meta as Provenance) : null;
}

function sourceOf(raw: unknown): string {
  return Array.isArray(raw) ? raw.join('') : typeof raw === 'string' ? raw : '';
}

/** Cells as they go into the notebook: no ids of their own, no trust, provenance with the source hash. */
function prepared(cells: nbformat.ICodeCell[], extra: Provenance): nbformat.ICodeCell[] {
  return cells
    .filter(c => c && c.cell_type === 'code')
    .map(c => {
      const source = sourceOf(c.source);
      const metadata = { ...(c.metadata ?? {}) } as Record<string, unknown>;
      delete metadata.trusted;
      const llm = { ...((metadata.llm_agent as Provenance) ?? {}), ...extra, source_hash: sourceHash(source) };
      metadata.llm_agent = llm;
      return {
        cell_type: 'code',
        execution_count: null,
        metadata,
        outputs: Array.isArray(c.outputs) ? c.outputs : [],
        source
      } as nbformat.ICodeCell;
    });
}

function hasRun(model: INotebookModel, runId: string): boolean {
  if (!runId) {
    return false;
  }
  for (let i = 0; i < model.cells.length; i++) {
    if (provenanceOf(model.cells.get(i))?.run_id === runId) {
      return true;
    }
  }
  return false;
}

/** Put a panel run's cells below the notebook's active cell; returns how many (0 if that run is there). */
export function insertBelowActive(panel: NotebookPanel, runId: string, cells: nbformat.ICodeCell[]): number {
  const model = panel.content.model;
  if (!model || !cells.length || hasRun(model, runId)) {
    return 0;
  }
  const index = Math.min(panel.content.activeCellIndex + 1, model.cells.length);
  const ready = prepared(cells, { inserted_by: INSERTED_BY, origin: 'panel' });
  model.sharedModel.insertCells(index, ready);
  return ready.length;
}

interface IBundle {
  version: number;
  run_id: string;
  cells: nbformat.ICodeCell[];
  status?: string;
}

function bundleOf(output: nbformat.IOutput): IBundle | null {
  const data = (output as nbformat.IDisplayData).data;
  const bundle = data && (data[CELLS_MIME] as unknown);
  if (!bundle || typeof bundle !== 'object' || (bundle as IBundle).version !== BUNDLE_VERSION) {
    return null;
  }
  return Array.isArray((bundle as IBundle).cells) ? (bundle as IBundle) : null;
}

/**
 * Turn every `%%agent` bundle in `cell`'s outputs into real cells below it, once; then rewrite that output
 * to its one-line text/plain so the notebook holds the cells (and their images) once, not twice.
 * Returns how many cells were inserted.
 */
export function materialize(model: INotebookModel, cell: ICodeCellModel): number {
  let added = 0;
  for (let o = 0; o < cell.outputs.length; o++) {
    const output = cell.outputs.get(o).toJSON() as nbformat.IOutput;
    const bundle = bundleOf(output);
    if (!bundle) {
      continue;
    }
    let written = 0;
    if (hasRun(model, bundle.run_id)) {
      written = bundle.cells.length; // already real cells (an executed notebook from llm-agent run)
    } else {
      removeEarlier(model, cell.id);
      const index = indexOf(model, cell.id) + 1;
      const ready = prepared(bundle.cells, { inserted_by: INSERTED_BY, origin: 'magic', from_cell: cell.id });
      if (index > 0 && ready.length) {
        model.sharedModel.insertCells(index, ready);
        written = ready.length;
        added += written;
      }
    }
    // As cells.py's slim_cells_output does for `llm-agent run`: only the one-line text/plain stays.
    const plain = sourceOf((output as nbformat.IDisplayData).data?.['text/plain']) || `llm-agent: run ${bundle.status ?? 'unknown'}`;
    cell.outputs.set(o, {
      output_type: 'display_data',
      data: { 'text/plain': plain },
      metadata: { llm_agent: { run_id: bundle.run_id, status: bundle.status ?? 'unknown', cells_written: written } }
    });
  }
  return added;
}

function indexOf(model: INotebookModel, cellId: string): number {
  for (let i = 0; i < model.cells.length; i++) {
    if (model.cells.get(i).id === cellId) {
      return i;
    }
  }
  return -1;
}

/** Delete the cells an earlier run of this `%%agent` cell inserted, except the ones the user has edited. */
function removeEarlier(model: INotebookModel, agentCellId: string): void {
  for (let i = model.cells.length - 1; i >= 0; i--) {
    const cell = model.cells.get(i);
    const meta = provenanceOf(cell);
    if (!meta || meta.from_cell !== agentCellId || meta.inserted_by !== INSERTED_BY) {
      continue;
    }
    if (meta.source_hash === sourceHash(cell.sharedModel.getSource())) {
      model.sharedModel.deleteCell(i);
    }
  }
}

/** Watches one notebook: each `%%agent` bundle that appears (or was saved in it) becomes cells, once. */
export class AgentCellWatcher {
  constructor(
    private readonly panel: NotebookPanel,
    private readonly enabled: () => boolean,
    private readonly onMaterialized: (panel: NotebookPanel, added: number) => void
  ) {
    void panel.context.ready.then(() => {
      const model = panel.content.model;
      if (!model || panel.isDisposed) {
        return;
      }
      for (let i = 0; i < model.cells.length; i++) {
        this.watch(model.cells.get(i));
      }
      model.cells.changed.connect((_, change) => {
        if (change.type === 'add' || change.type === 'set') {
          change.newValues.forEach(cell => this.watch(cell));
        }
      });
    });
  }

  private watch(cell: { type: string; id: string }): void {
    if (cell.type !== 'code' || this._watched.has(cell)) {
      return;
    }
    this._watched.add(cell);
    const code = cell as unknown as ICodeCellModel;
    code.outputs.changed.connect((_, change) => {
      if ((change.type === 'add' || change.type === 'set') && change.newValues.some(v => bundleOf(v.toJSON() as nbformat.IOutput))) {
        this.schedule(code);
      }
    });
    for (let o = 0; o < code.outputs.length; o++) {
      if (bundleOf(code.outputs.get(o).toJSON() as nbformat.IOutput)) {
        this.schedule(code);
        break;
      }
    }
  }

  /** After the change that brought the bundle has been handled: a model is not changed inside its own signal. */
  private schedule(cell: ICodeCellModel): void {
    if (this._scheduled.has(cell.id)) {
      return;
    }
    this._scheduled.add(cell.id);
    window.setTimeout(() => {
      this._scheduled.delete(cell.id);
      const model = this.panel.content.model;
      if (!model || this.panel.isDisposed || cell.isDisposed || !this.enabled()) {
        return;
      }
      const added = materialize(model, cell);
      this.onMaterialized(this.panel, added);
    }, 0);
  }

  private _watched = new WeakSet<object>();
  private _scheduled = new Set<string>();
}
