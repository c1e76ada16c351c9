/**
 * The notebook's cells and the panel: "Fix with agent" and "Explain" on a failing cell (the cell's context menu,
 * buttons below its error output, the panel's own bar), "Add selected cells to chat" (and dragging cells into the
 * panel), and the bridge through which the panel replaces or inserts cells (cellchips.ts says what it offers).
 *
 * No agent logic here: a fix or an explanation is a `fix` / `explain` message with the cell's source, its
 * traceback and the kernel's variables; the server builds the request and returns the corrected cell in a
 * `fix_proposed` event (llm_agent_magic/agents/fix.py), which the panel shows as a diff (diffview.tsx).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { Cell, ICodeCellModel } from '@jupyterlab/cells';
import type * as nbformat from '@jupyterlab/nbformat';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { PanelLayout, Widget } from '@lumino/widgets';

import {
  ICellChip,
  INotebookBridge,
  cellLabel,
  chipKind,
  droppedChips,
  errorText,
  fixTargets,
  listedNames,
  listingFolder,
  outputsText
} from './cellchips';
import { kernelVariables } from './context';
import { AgentModel } from './model';

export const FIX_COMMAND = 'llm-agent:fix-cell';
export const EXPLAIN_COMMAND = 'llm-agent:explain-cell';
export const ADD_CELLS_COMMAND = 'llm-agent:add-cells';

/** What a notebook's cell drag carries (@jupyterlab/notebook): the cells' JSON, and the cell widgets themselves. */
const CELLS_MIME = 'application/vnd.jupyter.cells';
const CELL_WIDGETS_MIME = 'internal:cells';

type Action = 'fix' | 'explain';

function outputsOf(cell: Cell): nbformat.IOutput[] {
  return cell.model.type === 'code' ? (cell.model as ICodeCellModel).outputs.toJSON() : [];
}

function errorOf(cell: Cell): string {
  return errorText(outputsOf(cell));
}

function countOf(cell: Cell): number | null {
  return cell.model.type === 'code' ? (cell.model as ICodeCellModel).executionCount : null;
}

/** "cell [3]" for a cell that ran (its execution count), else its place: "cell 4". */
function labelOf(nb: NotebookPanel, cell: Cell): string {
  return cellLabel(countOf(cell), nb.content.widgets.indexOf(cell));
}

function chipOf(nb: NotebookPanel, cell: Cell): ICellChip {
  return {
    id: cell.model.id,
    label: labelOf(nb, cell),
    source: cell.model.sharedModel.getSource(),
    kind: chipKind(cell.model.type)
  };
}

/**
 * Everything of the notebook side; `notebookFor(path)` is the open notebook of the panel's session (index.ts),
 * `follow(nb)` makes the panel show that notebook's session.
 */
