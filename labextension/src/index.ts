/**
 * The plugins: the side panel (follows the active notebook's session), cells into notebooks, and the
 * settings that steer both (schema/plugin.json).
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { AgentAPI, IServerSettings } from './handler';
import { AgentModel, IPanelSettings, MODES, Mode } from './model';
import { IRunView } from './runs';
import { AgentCellWatcher, insertBelowActive } from './notebook';
import { AgentPanel } from './widget';
import { notebookContext } from './context';
import { registerCellActions } from './cellactions';

const PLUGIN_ID = 'llm-agent-magic:plugin';
const PANEL_ID = 'llm-agent-panel';

const agentIcon = new LabIcon({
  name: 'llm-agent-magic:agent',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><g class="jp-icon3" fill="#616161">' +
    '<path d="M12 2a2 2 0 0 1 2 2c0 .74-.4 1.39-1 1.73V7h4a3 3 0 0 1 3 3v7a3 3 0 0 1-3 3H7a3 3 0 0 1-3-3v-7a3 3 0 0 1 3-3h4V5.73A2 2 0 0 1 12 2zM9 12a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm6 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/>' +
    '</g></svg>'
});

interface ISettings extends IPanelSettings {
  materializeAgentCells: boolean;
  server: IServerSettings;
}

function readSettings(settings: ISettingRegistry.ISettings | null): ISettings {
  const get = <T>(key: string, fallback: T): T => (settings?.get(key).composite as T | undefined) ?? fallback;
  const mode = get<string>('mode', 'auto');
  const insert = get<string>('insertCells', 'always');
  return {
    insertCells: insert === 'ask' || insert === 'never' ? insert : 'always',
    approval: get<boolean>('approval', false),
    mode: (MODES as readonly string[]).includes(mode) ? (mode as Mode) : 'auto',
    materializeAgentCells: get<boolean>('materializeAgentCells', true),
    server: {
      model: get<string>('model', '').trim(),
      host: get<string>('ollamaHost', '').trim(),
      num_ctx: get<number>('contextWindow', 0),
      history_messages: get<number>('historyMessages', 0)
    }
  };
}

function base64Blob(content: string): Blob {
  const bytes = atob(content.replace(/\s/g, ''));
  const array = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    array[i] = bytes.charCodeAt(i);
  }
  return new Blob([array]);
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Chat with the llm-agent of the active notebook; generated code as real notebook cells.',
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  optional: [ISettingRegistry, ICommandPalette, ILayoutRestorer],
  activate: async (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    registry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const api = new AgentAPI(app.serviceManager.serverSettings);
    const model = new AgentModel(api);
    let settings: ISettingRegistry.ISettings | null = null;
    let current = readSettings(null);
    /** The model, host and context settings are the server's to apply: its sessions run with them. */
    const sendToServer = async (): Promise<void> => {
      try {
        await api.putSettings(current.server);
      } catch (error) {
        model.showError(`The settings were not applied: ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    if (registry) {
      try {
        settings = await registry.load(PLUGIN_ID);
        current = readSettings(settings);
        settings.changed.connect(() => {
          current = readSettings(settings);
          model.applySettings(current);
          void sendToServer().then(() => model.refreshModels()); // the default model or the host may be others
        });
      } catch (error) {
        console.warn('llm-agent-magic: settings could not be loaded, using the defaults', error);
      }
    }
    model.applySettings(current);
    await sendToServer();

    const dropPaths = (paths: string[]): void => {
      void Promise.all(
        paths.map(async path => {
          const file = await app.serviceManager.contents.get(path, { content: true, format: 'base64', type: 'file' });
          return { name: file.name, body: base64Blob(String(file.content)) };
        })
      ).then(
        files => model.attach(files),
        error => Notification.error(`Could not attach: ${error instanceof Error ? error.message : String(error)}`)
      );
    };

    /** Escape in the message box: back to the notebook, its active cell focused. */
    const backToNotebook = (): void => {
      const nb = notebookFor(model.notebookPath);
      if (nb) {
        app.shell.activateById(nb.id);
        nb.content.activate();
      }
    };
    const panel = new AgentPanel(model, rendermime, dropPaths, backToNotebook);
    panel.id = PANEL_ID;
    panel.title.icon = agentIcon;
    panel.title.caption = 'LLM agent';
    app.shell.add(panel, 'right', { rank: 900 });
    restorer?.add(panel, PANEL_ID);

    /** The open notebook a session belongs to (the panel's runs put their cells there). */
    const notebookFor = (path: string): NotebookPanel | null =>
      (path && tracker.find(p => p.context.path === path)) || tracker.currentWidget;

    // After a reload the restored notebooks become current one after another, and each answer below arrives in
    // its own time: only the notebook that is still the current one when its answer arrives is followed, so the
    // panel ends on the active notebook's session whatever order the answers come in.
    const followNotebook = async (nb: NotebookPanel | null): Promise<void> => {
      if (!nb) {
        return;
      }
      await nb.context.ready;
      if (nb !== tracker.currentWidget) {
        return;
      }
      try {
        const sessionId = await api.notebookSession(nb.context.path);
        if (nb !== tracker.currentWidget || nb.isDisposed) {
          return;
        }
        await model.selectSession(sessionId, nb.context.path);
      } catch (error) {
        model.showError(
          `The session of ${nb.context.path} is unknown: ${error instanceof Error ? error.message : String(error)}`
        );
      }
    };
    tracker.currentChanged.connect((_, nb) => void followNotebook(nb));
    registerCellActions(app, tracker, model, panel, notebookFor, nb => followNotebook(nb), palette);
    model.notebookContext = async () => (model.notebookPath ? notebookContext(notebookFor(model.notebookPath)) : null);

    const insert = async (run: IRunView): Promise<void> => {
      const nb = notebookFor(model.notebookPath);
      if (!nb) {
        model.showError('Open a notebook to get the generated cells into it.');
        return;
      }
      let cells;
      try {
        cells = (await api.runCells(run.runId)).cells;
      } catch (error) {
        model.showError(`The generated cells could not be fetched: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
      const added = insertBelowActive(nb, run.runId, cells);
      if (added) {
        Notification.info(`${added} generated cell${added === 1 ? '' : 's'} inserted into ${nb.context.path} (not re-run).`, {
          autoClose: 3000
        });
      }
    };
    model.runFinished.connect((_, run) => {
      if (run.insert === 'inserted') {
        void insert(run);
      }
    });
    model.insertRequested.connect((_, run) => void insert(run));

    const watch = (nb: NotebookPanel): void => {
      new AgentCellWatcher(
        nb,
        () => current.materializeAgentCells,
        (output, fromCell) => api.outputCells(output, fromCell),
        (where, added) => {
          if (added && model.notebookPath === where.context.path) {
            void model.reloadHistory(); // the %%agent run is in the session's history now
          }
        },
        error => model.showError(error)
      );
    };
    // A %%agent cell of the panel's notebook starts: its run shows live in the panel, read from the store.
    const magicCells = new Set<string>();
    NotebookActions.executionScheduled.connect((_, { notebook, cell }) => {
      const nb = tracker.find(p => p.content === notebook);
      if (!nb || nb.context.path !== model.notebookPath || !cell.model.sharedModel.getSource().startsWith('%%agent')) {
        return;
      }
      magicCells.add(cell.model.id);
      void model.followMagicRuns(() => magicCells.size === 0);
    });
    NotebookActions.executed.connect((_, { cell }) => magicCells.delete(cell.model.id));
    tracker.widgetAdded.connect((_, nb) => watch(nb));
    tracker.forEach(watch);

    app.commands.addCommand('llm-agent:open-panel', {
      label: 'Open the LLM agent panel',
      icon: agentIcon,
      execute: () => app.shell.activateById(PANEL_ID)
    });
    app.commands.addCommand('llm-agent:new-chat', {
      label: 'LLM agent: new chat',
      execute: async () => {
        app.shell.activateById(PANEL_ID);
        await model.newChat();
      }
    });
    app.commands.addCommand('llm-agent:focus-input', {
      label: 'LLM agent: write to the agent (Escape goes back to the notebook)',
      execute: () => {
        app.shell.activateById(PANEL_ID);
        panel.focusInput();
      }
    });
    // Ranks, not labels, order the palette: opening the panel first.
    palette?.addItem({ command: 'llm-agent:open-panel', category: 'LLM agent', rank: 0 });
    palette?.addItem({ command: 'llm-agent:new-chat', category: 'LLM agent', rank: 1 });
    palette?.addItem({ command: 'llm-agent:focus-input', category: 'LLM agent', rank: 2 });

    void model.refreshModels();
    void model.refreshSessions();
    await followNotebook(tracker.currentWidget);
  }
};

export default plugin;
