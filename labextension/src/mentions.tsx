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
  /** Where the mention starts in the text (its `@` or `{`) and where it ends (the end of the word under the caret). */
  start: number;
  end: number;
  /** What is typed of it before the caret. */
  query: string;
}

/** Characters of a variable's name, the only ones a `{variable}` mention holds. */
function nameChar(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_';
}

/** One character (a pattern over one character cannot backtrack). */
function space(c: string): boolean {
  return /\s/.test(c);
}

/** The fence (```, ~~~) a line starting at `line` opens or closes, up to three spaces in, and where it ends. */
function fenceAt(text: string, line: number): { fence: string; end: number } | null {
  let at = line;
  while (at < line + 3 && text[at] === ' ') {
    at++;
  }
  const fence = text.startsWith('```', at) ? '```' : text.startsWith('~~~', at) ? '~~~' : '';
  return fence ? { fence, end: at + 3 } : null;
}

/**
 * Is `caret` inside code the user writes in the message: a fenced block (``` or ~~~, closed by the same), or a
 * `span` on its line? There `@` is a decorator and `{` a dict or an f-string, not a mention.
 */
export function insideCode(text: string, caret: number): boolean {
  let open = ''; // the fence of the block the line is in
  let line = 0; // where the caret's line starts
  for (;;) {
    const found = fenceAt(text, line);
    if (found && found.end <= caret && (!open || open === found.fence)) {
      open = open ? '' : found.fence;
    }
    const next = text.indexOf('\n', line);
    if (next < 0 || next >= caret) {
      break;
    }
    line = next + 1;
  }
  if (open) {
    return true;
  }
  let ticks = 0;
  for (let at = line; at < caret; at++) {
    if (text[at] === '`') {
      ticks++;
    }
  }
  return ticks % 2 === 1;
}

/** The mention the caret is in, if any: `@` or `{` at the start of the word before the caret, not inside code. */
export function mentionAt(text: string, caret: number): IMention | null {
  caret = Math.max(0, Math.min(caret, text.length));
  let start = caret;
  while (start > 0 && !space(text[start - 1])) {
    start--;
  }
  const word = text.slice(start, caret);
  if (!word.startsWith('@') && !word.includes('{')) {
    return null;
  }
  if (insideCode(text, caret)) {
    return null;
  }
  if (word.startsWith('@')) {
    let end = caret;
    while (end < text.length && !space(text[end])) {
      end++;
    }
    return { kind: 'file', start, end, query: word.slice(1) };
  }
  const brace = word.lastIndexOf('{');
  const query = word.slice(brace + 1);
  if (![...query].every(nameChar)) {
    return null;
  }
  let end = caret;
  while (end < text.length && nameChar(text[end])) {
    end++;
  }
  if (text[end] === '}') {
    end++; // the brace the user (or an earlier completion) closed: replaced, not doubled
  }
  return { kind: 'variable', start: start + brace, end, query };
}

/**
 * The text with the mention replaced by the chosen name, and where the caret goes. A file's name is written as it
 * is, spaces and all (`@my data.csv`): the server finds mentions of the folder's files by their whole path
 * (llm_agent_magic/agents/context.py's `mentioned_files`), so quotes would hide it. A space follows a file (not a
 * folder: its files come next) unless one is there already.
 */
export function complete(text: string, mention: IMention, name: string): { text: string; caret: number } {
  const after = text.slice(mention.end);
  let inserted = mention.kind === 'file' ? `@${name}` : `{${name}}`;
  let caret = mention.start + inserted.length;
  if (mention.kind === 'file' && !name.endsWith('/')) {
    inserted += after && space(after[0]) ? '' : ' ';
    caret++; // after the space, the one written or the one there
  }
  return { text: text.slice(0, mention.start) + inserted + after, caret };
}

/** A file mention's query split at its last `/`: the folder to list (`data/`, or '') and the part of a name. */
export function folderOf(query: string): { folder: string; rest: string } {
  const slash = query.lastIndexOf('/');
  return { folder: query.slice(0, slash + 1), rest: query.slice(slash + 1) };
}

/**
 * Candidates whose name starts with the query first, then those that hold it (case does not matter), A to Z, each
 * once, at most SHOWN of them (a folder of thousands of files is filtered before it is sorted).
 */
