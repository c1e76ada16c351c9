/**
 * `@file` and `{variable}` in the panel's message box, with completion: typing `@` offers the files of the
 * notebook's folder (Jupyter's contents listing), `{` the variables of the notebook's kernel (the listing the
 * context gatherer uses). A small list under the caret's word: arrow keys move, Enter or Tab choose, Escape closes.
 * The text keeps the mention as written (`@sales.csv`, `{df}`): the model reads it with the notebook's context.
 */
import React, { useEffect, useRef, useState } from 'react';

import { AgentModel } from './model';

/** Entries the list shows at most. */
const SHOWN = 12;

export interface IMention {
  kind: 'file' | 'variable';
  /** Where the mention starts in the text (its `@` or `{`) and where the caret is. */
  start: number;
  end: number;
  query: string;
}

/** The mention the caret is in, if any: `@` or `{` at the start of the word before the caret. */
export function mentionAt(text: string, caret: number): IMention | null {
  let start = caret;
  while (start > 0 && !/\s/.test(text[start - 1])) {
    start--;
  }
  const word = text.slice(start, caret);
  if (word.startsWith('@')) {
    return { kind: 'file', start, end: caret, query: word.slice(1) };
  }
  const brace = word.lastIndexOf('{');
  if (brace >= 0 && !word.slice(brace).includes('}') && /^[A-Za-z_0-9]*$/.test(word.slice(brace + 1))) {
    return { kind: 'variable', start: start + brace, end: caret, query: word.slice(brace + 1) };
  }
  return null;
}

/** The text with the mention replaced by the chosen name, and where the caret goes. */
export function complete(text: string, mention: IMention, name: string): { text: string; caret: number } {
  const inserted = mention.kind === 'file' ? `@${name}${name.endsWith('/') ? '' : ' '}` : `{${name}}`;
  const after = text.slice(mention.end);
  return { text: text.slice(0, mention.start) + inserted + after, caret: mention.start + inserted.length };
}

/** Candidates whose name starts with the query first, then those that hold it (case does not matter), A to Z. */
export function rank(names: string[], query: string): string[] {
  const q = query.toLowerCase();
  names = [...names].sort((a, b) => a.localeCompare(b));
  const starts = names.filter(n => n.toLowerCase().startsWith(q));
  const holds = names.filter(n => !n.toLowerCase().startsWith(q) && n.toLowerCase().includes(q));
  return [...starts, ...holds].slice(0, SHOWN);
}

/**
 * The completion of the message box `box` whose text is `text`. Its keys are read on the box itself before the
 * composer and the panel see them, so Enter chooses instead of sending and Escape closes the list instead of
 * leaving the panel.
 */
export function useMentions(
  model: AgentModel,
  box: React.RefObject<HTMLTextAreaElement>,
  text: string,
  setText: (text: string) => void
): { popup: JSX.Element | null; update: () => void } {
  const [mention, setMention] = useState<IMention | null>(null);
  const [options, setOptions] = useState<string[]>([]);
  const [chosen, setChosen] = useState(0);
  const state = useRef({ mention, options, chosen, text });
  state.current = { mention, options, chosen, text };
  const asked = useRef(0);

  const update = (): void => {
    const node = box.current;
    const found = node && node.selectionStart === node.selectionEnd ? mentionAt(node.value, node.selectionStart) : null;
    setMention(found);
    if (!found || !model.bridge) {
      setOptions([]);
      return;
    }
    const ask = ++asked.current;
    const folder =
      found.kind === 'file' && found.query.includes('/') ? found.query.slice(0, found.query.lastIndexOf('/') + 1) : '';
    const names = found.kind === 'file' ? model.bridge.listFiles(folder) : model.bridge.listVariables();
    void names.then(all => {
      if (ask !== asked.current) {
        return; // the user typed on meanwhile
      }
      const query = folder ? found.query.slice(folder.length) : found.query;
      setOptions(rank(all, query).map(name => folder + name));
      setChosen(0);
    });
  };

  const choose = (name: string): void => {
    const current = state.current;
    if (!current.mention) {
      return;
    }
    const done = complete(current.text, current.mention, name);
    setText(done.text);
    setMention(null);
    setOptions([]);
    window.requestAnimationFrame(() => {
      const node = box.current;
      if (node) {
        node.focus();
        node.setSelectionRange(done.caret, done.caret);
        if (name.endsWith('/')) {
          update(); // a folder: its files next
        }
      }
    });
  };

  useEffect(() => {
    const node = box.current;
    if (!node) {
      return;
    }
    const onKey = (e: KeyboardEvent): void => {
      const { mention: open, options: shown, chosen: at } = state.current;
      if (!open || !shown.length) {
        return;
      }
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        setChosen((at + (e.key === 'ArrowDown' ? 1 : shown.length - 1)) % shown.length);
      } else if (e.key === 'Enter' || e.key === 'Tab') {
        choose(shown[at]);
      } else if (e.key === 'Escape') {
        setOptions([]);
        setMention(null);
      } else {
        return;
      }
      e.preventDefault();
      e.stopPropagation();
    };
    node.addEventListener('keydown', onKey);
    return () => node.removeEventListener('keydown', onKey);
  }, [box.current]);

  const popup =
    mention && options.length ? (
      <ul className="lam-mentions" role="listbox" aria-label={mention.kind === 'file' ? 'Files' : 'Variables'}>
        {options.map((name, i) => (
          <li
            key={name}
            role="option"
            aria-selected={i === chosen}
            className={`lam-mention${i === chosen ? ' lam-mention-chosen' : ''}`}
            onMouseDown={e => {
              e.preventDefault(); // the box keeps the focus
              choose(name);
            }}
          >
            {mention.kind === 'file' ? `@${name}` : `{${name}}`}
          </li>
        ))}
      </ul>
    ) : null;
  return { popup, update };
}
