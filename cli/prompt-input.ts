import fs from 'node:fs';
import { LscError } from '../compiler/errors.js';

/** All of stdin as text (a pipe, a file, or what is typed up to Ctrl-D). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A text file, or stdin for '-'; an unreadable one is a user error naming it. */
export async function readTextInput(file: string, flag: string): Promise<string> {
  if (file === '-') return readStdin();
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new LscError(`${flag}: cannot read ${file}: ${why}`, { file }, `pass a readable text file, or - for stdin`);
  }
}

/**
 * The prompt of --prompt TEXT, --prompt - (stdin) or --prompt-file FILE (- for stdin): exactly
 * one of them, used exactly as given (a file's final newline is part of the prompt), not empty.
 */
export async function readPrompt(o: { prompt?: string; promptFile?: string }): Promise<string> {
  if (o.prompt !== undefined && o.promptFile !== undefined) {
    throw new LscError('both --prompt and --prompt-file are given', {}, 'pass one of them');
  }
  if (o.prompt === undefined && o.promptFile === undefined) {
    throw new LscError('no prompt given', {}, 'pass --prompt TEXT, --prompt - (read stdin) or --prompt-file FILE');
  }
  const from = o.promptFile !== undefined ? `--prompt-file ${o.promptFile}` : o.prompt === '-' ? '--prompt - (stdin)' : '--prompt';
  const text = o.promptFile !== undefined ? await readTextInput(o.promptFile, '--prompt-file')
    : o.prompt === '-' ? await readStdin() : o.prompt!;
  if (text.length === 0) throw new LscError(`the prompt of ${from} is empty`, o.promptFile && o.promptFile !== '-' ? { file: o.promptFile } : {}, 'give a non-empty prompt');
  return text;
}
