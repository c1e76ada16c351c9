/**
 * The panel's own part in putting generated cells into a notebook; the cells themselves come ready from the
 * server (cells.py builds them, as for `%%agent` and `llm-agent run`). What is left here is what only the
 * browser can know: which output carries a bundle, which cells a run already put in, and which of them the user
 * has edited since (a hash of the source each was inserted with). Pure functions, no JupyterLab import.
 */
import type * as nbformat from '@jupyterlab/nbformat';

export const CELLS_MIME = 'application/vnd.llm-agent.cells+json';
const BUNDLE_VERSION = 1;
/** The provenance cells.py's insertable_cells writes (INSERTED_BY). */
export const INSERTED_BY = 'llm-agent panel';

/** A cell's `metadata.llm_agent`, as far as the panel reads it. */
export interface IProvenance {
  run_id?: string;
  inserted_by?: string;
  origin?: string;
  from_cell?: string;
  source_hash?: string;
  [key: string]: unknown;
}

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

export function sourceText(raw: nbformat.MultilineString | undefined): string {
  return Array.isArray(raw) ? raw.join('') : typeof raw === 'string' ? raw : '';
}

/** The server's ready cells, each remembering the source it goes in with (so an edit can be told later). */
export function withSourceHashes(cells: nbformat.ICodeCell[]): nbformat.ICodeCell[] {
  return cells.map(cell => {
    const provenance = (cell.metadata?.llm_agent ?? {}) as IProvenance;
    const llm_agent = { ...provenance, source_hash: sourceHash(sourceText(cell.source)) };
    return { ...cell, metadata: { ...cell.metadata, llm_agent } };
  });
}

/** The run id of the `%%agent` cells bundle an output carries, or null when it carries none (of this version). */
export function bundleRunOf(output: nbformat.IOutput): string | null {
  const data = (output as nbformat.IDisplayData).data;
  const bundle = data?.[CELLS_MIME] as { version?: unknown; run_id?: unknown; cells?: unknown } | undefined;
  if (!bundle || typeof bundle !== 'object' || bundle.version !== BUNDLE_VERSION || !Array.isArray(bundle.cells)) {
    return null;
  }
  return typeof bundle.run_id === 'string' ? bundle.run_id : '';
}

/** Whether the notebook already holds cells of run `runId` (provenances of its cells, in order). */
export function hasRun(provenances: (IProvenance | null)[], runId: string): boolean {
  return !!runId && provenances.some(p => p?.run_id === runId);
}

/**
 * The indices (last first, so deleting them in order keeps the others valid) of the cells an earlier run of the
 * `%%agent` cell `agentCellId` inserted and the user has not edited since: a re-run replaces them.
 */
export function replacedCells(cells: { provenance: IProvenance | null; source: string }[], agentCellId: string): number[] {
  const replaced: number[] = [];
  for (let i = cells.length - 1; i >= 0; i--) {
    const meta = cells[i].provenance;
    if (
      meta &&
      meta.from_cell === agentCellId &&
      meta.inserted_by === INSERTED_BY &&
      meta.source_hash === sourceHash(cells[i].source)
    ) {
      replaced.push(i);
    }
  }
  return replaced;
}
