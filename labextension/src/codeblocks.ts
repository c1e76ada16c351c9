/**
 * Copy, "Insert below" (the active cell) and "Replace" (the active cell) on every code block of the panel's
 * rendered answers. The answers are sanitized markdown rendered by JupyterLab (widget.tsx); the buttons go beside
 * each block after every render, and take the block's text (never its HTML).
 */
import { Clipboard } from '@jupyterlab/apputils';
import { useEffect } from 'react';

import type { INotebookBridge } from './cellchips';
import { AgentModel } from './model';

const BLOCKS = '.lam-answer pre';
const BAR = 'lam-codeblock-actions';
/** How long a button says what it did ("Copied") before it says its name again. */
const DONE_MS = 1500;

/** What a button says once it did its work. */
export function doneLabel(label: string): string {
  return label === 'Copy' ? 'Copied' : label === 'Replace' ? 'Replaced' : 'Inserted';
}

/** A block's code from its text (a rendered block ends with the newline of its last line). */
export function blockCode(text: string | null | undefined): string {
  return (text ?? '').replace(/\n$/, '');
}

/**
 * Puts `code` into the notebook: a new cell below the active one, or in place of the active cell's source. Returns
 * '' or what went wrong.
 */
export function putCode(action: 'insert' | 'replace', code: string, bridge: INotebookBridge | null): string {
  if (!bridge) {
    return 'Open a notebook first.';
  }
  return action === 'insert' ? bridge.insertBelow('', '', code) : bridge.replaceActive(code);
}

function button(label: string, className: string, title: string, run: () => string): HTMLButtonElement {
  const element = document.createElement('button');
  element.className = `jp-Button jp-mod-styled ${className}`;
  element.textContent = label;
  element.title = title;
  element.addEventListener('click', () => {
    const problem = run();
    element.textContent = problem ? label : doneLabel(label);
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
    const code = (): string => blockCode((pre.querySelector('code') ?? pre).textContent);
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
        report(putCode('insert', code(), model.bridge))
      ),
      button('Replace', 'lam-code-replace', "Put this code in place of the active cell's", () =>
        report(putCode('replace', code(), model.bridge))
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
