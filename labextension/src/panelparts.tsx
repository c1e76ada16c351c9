/**
 * Parts of the side panel around the chat itself: what to do when Ollama or a model is missing, what an empty
 * panel offers, a chart enlarged, and the names the session picker shows.
 */
import { Clipboard } from '@jupyterlab/apputils';
import React, { useState } from 'react';

import { ISessionInfo } from './handler';
import { AgentModel } from './model';

/** The notebook's name for its session (the server knows it by its absolute path), else the title, else the id. */
export function sessionLabel(session: Pick<ISessionInfo, 'id' | 'title'>): string {
  const title = session.title && session.title !== session.id ? session.title : '';
  if (title) {
    return title;
  }
  return session.id.includes('/') ? session.id.slice(session.id.lastIndexOf('/') + 1) : session.id;
}

/** A command the user runs in a terminal, with a button that copies it. */
function CopyCommand(props: { command: string }): JSX.Element {
  const [copied, setCopied] = useState(false);
  return (
    <span className="lam-command">
      <code>{props.command}</code>
      <button
        className="jp-Button lam-copy"
        title={`Copy "${props.command}"`}
        onClick={() => {
          Clipboard.copyToSystem(props.command);
          setCopied(true);
        }}
      >
        {copied ? 'Copied' : 'Copy'}
      </button>
    </span>
  );
}

/** Ollama down (said once, with Retry), or the model a run would use not pulled (the command that pulls it). */
export function ModelStatus(props: { model: AgentModel }): JSX.Element | null {
  const { model } = props;
  if (model.modelsProblem) {
    return (
      <div className="lam-ollama-down" role="alert">
        <span>{model.modelsProblem}</span>
        <button
          className="jp-Button jp-mod-accept lam-retry"
          disabled={model.modelsLoading}
          onClick={() => void model.refreshModels()}
        >
          {model.modelsLoading ? 'Trying…' : 'Retry'}
        </button>
      </div>
    );
  }
  const missing = model.missingModel;
  if (missing) {
    return (
      <div className="lam-model-missing" role="status">
        <span>The model {missing} is not pulled; pull it in a terminal:</span>
        <CopyCommand command={`ollama pull ${missing}`} />
        <button className="jp-Button lam-retry" disabled={model.modelsLoading} onClick={() => void model.refreshModels()}>
          Check again
        </button>
      </div>
    );
  }
  return null;
}

/** Requests worth trying on the notebook in front of the user (or, without one, on a file they attach). */
export function exampleRequests(notebookPath: string): string[] {
  const name = notebookPath.slice(notebookPath.lastIndexOf('/') + 1);
  if (!name) {
    return [
      'Summarise the file I attached: its columns, their types and what stands out',
      'Plot the main numbers of the attached CSV as a bar chart',
      'Write a function that reads the attached file and checks it for missing values'
    ];
  }
  return [
    `Explain what ${name} does so far, cell by cell`,
    `Plot the main numbers of the data ${name} loads`,
    `Find what fails in ${name} and propose a fix`
  ];
}

/** What an empty chat can do: example requests (a click puts one in the message box), attaching, /learn. */
export function EmptyState(props: { model: AgentModel }): JSX.Element {
  const { model } = props;
  return (
    <div className="lam-empty">
      {model.sessionId ? (
        <p>
          Ask about {model.notebookPath ? <strong>{sessionLabel({ id: model.notebookPath, title: '' })}</strong> : 'anything'},
          for example:
        </p>
      ) : (
        <p>Open a notebook to talk about it, or start a new chat. For example:</p>
      )}
      <ul className="lam-examples">
        {exampleRequests(model.notebookPath).map(text => (
          <li key={text}>
            <button className="lam-example" title="Put this request in the message box" onClick={() => model.setDraft(text)}>
              {text}
            </button>
          </li>
        ))}
      </ul>
      <p>
        <strong>Attach</strong> files with the Attach button, or drag them here from the file browser; the agent reads them in its
        sandbox.
      </p>
      <p>
        <code>/learn docs/</code> embeds a folder so that answers can cite it; <code>/forget --all</code> undoes it.
      </p>
    </div>
  );
}

/**
 * A chart shown at the size of the window, over everything; a click or Escape closes it. It goes on the page's
 * body: inside the panel (whose layout has `contain: strict`) a fixed overlay would only cover the panel.
 */
export function enlarge(src: string): HTMLElement {
  const overlay = document.createElement('div');
  overlay.className = 'lam-enlarged';
  overlay.setAttribute('role', 'dialog');
  overlay.title = 'Click or press Escape to close';
  const image = document.createElement('img');
  image.src = src;
  image.alt = 'chart, enlarged';
  overlay.appendChild(image);
  const close = (): void => {
    overlay.remove();
    document.removeEventListener('keydown', onKey, true);
  };
  const onKey = (e: KeyboardEvent): void => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      close();
    }
  };
  overlay.addEventListener('click', close);
  document.addEventListener('keydown', onKey, true);
  document.body.appendChild(overlay);
  return overlay;
}
