/**
 * The composer's chips for the cells added to the chat (each removable), and the bar that offers "Fix with agent"
 * and "Explain" for the notebook's active cell when it failed: the panel's way to the cell actions.
 */
import React from 'react';

import { ICellChip, head } from './cellchips';
import { AgentModel } from './model';

/** What a chip says after its label: the cell's first line that holds something, shortened. */
export function chipPreview(chip: ICellChip): string {
  const text = chip.source.trimStart();
  const end = text.indexOf('\n');
  const line = (end < 0 ? text : text.slice(0, end)).trim();
  return line.length > 40 ? `${head(line, 39)}…` : line;
}

export function CellChips(props: { model: AgentModel }): JSX.Element | null {
  const { model } = props;
  if (!model.cellChips.length) {
    return null;
  }
  return (
    <div className="lam-cell-chips" aria-label="Cells sent with the next request">
      {model.cellChips.map(chip => (
        <span key={chip.id} className="lam-cell-chip" title={head(chip.source, 500)}>
          <span className="lam-cell-chip-label">
            {chip.label} {chipPreview(chip)}
          </span>
          <button className="lam-detach" title={`Do not send ${chip.label}`} onClick={() => model.removeCell(chip.id)}>
            ×
          </button>
        </span>
      ))}
    </div>
  );
}

export function FailingCellBar(props: { model: AgentModel }): JSX.Element | null {
  const { model } = props;
  const failing = model.bridge?.failingActive();
  if (!failing || model.running) {
    return null;
  }
  return (
    <div className="lam-failing-cell">
      <span className="lam-failing-label">The active {failing.label} failed.</span>
      <button className="jp-Button jp-mod-accept lam-failing-fix" onClick={() => model.bridge?.act('fix', failing.cellId)}>
        Fix with agent
      </button>
      <button className="jp-Button lam-failing-explain" onClick={() => model.bridge?.act('explain', failing.cellId)}>
        Explain
      </button>
    </div>
  );
}
