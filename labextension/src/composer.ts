/**
 * The message box's side of a run: the request as the socket message the server reads (run_requests.py), with
 * the panel's mode, model, approval and attached files. No DOM, no JupyterLab import.
 */
import type { IRunMessage } from './wire';

export const MODES = ['auto', 'chat', 'react', 'plan'] as const;
export type Mode = (typeof MODES)[number];
/** What the mode picker says for each mode (the server's names are the values). */
export const MODE_LABELS: Record<Mode, string> = {
  auto: 'Auto',
  chat: 'Answer only',
  react: 'Use tools',
  plan: 'Plan steps'
};

/** What the panel has chosen for the next run. */
export interface IComposerChoices {
  mode: Mode;
  /** '' for the server's default model. */
  model: string;
  approval: boolean;
  attachments: string[];
  notebookPath: string;
}

/** The `run` message for `request`; what the user left at its default is left out, for the server to decide. */
export function runMessage(request: string, choices: IComposerChoices): IRunMessage {
  const message: IRunMessage = {
    type: 'run',
    request,
    mode: choices.mode,
    files: [...choices.attachments],
    notebook_path: choices.notebookPath
  };
  if (choices.approval) {
    message.approval = true; // left out, the server's own AgentConfig.approval decides
  }
  if (choices.model) {
    message.model = choices.model;
  }
  return message;
}

/** Ollama's "qwen3" is "qwen3:latest". */
export function sameModel(a: string, b: string): boolean {
  const full = (name: string): string => (name.includes(':') ? name : `${name}:latest`);
  return full(a) === full(b);
}

/** The files attached so far, with `name` once. */
export function withAttachment(attachments: string[], name: string): string[] {
  return attachments.includes(name) ? attachments : [...attachments, name];
}
