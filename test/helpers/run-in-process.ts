import { run } from '../../cli/program.js';
import type { CliRun } from './run-cli.js';

/**
 * Runs the command line in this process: the same program dist/cli/main.js runs (cli/program.ts
 * run()), without a node start per case, for checks that end before any GPU work (usage and
 * request errors, --help). stdout and stderr are captured; stdin is not available.
 */
export function runInProcess(args: string[]): Promise<CliRun> {
  // one at a time: each run swaps process.stdout/stderr.write, and overlapping swaps would leak
  const r = queue.then(() => runNow(args));
  queue = r.then(() => undefined, () => undefined);
  return r;
}

let queue: Promise<void> = Promise.resolve();

async function runNow(args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const [out, err] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((s: string | Uint8Array) => { stdout += String(s); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { stderr += String(s); return true; }) as typeof process.stderr.write;
  try {
    const code = await run(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}