export function rank(names: string[], query: string): string[] {
  const q = query.toLowerCase();
  const starts = new Set<string>();
  const holds = new Set<string>();
  for (const name of names) {
    const lower = name.toLowerCase();
    if (!name) {
      continue;
    }
    if (lower.startsWith(q)) {
      starts.add(name);
    } else if (lower.includes(q)) {
      holds.add(name);
    }
  }
  const az = (a: string, b: string): number => a.localeCompare(b);
  return [...[...starts].sort(az), ...[...holds].sort(az)].slice(0, SHOWN);
}

/**
 * What a key does to the list of `count` names whose entry `chosen` is chosen: move the choice (round the list),
 * choose, close, or nothing (null: the key is the message box's). Nothing while an input method composes: its
 * Enter ends the composed word.
 */
export function listKey(
  key: string,
  composing: boolean,
  chosen: number,
  count: number
): { move?: number; choose?: true; close?: true } | null {
  if (!count || composing) {
    return null;
  }
  if (key === 'ArrowDown' || key === 'ArrowUp') {
    return { move: (chosen + (key === 'ArrowDown' ? 1 : count - 1)) % count };
  }
  if (key === 'Enter' || key === 'Tab') {
    return { choose: true };
  }
  return key === 'Escape' ? { close: true } : null;
}

/**
 * Does `key` move the caret along its line? Then the list follows the caret. ArrowUp and ArrowDown are not: while the
 * list is open they move its choice instead, and re-asking would lose it.
 */
export function movesCaret(key: string): boolean {
  return key === 'ArrowLeft' || key === 'ArrowRight' || key === 'Home' || key === 'End';
}

/**
 * One listing shared by the keystrokes of a mention: `{tot` typed fast asks the kernel once, not four times (a
 * second ask would find the kernel still busy answering the first, and list nothing). A listing is reused for
 * `freshMs`; one that came back empty is not kept, so the next keystroke asks again.
 */
export class SharedListing {
  private _at = 0;
  private _names: Promise<string[]> | null = null;

  constructor(
    private readonly _list: () => Promise<string[]>,
    private readonly _freshMs = 3000,
    private readonly _now: () => number = () => Date.now()
  ) {}

  get(): Promise<string[]> {
    const now = this._now();
    if (!this._names || now - this._at > this._freshMs) {
      this._at = now;
      const names: Promise<string[]> = this._list().then(found => {
        if (!found.length && this._names === names) {
          this._names = null;
        }
        return found;
      });
      this._names = names;
    }
    return this._names;
  }
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
  const variables = useRef(new SharedListing(() => (model.bridge ? model.bridge.listVariables() : Promise.resolve([]))));

  const update = (): void => {
    const node = box.current;
    const found = node && node.selectionStart === node.selectionEnd ? mentionAt(node.value, node.selectionStart) : null;
    setMention(found);
    const ask = ++asked.current; // a listing still coming for an earlier mention is dropped
    if (!found || !model.bridge) {
      setOptions([]);
      return;
    }
    const { folder, rest } = found.kind === 'file' ? folderOf(found.query) : { folder: '', rest: found.query };
    const names = found.kind === 'file' ? model.bridge.listFiles(folder) : variables.current.get();
    void names.then(all => {
      if (ask !== asked.current) {
        return; // the user typed on meanwhile
      }
      setOptions(rank(all, rest).map(name => folder + name));
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
      // Typed on meanwhile (a fast typist, a test): the caret is where that typing left it.
      if (node && node.value === done.text) {
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
      const action = open ? listKey(e.key, e.isComposing, at, shown.length) : null;
      if (!action) {
        return;
      }
      if (action.move !== undefined) {
        setChosen(action.move);
      } else if (action.choose) {
        choose(shown[at]);
      } else {
        setOptions([]);
        setMention(null);
      }
      e.preventDefault();
      e.stopPropagation();
    };
    // The caret moved along the line (not by typing or a click): the list follows the word it is in now.
    const onKeyUp = (e: KeyboardEvent): void => {
      if (movesCaret(e.key)) {
        update();
      }
    };
    node.addEventListener('keydown', onKey);
    node.addEventListener('keyup', onKeyUp);
    return () => {
      node.removeEventListener('keydown', onKey);
      node.removeEventListener('keyup', onKeyUp);
    };
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
