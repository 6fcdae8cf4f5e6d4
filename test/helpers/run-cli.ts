import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root and the built command line. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');

export interface CliRun { code: number | null; stdout: string; stderr: string }

/**
 * Runs dist/cli/main.js as a child process, the way users run it, with extra environment, in
 * `cwd` (default the repository root); killed (code null) after timeoutMs when given, for runs
 * that might hang; `input`, when given, is piped to its stdin.
 */
export function runLsc(args: string[], env: NodeJS.ProcessEnv = {}, opts: { cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd: opts.cwd ?? ROOT, env: { ...process.env, ...env }, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: opts.timeoutMs, killSignal: 'SIGKILL',
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// Dawn prints these limit notes to stderr whenever a device is opened; they are not lsc's output.
const DAWN_NOISE = /^Warning: .*artificially reduced/;
/** stderr without Dawn's notes. */
export const ourLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.trim() && !DAWN_NOISE.test(l));

/** A user error: exit 2, one `lsc: error:` line on stderr matching `mentions`, no stack trace. */
export function assertUserError(r: CliRun, mentions: RegExp, what: string): void {
  const lines = ourLines(r.stderr);
  assert.equal(r.code, 2, `${what}: exit code (stderr: ${r.stderr})`);
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^lsc: error: /, what);
  assert.match(lines[0], mentions, what);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: no stack trace`);
}
