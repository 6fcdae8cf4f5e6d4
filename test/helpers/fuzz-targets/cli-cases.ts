/**
 * Fuzzed inputs for the real command line: the first cases of a fuzz target (same seed, same
 * mutations) that the library refuses with an LscError, written to files so `lsc compile` can
 * read them. The CLI must then exit 2 with that one line on stderr.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LscError } from '../../../compiler/errors.js';
import { caseRng, type FuzzCaseFactory } from '../fuzz.js';

export interface CliCase { index: number; label: string; text: string; message: string }

/** Up to `count` cases of `target` that end in an LscError, with the mutated file text (`target.lastText()`). */
export async function userErrorCases(target: { fuzzCase: FuzzCaseFactory; lastText: () => string }, seed: number, count: number): Promise<CliCase[]> {
  const out: CliCase[] = [];
  for (let index = 0; out.length < count && index < 1000; index++) {
    const c = await target.fuzzCase(caseRng(seed, index), index);
    const text = target.lastText();
    try {
      await c.run();
    } catch (e) {
      if (e instanceof LscError) out.push({ index, label: c.label, text, message: e.message });
    }
  }
  return out;
}

export function writeCase(dir: string, name: string, text: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}
