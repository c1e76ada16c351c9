/**
 * A fix the agent proposes for one of the user's cells, as a diff: Accept replaces the cell (then Run runs it in
 * the user's kernel), "As a sandbox cell" puts it below as a `%%sandbox` cell, Reject leaves the cell as it is.
 * The diff is model text: it is shown as React text only (never parsed as markdown or HTML).
 */
import React, { useState } from 'react';

import { AgentModel } from './model';
import { IRunView } from './runs';
import { fixTargets } from './cellchips';

/** The first line of a cell that runs in the session's sandbox (llm_agent_magic/cells.py's SANDBOX_MAGIC). */
const SANDBOX_MAGIC = '%%sandbox';

/** Lines of a diff shown at most (a cell of thousands of lines: the rest is said, not drawn). */
export const DIFF_LINES = 2000;

/**
 * A unified diff's lines, each with its class. The `---` / `+++` file lines come only before the first hunk: in a
 * hunk, `--- x` is a removed line that read `-- x` (an SQL comment, a Markdown rule).
 */
export function diffLines(diff: string): { text: string; className: string }[] {
  const lines = diff.replace(/\n$/, '').split('\n');
  let inHunk = false;
  const shown = lines.slice(0, DIFF_LINES).map(line => {
    if (line.startsWith('@@')) {
      inHunk = true;
      return { text: line, className: 'lam-diff-hunk' };
    }
    if (!inHunk) {
      return { text: line, className: line.startsWith('+++') || line.startsWith('---') ? 'lam-diff-file' : '' };
    }
    return { text: line, className: line.startsWith('+') ? 'lam-diff-add' : line.startsWith('-') ? 'lam-diff-del' : '' };
  });
  if (lines.length > DIFF_LINES) {
    shown.push({ text: `[... ${lines.length - DIFF_LINES} more lines of the diff not shown]`, className: 'lam-diff-hunk' });
  }
  return shown;
}

/** The fixed cell as it goes into the notebook (without the answer's final newline). */
export function fixedCell(fixed: string): string {
  return fixed.replace(/\n$/, '');
}

/** The fix as a cell that runs in the sandbox: `%%sandbox` first, once (the model may have written it already). */
export function sandboxCell(fixed: string): string {
  const cell = fixedCell(fixed);
  const first = cell.split('\n', 1)[0].trim();
  return first === SANDBOX_MAGIC || first.startsWith(`${SANDBOX_MAGIC} `) ? cell : `${SANDBOX_MAGIC}\n${cell}`;
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
        {diffLines(fix.diff).map((line, i) => (
          <div key={i} className={line.className}>
            {line.text || ' '}
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
                bridge ? bridge.replaceCell(target, fix.source, fixedCell(fix.fixed)) : 'Open the notebook first.'
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
                bridge ? bridge.insertBelow(target, fix.source, sandboxCell(fix.fixed)) : 'Open the notebook first.'
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
              void bridge?.runCell(target, fixedCell(fix.fixed)).then(setProblem);
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
