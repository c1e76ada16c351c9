/**
 * A fix the agent proposes for one of the user's cells, as a diff: Accept replaces the cell (then Run runs it in
 * the user's kernel), "As a sandbox cell" puts it below as a `%%sandbox` cell, Reject leaves the cell as it is.
 * The diff is model text: it is shown as React text only (never parsed as markdown or HTML).
 */
import React, { useState } from 'react';

import { AgentModel } from './model';
import { IRunView } from './runs';
import { fixTargets } from './cellactions';

/** The first line of a cell that runs in the session's sandbox (llm_agent_magic/cells.py's SANDBOX_MAGIC). */
const SANDBOX_MAGIC = '%%sandbox';

function lineClass(line: string): string {
  if (line.startsWith('+++') || line.startsWith('---')) {
    return 'lam-diff-file';
  }
  return line.startsWith('+')
    ? 'lam-diff-add'
    : line.startsWith('-')
      ? 'lam-diff-del'
      : line.startsWith('@@')
        ? 'lam-diff-hunk'
        : '';
}

export function FixView(props: { run: IRunView; model: AgentModel }): JSX.Element | null {
  const { run, model } = props;
  const fix = run.fix;
  const [problem, setProblem] = useState('');
  const [ran, setRan] = useState(false);
  const [, setState] = useState(fix?.state);
  if (!fix) {
    return null;
  }
  if (!fix.fixed) {
    return <div className="lam-fix lam-fix-none">The answer holds no corrected cell; nothing to apply.</div>;
  }
  const target = fixTargets.get(run) ?? '';
  const settle = (state: 'accepted' | 'sandbox' | 'rejected', error: string): void => {
    setProblem(error);
    if (!error) {
      fix.state = state; // kept on the run's view: the panel shows the same after a re-render
      setState(state);
    }
  };
  const bridge = model.bridge;
  return (
    <div className={`lam-fix lam-fix-${fix.state}`}>
      <div className="lam-fix-title">Proposed fix</div>
      <pre className="lam-diff">
        {fix.diff
          .replace(/\n$/, '')
          .split('\n')
          .map((line, i) => (
            <div key={i} className={lineClass(line)}>
              {line || ' '}
            </div>
          ))}
      </pre>
      {fix.state === 'proposed' && (
        <div className="lam-fix-actions">
          <button
            className="jp-Button jp-mod-accept lam-fix-accept"
            title="Replace the cell with the fix (it does not run until you run it)"
            onClick={() =>
              settle(
                'accepted',
                bridge ? bridge.replaceCell(target, fix.source, fix.fixed.replace(/\n$/, '')) : 'Open the notebook first.'
              )
            }
          >
            Accept
          </button>
          <button
            className="jp-Button lam-fix-as-sandbox"
            title="Keep the cell; put the fix below it as a cell that runs in the agent's sandbox"
            onClick={() =>
              settle(
                'sandbox',
                bridge
                  ? bridge.insertBelow(target, fix.source, `${SANDBOX_MAGIC}\n${fix.fixed.replace(/\n$/, '')}`)
                  : 'Open the notebook first.'
              )
            }
          >
            As a sandbox cell
          </button>
          <button
            className="jp-Button jp-mod-warn lam-fix-reject"
            title="Leave the cell as it is"
            onClick={() => settle('rejected', '')}
          >
            Reject
          </button>
        </div>
      )}
      {fix.state === 'accepted' && (
        <div className="lam-fix-done">
          <span>The cell now holds the fix.</span>
          <button
            className="jp-Button jp-mod-accept lam-fix-run"
            disabled={ran}
            title="Run the fixed cell in your notebook's kernel"
            onClick={() => {
              setRan(true);
              void bridge?.runCell(target, fix.fixed.replace(/\n$/, '')).then(setProblem);
            }}
          >
            {ran ? 'Ran' : 'Run it'}
          </button>
        </div>
      )}
      {fix.state === 'sandbox' && (
        <div className="lam-fix-done">The fix is in a %%sandbox cell below the cell; run it there.</div>
      )}
      {fix.state === 'rejected' && <div className="lam-fix-done">Rejected: the cell is unchanged.</div>}
      {problem && (
        <div className="lam-fix-problem" role="alert">
          {problem}
        </div>
      )}
    </div>
  );
}
