/**
 * Copy, "Insert below" (the active cell) and "Replace" (the active cell) on every code block of the panel's
 * rendered answers. The answers are sanitized markdown rendered by JupyterLab (widget.tsx); the buttons go beside
 * each block after every render, and take the block's text (never its HTML).
 */
import { Clipboard } from '@jupyterlab/apputils';
import { useEffect } from 'react';

import { AgentModel } from './model';

const BLOCKS = '.lam-answer pre';
const BAR = 'lam-codeblock-actions';
/** How long a button says what it did ("Copied") before it says its name again. */
const DONE_MS = 1500;

function button(label: string, className: string, title: string, run: () => string): HTMLButtonElement {
  const element = document.createElement('button');
  element.className = `jp-Button jp-mod-styled ${className}`;
  element.textContent = label;
  element.title = title;
  element.addEventListener('click', () => {
    const problem = run();
    element.textContent = problem ? label : `${label === 'Copy' ? 'Copied' : label === 'Replace' ? 'Replaced' : 'Inserted'}`;
    window.setTimeout(() => (element.textContent = label), DONE_MS);
  });
  return element;
}

/** The buttons before each code block under `root` that has none yet. */
export function decorateCodeBlocks(root: HTMLElement, model: AgentModel): void {
  for (const pre of root.querySelectorAll<HTMLPreElement>(BLOCKS)) {
    if (pre.previousElementSibling?.classList.contains(BAR)) {
      continue;
    }
    const code = (): string => (pre.querySelector('code') ?? pre).textContent?.replace(/\n$/, '') ?? '';
    const report = (problem: string): string => {
      if (problem) {
        model.showError(problem);
      }
      return problem;
    };
    const bar = document.createElement('div');
    bar.className = BAR;
    bar.append(
      button('Copy', 'lam-code-copy', 'Copy this code', () => {
        Clipboard.copyToSystem(code());
        return '';
      }),
      button('Insert below', 'lam-code-insert', 'A new cell below the active cell, holding this code', () =>
        report(model.bridge ? model.bridge.insertBelow('', '', code()) : 'Open a notebook first.')
      ),
      button('Replace', 'lam-code-replace', "Put this code in place of the active cell's", () =>
        report(model.bridge ? model.bridge.replaceActive(code()) : 'Open a notebook first.')
      )
    );
    pre.before(bar);
  }
}

/** Keeps the buttons on the code blocks of `root` (the chat log) as answers stream and re-render. */
export function useCodeBlockActions(root: React.RefObject<HTMLElement>, model: AgentModel): void {
  useEffect(() => {
    const node = root.current;
    if (!node) {
      return;
    }
    decorateCodeBlocks(node, model);
    const observer = new MutationObserver(() => decorateCodeBlocks(node, model));
    observer.observe(node, { childList: true, subtree: true });
    return () => observer.disconnect();
  }, [root, model]);
}