export function registerCellActions(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  model: AgentModel,
  panel: Widget,
  notebookFor: (path: string) => NotebookPanel | null,
  follow: (nb: NotebookPanel) => Promise<void>,
  palette: ICommandPalette | null
): void {
  /** The cell a command is about: the one named in its args, else the one right-clicked, else the active one. */
  const cellFor = (args: Record<string, unknown>): { nb: NotebookPanel; cell: Cell } | null => {
    const id = typeof args.cellId === 'string' ? args.cellId : '';
    // The right-clicked cell, only when the command came from the context menu (the last right-click stays known).
    const hit = args.fromMenu ? app.contextMenuHitTest(node => node.classList.contains('jp-Cell')) : undefined;
    if (!id && !hit) {
      const nb = tracker.currentWidget;
      return nb && nb.content.activeCell ? { nb, cell: nb.content.activeCell } : null;
    }
    for (const nb of [tracker.currentWidget, ...allNotebooks()]) {
      const cell = nb?.content.widgets.find(c => (id ? c.model.id === id : c.node === hit));
      if (nb && cell) {
        return { nb, cell };
      }
    }
    return null;
  };
  const allNotebooks = (): NotebookPanel[] => {
    const found: NotebookPanel[] = [];
    tracker.forEach(nb => found.push(nb));
    return found;
  };
  const cellById = (cellId: string, was: string): { nb: NotebookPanel; cell: Cell } | null => {
    const nb = notebookFor(model.notebookPath);
    if (!nb) {
      return null;
    }
    const cell =
      nb.content.widgets.find(c => cellId && c.model.id === cellId) ??
      nb.content.widgets.find(c => was && c.model.sharedModel.getSource() === was);
    return cell ? { nb, cell } : null;
  };

  const act = async (action: Action, args: Record<string, unknown>): Promise<void> => {
    const found = cellFor(args);
    if (!found) {
      model.showError(`Select the cell to ${action === 'fix' ? 'fix' : 'explain'} first.`);
      return;
    }
    const { nb, cell } = found;
    const source = cell.model.sharedModel.getSource();
    const error = errorOf(cell);
    if (!source.trim() || (action === 'fix' && !error)) {
      model.showError(action === 'fix' ? 'This cell has no error to fix: run it first.' : 'This cell is empty.');
      return;
    }
    app.shell.activateById(panel.id);
    if (model.notebookPath !== nb.context.path) {
      await follow(nb); // the cell's notebook's session, so the fix is part of its history
    }
    const count = countOf(cell);
    const label = labelOf(nb, cell);
    const message: Record<string, unknown> = {
      type: action,
      source,
      error,
      outputs: outputsText(outputsOf(cell)),
      number: count ?? nb.content.widgets.indexOf(cell) + 1,
      notebook_path: nb.context.path,
      context: { cells: [], active: -1, selection: '', variables: await kernelVariables(nb) }
    };
    const run = model.startRun(message, action === 'fix' ? `Fix ${label}` : `Explain ${label}`);
    if (run) {
      fixTargets.set(run, cell.model.id);
    }
  };

  app.commands.addCommand(FIX_COMMAND, {
    label: 'Fix with agent',
    caption: 'Ask the agent for a corrected cell, shown as a diff to accept or reject',
    execute: args => act('fix', args)
  });
  app.commands.addCommand(EXPLAIN_COMMAND, {
    label: 'Explain with agent',
    caption: 'Ask the agent what this cell does (and why it failed)',
    execute: args => act('explain', args)
  });
  app.commands.addCommand(ADD_CELLS_COMMAND, {
    label: 'Add selected cells to chat',
    caption: 'The selected cells go with your next request to the agent',
    execute: args => {
      const nb = tracker.currentWidget;
      if (!nb) {
        return;
      }
      const hit = args.fromMenu ? app.contextMenuHitTest(node => node.classList.contains('jp-Cell')) : undefined;
      const chosen = nb.content.widgets.filter(c => nb.content.isSelectedOrActive(c) || c.node === hit);
      model.addCells(chosen.map(c => chipOf(nb, c)));
      app.shell.activateById(panel.id);
    }
  });
  app.contextMenu.addItem({ type: 'separator', selector: '.jp-Notebook .jp-Cell', rank: 20 });
  const fromMenu = { fromMenu: true };
  app.contextMenu.addItem({ command: FIX_COMMAND, selector: '.jp-Notebook .jp-CodeCell', rank: 21, args: fromMenu });
  app.contextMenu.addItem({ command: EXPLAIN_COMMAND, selector: '.jp-Notebook .jp-Cell', rank: 22, args: fromMenu });
  app.contextMenu.addItem({ command: ADD_CELLS_COMMAND, selector: '.jp-Notebook .jp-Cell', rank: 23, args: fromMenu });
  for (const [rank, command] of [FIX_COMMAND, EXPLAIN_COMMAND, ADD_CELLS_COMMAND].entries()) {
    palette?.addItem({ command, category: 'LLM agent', rank: 10 + rank });
  }

  const bridge: INotebookBridge = {
    replaceCell: (cellId, was, source) => {
      const found = cellById(cellId, was);
      if (!found) {
        return 'The cell is no longer in the notebook; copy the fix from the diff instead.';
      }
      found.cell.model.sharedModel.setSource(source);
      return '';
    },
    insertBelow: (cellId, was, source) => {
      const nb = notebookFor(model.notebookPath);
      const found = cellId || was ? cellById(cellId, was) : null;
      if (!nb || !nb.content.model || ((cellId || was) && !found)) {
        return 'Open the notebook to put the code into it.';
      }
      const at = found ? nb.content.widgets.indexOf(found.cell) : nb.content.activeCellIndex;
      nb.content.model.sharedModel.insertCell(at + 1, { cell_type: 'code', source });
      nb.content.activeCellIndex = at + 1;
      return '';
    },
    runCell: async (cellId, was) => {
      const found = cellById(cellId, was);
      if (!found) {
        return 'The cell is no longer in the notebook.';
      }
      const { nb, cell } = found;
      nb.content.activeCellIndex = nb.content.widgets.indexOf(cell);
      nb.content.deselectAll();
      await NotebookActions.run(nb.content, nb.sessionContext);
      return '';
    },
    replaceActive: source => {
      const cell = notebookFor(model.notebookPath)?.content.activeCell;
      if (!cell) {
        return 'Open a notebook and select the cell to replace.';
      }
      cell.model.sharedModel.setSource(source);
      return '';
    },
    failingActive: () => {
      const nb = notebookFor(model.notebookPath);
      const cell = nb?.content.activeCell;
      return nb && cell && errorOf(cell) ? { label: labelOf(nb, cell), cellId: cell.model.id } : null;
    },
    listFiles: async sub => {
      const nb = notebookFor(model.notebookPath);
      const path = model.notebookPath || nb?.context.path || '';
      const folder = listingFolder(path, sub);
      if (folder === null) {
        return [];
      }
      try {
        return listedNames((await app.serviceManager.contents.get(folder, { content: true })).content);
      } catch {
        return []; // a folder that is gone or not readable: nothing to offer
      }
    },
    listVariables: async () => {
      const nb = notebookFor(model.notebookPath);
      return nb ? (await kernelVariables(nb)).map(v => v.name) : [];
    },
    act: (action, cellId) => void act(action, { cellId })
  };
  model.bridge = bridge;

  // The panel's bar offers the active cell's fix: it follows the active cell and what each run left.
  const refresh = (): void => panel.update();
  tracker.activeCellChanged.connect(refresh);
  NotebookActions.executed.connect((_, { notebook, cell }) => {
    refresh();
    if (tracker.find(p => p.content === notebook)) {
      addErrorButtons(cell, app);
    }
  });
  const watch = (nb: NotebookPanel): void => {
    void nb.context.ready.then(() => {
      nb.content.widgets.forEach(cell => addErrorButtons(cell, app));
      nb.content.model?.cells.changed.connect(() =>
        window.setTimeout(() => nb.content.widgets.forEach(cell => addErrorButtons(cell, app)), 0)
      );
    });
  };
  tracker.widgetAdded.connect((_, nb) => watch(nb));
  tracker.forEach(watch);
}

