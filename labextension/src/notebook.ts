/**
 * Generated code into the notebook as real cells: a panel run's cells below the active cell, and the
 * `application/vnd.llm-agent.cells+json` bundle of a `%%agent` output as cells below that cell.
 *
 * The server makes the cells (`GET runs/{id}/cells?origin=panel`, `POST output-cells`: cells.py's rules, the
 * ones `llm-agent run` follows); this module only inserts them, replaces an earlier run's cells the user has
 * not edited (cellinsert.ts) and puts the output the server slimmed in place of the bundle. Inserted cells are
 * never executed in the user's kernel: they ran in the sandbox, their outputs are the recorded ones, untrusted.
 */
import type { ICodeCellModel } from '@jupyterlab/cells';
import type * as nbformat from '@jupyterlab/nbformat';
import type { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';

import { IProvenance, bundleRunOf, hasRun, replacedCells, withSourceHashes } from './cellinsert';
import { message } from './values';
import type { IOutputCells } from './wire';

export { CELLS_MIME, INSERTED_BY, sourceHash } from './cellinsert';

/** What makes a `%%agent` output's cells (handler.ts's AgentAPI). */
export type OutputCells = (output: nbformat.IOutput, fromCell: string) => Promise<IOutputCells>;

function provenanceOf(cell: { getMetadata(key: string): unknown }): IProvenance | null {
  const meta = cell.getMetadata('llm_agent');
  return meta && typeof meta === 'object' ? (meta as IProvenance) : null;
}

function provenances(model: INotebookModel): (IProvenance | null)[] {
  const all: (IProvenance | null)[] = [];
  for (let i = 0; i < model.cells.length; i++) {
    all.push(provenanceOf(model.cells.get(i)));
  }
  return all;
}

/** Put a panel run's ready cells below the notebook's active cell; returns how many (0 if that run is there). */
export function insertBelowActive(panel: NotebookPanel, runId: string, cells: nbformat.ICodeCell[]): number {
  const model = panel.content.model;
  if (!model || !cells.length || hasRun(provenances(model), runId)) {
    return 0;
  }
  const index = Math.min(panel.content.activeCellIndex + 1, model.cells.length);
  model.sharedModel.insertCells(index, withSourceHashes(cells));
  return cells.length;
}

function indexOf(model: INotebookModel, cellId: string): number {
  for (let i = 0; i < model.cells.length; i++) {
    if (model.cells.get(i).id === cellId) {
      return i;
    }
  }
  return -1;
}

/**
 * Turn every `%%agent` bundle in `cell`'s outputs into real cells below it, once; then put the output the server
 * slimmed (its one line of text) in its place, so the notebook holds the cells (and their images) once, not
 * twice. Returns how many cells were inserted.
 */
export async function materialize(model: INotebookModel, cell: ICodeCellModel, outputCells: OutputCells): Promise<number> {
  const bundles: { index: number; runId: string; output: nbformat.IOutput }[] = [];
  for (let o = 0; o < cell.outputs.length; o++) {
    const output = cell.outputs.get(o).toJSON();
    const runId = bundleRunOf(output);
    if (runId !== null) {
      bundles.push({ index: o, runId, output });
    }
  }
  let added = 0;
  for (const { index, runId, output } of bundles) {
    const ready = await outputCells(output, cell.id);
    const now = index < cell.outputs.length ? cell.outputs.get(index).toJSON() : null;
    if (cell.isDisposed || !now || bundleRunOf(now) !== runId) {
      continue; // the cell ran again (or went) while the server answered
    }
    if (!hasRun(provenances(model), runId)) {
      const notebook = model.cells;
      const earlier = replacedCells(
        Array.from({ length: notebook.length }, (_, i) => ({
          provenance: provenanceOf(notebook.get(i)),
          source: notebook.get(i).sharedModel.getSource()
        })),
        cell.id
      );
      earlier.forEach(i => model.sharedModel.deleteCell(i));
      const below = indexOf(model, cell.id) + 1;
      if (below > 0 && ready.cells.length) {
        model.sharedModel.insertCells(below, withSourceHashes(ready.cells));
        added += ready.cells.length;
      }
    } // else already real cells (an executed notebook from llm-agent run, or a saved one)
    cell.outputs.set(index, ready.output);
  }
  return added;
}

/** Watches one notebook: each `%%agent` bundle that appears (or was saved in it) becomes cells, once. */
export class AgentCellWatcher {
  constructor(
    private readonly panel: NotebookPanel,
    private readonly enabled: () => boolean,
    private readonly outputCells: OutputCells,
    private readonly onMaterialized: (panel: NotebookPanel, added: number) => void,
    private readonly onError: (message: string) => void
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
    const carries = (output: { toJSON(): unknown }): boolean => bundleRunOf(output.toJSON() as nbformat.IOutput) !== null;
    code.outputs.changed.connect((_, change) => {
      if ((change.type === 'add' || change.type === 'set') && change.newValues.some(carries)) {
        this.schedule(code);
      }
    });
    for (let o = 0; o < code.outputs.length; o++) {
      if (carries(code.outputs.get(o))) {
        this.schedule(code);
        break;
      }
    }
  }

  /**
   * After the change that brought the bundle has been handled: a model is not changed inside its own signal.
   * One materialization per cell at a time; a bundle that comes meanwhile is handled after it.
   */
  private schedule(cell: ICodeCellModel): void {
    if (this._busy.has(cell.id)) {
      this._again.add(cell.id);
      return;
    }
    this._busy.add(cell.id);
    window.setTimeout(() => void this.materialize(cell), 0);
  }

  private async materialize(cell: ICodeCellModel): Promise<void> {
    const model = this.panel.content.model;
    try {
      if (model && !this.panel.isDisposed && !cell.isDisposed && this.enabled()) {
        this.onMaterialized(this.panel, await materialize(model, cell, this.outputCells));
      }
    } catch (error) {
      this.onError(`The generated cells of a %%agent cell could not be inserted: ${message(error)}`);
    } finally {
      this._busy.delete(cell.id);
      if (this._again.delete(cell.id)) {
        this.schedule(cell);
      }
    }
  }

  private _watched = new WeakSet<object>();
  private _busy = new Set<string>();
  private _again = new Set<string>();
}
