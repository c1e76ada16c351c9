import { describe, expect, it } from 'vitest';

import { runMessage, sameModel, withAttachment } from '../src/composer';

describe('the request being written', () => {
  const choices = { mode: 'auto' as const, model: '', approval: false, attachments: ['a.csv'], notebookPath: 'nb.ipynb' };

  it('leaves what the user did not choose for the server to decide', () => {
    expect(runMessage('plot it', choices)).toEqual({
      type: 'run',
      request: 'plot it',
      mode: 'auto',
      files: ['a.csv'],
      notebook_path: 'nb.ipynb'
    });
  });

  it('sends the model and approval the user chose', () => {
    const message = runMessage('plot it', { ...choices, mode: 'plan', model: 'qwen3', approval: true });
    expect(message).toMatchObject({ mode: 'plan', model: 'qwen3', approval: true });
  });

  it('copies the attachments, so clearing them after sending keeps the message', () => {
    const attachments = ['a.csv'];
    const message = runMessage('x', { ...choices, attachments });
    attachments.length = 0;
    expect(message.files).toEqual(['a.csv']);
  });

  it('attaches a file once and knows ":latest"', () => {
    expect(withAttachment(['a.csv'], 'a.csv')).toEqual(['a.csv']);
    expect(withAttachment(['a.csv'], 'b.csv')).toEqual(['a.csv', 'b.csv']);
    expect(sameModel('qwen3', 'qwen3:latest')).toBe(true);
    expect(sameModel('qwen3:8b', 'qwen3')).toBe(false);
  });
});