const decorated = new WeakSet<Cell>();

/** "Fix with agent" and "Explain" below a code cell's error output, shown while the cell has one. */
function addErrorButtons(cell: Cell, app: JupyterFrontEnd): void {
  if (cell.model.type !== 'code' || decorated.has(cell) || !(cell.layout instanceof PanelLayout)) {
    return;
  }
  decorated.add(cell);
  const bar = new Widget();
  bar.addClass('lam-error-actions');
  for (const [command, label, extra] of [
    [FIX_COMMAND, 'Fix with agent', 'jp-mod-accept'],
    [EXPLAIN_COMMAND, 'Explain', '']
  ]) {
    const button = document.createElement('button');
    button.className = `jp-Button jp-mod-styled ${extra} lam-error-${command === FIX_COMMAND ? 'fix' : 'explain'}`;
    button.textContent = label;
    button.title =
      command === FIX_COMMAND ? 'Ask the agent for a corrected cell (shown as a diff first)' : 'Ask the agent why it failed';
    button.addEventListener('click', () => void app.commands.execute(command, { cellId: cell.model.id }));
    bar.node.appendChild(button);
  }
  const layout = cell.layout;
  // After the cell's own parts: a cell builds its DOM when it is first rendered (`ready`), not when created.
  void cell.ready.then(() => {
    if (!cell.isDisposed) {
      layout.addWidget(bar);
    }
  });
  const update = (): void => bar.setHidden(!errorOf(cell));
  (cell.model as ICodeCellModel).outputs.changed.connect(update);
  update();
}

/** Cells dragged from a notebook onto the panel: added to the chat. True when the drag carried cells. */
export function dropCells(mime: { getData(mime: string): unknown; hasData(mime: string): boolean }, model: AgentModel): boolean {
  if (!mime.hasData(CELLS_MIME)) {
    return false;
  }
  const widgets = mime.getData(CELL_WIDGETS_MIME);
  if (Array.isArray(widgets) && widgets.every(w => w instanceof Cell)) {
    model.addCells(
      (widgets as Cell[]).map(cell => ({
        id: cell.model.id,
        label: countOf(cell) ? `cell [${countOf(cell)}]` : 'cell',
        source: cell.model.sharedModel.getSource(),
        kind: chipKind(cell.model.type)
      }))
    );
    return true;
  }
  const cells = mime.getData(CELLS_MIME);
  if (Array.isArray(cells)) {
    model.addCells(droppedChips(cells, Date.now()));
  }
  return true;
}
