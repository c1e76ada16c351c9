/**
 * The side panel: renders the model (model.ts) and hands user actions back to it; holds no state of its own
 * beyond what a text box or an edit in progress needs.
 *
 * Everything the agent or the sandbox produced is rendered untrusted through JupyterLab's rendermime
 * (markdown and HTML sanitized, no scripts), exactly as a notebook shows outputs it did not run itself.
 */
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { IRenderMime, IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import React, { useEffect, useRef, useState } from 'react';

import { AgentModel, MODES, MODE_LABELS, Mode } from './model';
import { EmptyState, ModelStatus, enlarge, sessionLabel } from './panelparts';
import { rememberWidth, rememberedWidth, setSidebarWidth } from './sizing';
import { ChatItem, ICellView, IRunView } from './runs';
import { CellChips, FailingCellBar } from './cellbar';
import { dropCells } from './cellactions';
import { useCodeBlockActions } from './codeblocks';
import { FixView } from './diffview';
import { useMentions } from './mentions';

/** The drag the file browser starts carries the dragged items' paths under this MIME type. */
const CONTENTS_MIME = 'application/x-jupyter-icontents';
/** A notebook's cell drag (cellactions.ts reads it). */
const CELLS_MIME = 'application/vnd.jupyter.cells';

/** A fence longer than any run of backticks in `source`, so code never closes its own block. */
export function fenced(source: string, lang = 'python'): string {
  const longest = Math.max(2, ...(source.match(/`+/g) ?? []).map(run => run.length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${lang}\n${source}\n${fence}`;
}

function Markdown(props: { text: string; rendermime: IRenderMimeRegistry; className?: string }): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  const renderer = useRef<IRenderMime.IRenderer | null>(null);
  const frame = useRef(0);
  useEffect(() => {
    const widget = props.rendermime.createRenderer('text/markdown');
    renderer.current = widget;
    // The node goes in by hand, not Widget.attach: React removes the host before the cleanup runs,
    // and Lumino refuses to detach a widget whose node has already left the document.
    host.current?.appendChild(widget.node);
    return () => {
      window.cancelAnimationFrame(frame.current);
      widget.dispose();
      renderer.current = null;
    };
  }, [props.rendermime]);
  useEffect(() => {
    // Tokens arrive faster than frames: render the latest text once per frame.
    window.cancelAnimationFrame(frame.current);
    frame.current = window.requestAnimationFrame(() => {
      void renderer.current?.renderModel(new MimeModel({ data: { 'text/markdown': props.text }, trusted: false }));
    });
  }, [props.text]);
  return <div ref={host} className={props.className ?? 'lam-markdown'} />;
}

function Outputs(props: { cell: ICellView; rendermime: IRenderMimeRegistry }): JSX.Element {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const model = new OutputAreaModel({ values: props.cell.outputs, trusted: false });
    const area = new OutputArea({ model, rendermime: props.rendermime });
    host.current?.appendChild(area.node);
    return () => {
      area.dispose();
      model.dispose();
    };
  }, [props.cell.outputs, props.rendermime]);
  return <div ref={host} className="lam-outputs" />;
}

const CELL_LABELS: Record<string, string> = {
  awaiting: 'waiting for your approval',
  running: 'running in the sandbox',
  ok: 'ran',
  error: 'failed',
  timeout: 'timed out',
  died: 'the sandbox died',
  skipped: 'skipped, not run',
  stopped: 'stopped before it ran'
};

function CodeCellView(props: {
  run: IRunView;
  cell: ICellView;
  model: AgentModel;
  rendermime: IRenderMimeRegistry;
}): JSX.Element {
  const { run, cell, model, rendermime } = props;
  const [editing, setEditing] = useState<string | null>(null);
  const label = `${cell.failed ? 'failed attempt' : 'cell'} ${cell.attempt}${cell.step !== null ? `, step ${cell.step + 1}` : ''}: ${
    CELL_LABELS[cell.state] ?? cell.state
  }`;
  return (
    <details className={`lam-cell lam-cell-${cell.state}${cell.failed ? ' lam-cell-failed' : ''}`} open={!cell.failed}>
      <summary>{label}</summary>
      {editing === null ? (
        <Markdown text={fenced(cell.source)} rendermime={rendermime} className="lam-code" />
      ) : (
        <textarea className="lam-edit jp-mod-styled" value={editing} rows={8} onChange={e => setEditing(e.target.value)} />
      )}
      {cell.state === 'awaiting' && (
        <div className="lam-approval">
          {editing === null ? (
            <>
              <button className="jp-Button jp-mod-accept lam-approve-run" onClick={() => model.approve(run, cell.cellId, 'run')}>
                Run
              </button>
              <button className="jp-Button lam-approve-edit" onClick={() => setEditing(cell.source)}>
                Edit
              </button>
              <button className="jp-Button jp-mod-warn lam-approve-skip" onClick={() => model.approve(run, cell.cellId, 'skip')}>
                Skip
              </button>
            </>
          ) : (
            <>
              <button
                className="jp-Button jp-mod-accept lam-approve-edited"
                disabled={!editing.trim()}
                onClick={() => {
                  model.approve(run, cell.cellId, 'edit', editing);
                  setEditing(null);
                }}
              >
                Run edited code
              </button>
              <button className="jp-Button lam-approve-cancel" onClick={() => setEditing(null)}>
                Cancel
              </button>
            </>
          )}
        </div>
      )}
      {cell.outputs.length > 0 && <Outputs cell={cell} rendermime={rendermime} />}
    </details>
  );
}

function RunView(props: { run: IRunView; model: AgentModel; rendermime: IRenderMimeRegistry }): JSX.Element {
  const { run, model, rendermime } = props;
  const live = run.status === 'running' || run.status === 'stopping';
  return (
    <div className={`lam-run lam-run-${run.status}`} data-run-id={run.runId}>
      {run.mode && <div className="lam-mode-used">mode: {run.mode}</div>}
      {run.context && <div className="lam-context">{run.context}</div>}
      {run.steps.length > 0 && (
        <ol className="lam-plan">
          {run.steps.map((step, i) => (
            <li key={i} className={`lam-step lam-step-${step.state}`} title={step.summary}>
              <span className="lam-step-state">{step.state}</span> {step.goal}
            </li>
          ))}
        </ol>
      )}
      {live && run.waiting && <div className="lam-waiting">waiting for the session: {run.waiting} is using its sandbox…</div>}
      {live && run.tool && <div className="lam-tool">using {run.tool}…</div>}
      {run.cells.map(cell => (
        <CodeCellView key={cell.cellId} run={run} cell={cell} model={model} rendermime={rendermime} />
      ))}
      {run.answer && <Markdown text={run.answer} rendermime={rendermime} className="lam-answer" />}
      <FixView run={run} model={model} />
      {run.errors.map((error, i) => (
        <div key={i} className="lam-run-error jp-RenderedText" data-kind={error.kind}>
          <strong>{error.kind}</strong>: {error.message}
        </div>
      ))}
      {run.status === 'cancelled' && <div className="lam-stopped">Stopped before it finished.</div>}
      {run.status === 'interrupted' && <div className="lam-stopped">Cut off by a server restart.</div>}
      {run.status === 'stopping' && <div className="lam-stopped">Stopping…</div>}
      {live && !run.answer && !run.tool && !run.waiting && <div className="lam-thinking">working…</div>}
      {run.insert === 'ask' && (
        <div className="lam-insert">
          <button className="jp-Button jp-mod-accept lam-insert-yes" onClick={() => model.requestInsert(run, true)}>
            Insert the cells into the notebook
          </button>
          <button className="jp-Button lam-insert-no" onClick={() => model.requestInsert(run, false)}>
            No
          </button>
        </div>
      )}
    </div>
  );
}

function Item(props: { item: ChatItem; model: AgentModel; rendermime: IRenderMimeRegistry }): JSX.Element {
  const { item } = props;
  if (item.kind === 'user') {
    return (
      <div className="lam-user">
        <div className="lam-user-text">{item.text}</div>
        {item.files.length > 0 && <div className="lam-user-files">{item.files.join(', ')}</div>}
      </div>
    );
  }
  if (item.kind === 'note') {
    return <div className={`lam-note lam-note-${item.state}`}>{item.text}</div>;
  }
  return <RunView run={item.run} model={props.model} rendermime={props.rendermime} />;
}

function Composer(props: { model: AgentModel }): JSX.Element {
  const { model } = props;
  const [text, setText] = useState('');
  const files = useRef<HTMLInputElement>(null);
  const box = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (model.draftSeq) {
      setText(model.draft);
      box.current?.focus();
    }
  }, [model.draftSeq]);
  const mentions = useMentions(model, box, text, setText);
  const running = model.running;
  const send = (): void => {
    if (model.send(text)) {
      setText('');
    }
  };
  return (
    <div className="lam-composer">
      <CellChips model={model} />
      {mentions.popup}
      {model.attachments.length > 0 && (
        <div className="lam-attachments">
          {model.attachments.map(name => (
            <span key={name} className="lam-attachment">
              {name}
              <button className="lam-detach" title={`Do not send ${name}`} onClick={() => model.detach(name)}>
                ×
              </button>
            </span>
          ))}
        </div>
      )}
      <textarea
        ref={box}
        className="lam-input jp-mod-styled"
        placeholder="Ask the agent (Enter sends, Shift+Enter for a new line)"
        rows={3}
        value={text}
        onChange={e => setText(e.target.value)}
        onInput={mentions.update}
        onClick={mentions.update}
        onKeyDown={e => {
          if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            send();
          }
        }}
        onDrop={e => {
          if (e.dataTransfer.files.length) {
            e.preventDefault();
            void model.attach([...e.dataTransfer.files].map(f => ({ name: f.name, body: f })));
          }
        }}
      />
      <div className="lam-actions">
        <input
          ref={files}
          type="file"
          multiple
          className="lam-file-input"
          onChange={e => {
            const chosen = [...(e.target.files ?? [])];
            e.target.value = '';
            void model.attach(chosen.map(f => ({ name: f.name, body: f })));
          }}
        />
        <button
          className="jp-Button lam-attach"
          title="Attach files (or drag them here from the file browser)"
          onClick={() => files.current?.click()}
        >
          Attach
        </button>
        {running ? (
          <button
            className="jp-Button jp-mod-warn lam-stop"
            disabled={!running.runId || running.status === 'stopping'}
            onClick={() => model.stop()}
          >
            Stop
          </button>
        ) : (
          <button className="jp-Button jp-mod-accept lam-send" onClick={send} disabled={!text.trim()}>
            Send
          </button>
        )}
      </div>
    </div>
  );
}

function Toolbar(props: { model: AgentModel }): JSX.Element {
  const { model } = props;
  const known = model.sessions.some(s => s.id === model.sessionId);
  return (
    <div className="lam-toolbar">
      <div className="lam-row">
        <select
          className="lam-session-select jp-mod-styled"
          title="Session"
          value={model.sessionId}
          onChange={e => void model.selectSession(e.target.value)}
        >
          {!known && model.sessionId && (
            <option value={model.sessionId}>{sessionLabel({ id: model.sessionId, title: '' })}</option>
          )}
          {model.sessions.map(s => (
            <option key={s.id} value={s.id}>
              {sessionLabel(s)}
            </option>
          ))}
        </select>
        <button className="jp-Button lam-new-chat" onClick={() => void model.newChat()}>
          New chat
        </button>
      </div>
      <div className="lam-row">
        <select
          className="lam-mode jp-mod-styled"
          title="Mode"
          value={model.mode}
          onChange={e => model.setMode(e.target.value as Mode)}
        >
          {MODES.map(m => (
            <option key={m} value={m}>
              {MODE_LABELS[m]}
            </option>
          ))}
        </select>
        <select
          className="lam-model jp-mod-styled"
          title="Model"
          value={model.model}
          onChange={e => model.setModel(e.target.value)}
        >
          <option value="">{model.defaultModel ? `default (${model.defaultModel})` : 'default model'}</option>
          {model.models.map(m => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
        <label className="lam-approval-toggle" title="Ask before the sandbox runs each cell">
          <input type="checkbox" checked={model.approval} onChange={e => model.setApproval(e.target.checked)} /> approve cells
        </label>
      </div>
    </div>
  );
}

function PanelView(props: { model: AgentModel; rendermime: IRenderMimeRegistry }): JSX.Element {
  const { model, rendermime } = props;
  const log = useRef<HTMLDivElement>(null);
  useCodeBlockActions(log, model);
  useEffect(() => {
    const node = log.current;
    if (node && node.scrollHeight - node.scrollTop - node.clientHeight < 120) {
      node.scrollTop = node.scrollHeight; // follow the stream unless the user scrolled up to read
    }
  });
  return (
    <div className="lam-panel" data-session-id={model.sessionId} data-connected={String(model.connected)}>
      <Toolbar model={model} />
      <ModelStatus model={model} />
      {model.error && (
        <div className="lam-error" role="alert">
          <span>{model.error}</span>
          <button className="lam-dismiss" title="Dismiss" onClick={() => model.dismissError()}>
            ×
          </button>
        </div>
      )}
      <div
        className="lam-log"
        ref={log}
        onClick={e => {
          const target = e.target as HTMLElement;
          if (target instanceof HTMLImageElement && target.closest('.lam-outputs')) {
            enlarge(target.src); // a chart, at the window's size
          }
        }}
      >
        {model.items.length === 0 && <EmptyState model={model} />}
        {model.items.map((item, i) => (
          <Item key={i} item={item} model={model} rendermime={rendermime} />
        ))}
      </div>
      <FailingCellBar model={model} />
      <Composer model={model} />
    </div>
  );
}

/** Drag events of Lumino (the file browser's drags) as the DOM delivers them. */
interface ILuminoDragEvent extends Event {
  mimeData: { getData(mime: string): unknown; hasData(mime: string): boolean };
  dropAction: string;
  proposedAction: string;
  supportedActions: string;
}

/** The file browser only offers "move"; the panel copies the file's content, it never moves the file. */
function dropActionFor(drag: ILuminoDragEvent): string {
  return ['copy', 'copy-move', 'copy-link', 'all'].includes(drag.supportedActions) ? 'copy' : drag.proposedAction;
}

export class AgentPanel extends ReactWidget {
  constructor(
    readonly model: AgentModel,
    readonly rendermime: IRenderMimeRegistry,
    private readonly dropPaths: (paths: string[]) => void,
    private readonly leave: () => void = () => undefined
  ) {
    super();
    this.addClass('lam-widget');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>{() => <PanelView model={this.model} rendermime={this.rendermime} />}</UseSignal>
    );
  }

  /** Put the cursor in the message box (the panel's keyboard shortcut). */
  focusInput(): void {
    const box = this.node.querySelector<HTMLTextAreaElement>('.lam-input');
    if (box) {
      box.focus();
    } else {
      this._focusWhenRendered = true; // not rendered yet: the first render's box takes it
    }
  }

  protected onUpdateRequest(msg: Message): void {
    super.onUpdateRequest(msg);
    if (this._focusWhenRendered) {
      window.requestAnimationFrame(() => this.node.querySelector<HTMLTextAreaElement>('.lam-input')?.focus());
      this._focusWhenRendered = false;
    }
  }

  private _focusWhenRendered = false;

  handleEvent(event: Event): void {
    if (event.type === 'keydown') {
      const key = event as KeyboardEvent;
      if (key.key === 'Escape' && (key.target as HTMLElement | null)?.classList.contains('lam-input')) {
        key.preventDefault();
        key.stopPropagation();
        this.leave(); // back to the notebook
      }
      return;
    }
    const drag = event as ILuminoDragEvent;
    if (drag.mimeData && event.type !== 'lm-drop' && drag.mimeData.hasData(CELLS_MIME)) {
      event.preventDefault(); // cells from a notebook: copied into the chat on the drop
      event.stopPropagation();
      drag.dropAction = 'copy';
      return;
    }
    if (drag.mimeData && event.type === 'lm-drop' && dropCells(drag.mimeData, this.model)) {
      event.preventDefault();
      event.stopPropagation();
      drag.dropAction = 'copy';
      return;
    }
    if (!drag.mimeData?.hasData(CONTENTS_MIME)) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    if (event.type === 'lm-dragover') {
      drag.dropAction = dropActionFor(drag);
    } else if (event.type === 'lm-drop') {
      drag.dropAction = dropActionFor(drag);
      const paths = drag.mimeData.getData(CONTENTS_MIME);
      this.dropPaths((Array.isArray(paths) ? paths : [paths]).filter((p): p is string => typeof p === 'string'));
    }
  }

  /** Opening the panel asks for the models again while there are none (Ollama may have started since). */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // After the sidebar itself is shown and laid out (it is shown after the panel in it).
    window.requestAnimationFrame(() => {
      if (!this._sized && this.isVisible) {
        this._sized = setSidebarWidth(this, rememberedWidth());
      }
    });
    if (!this.model.models.length && !this.model.modelsLoading) {
      void this.model.refreshModels();
    }
  }

  /** A width the user dragged the panel to is the one it opens at next time. */
  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    if (this._sized && this.isVisible) {
      rememberWidth(msg.width >= 0 ? msg.width : this.node.offsetWidth);
    }
  }

  private _sized = false;

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    for (const type of ['lm-dragenter', 'lm-dragover', 'lm-drop', 'keydown']) {
      this.node.addEventListener(type, this);
    }
  }

  protected onBeforeDetach(msg: Message): void {
    for (const type of ['lm-dragenter', 'lm-dragover', 'lm-drop', 'keydown']) {
      this.node.removeEventListener(type, this);
    }
    super.onBeforeDetach(msg);
  }
}
