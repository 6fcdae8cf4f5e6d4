/**
 * Seeded mutation fuzzing with the contract every parser users feed files to must keep: each case
 * either succeeds or throws an LscError whose one-line format() names the problem (what the CLI
 * prints before exiting 2), finishes within a time limit, and stays within a heap limit.
 *
 * Cases run in a worker thread (test/helpers/fuzz-worker.ts) started with V8 resourceLimits, so a
 * case that allocates without bound ends the worker (ERR_WORKER_OUT_OF_MEMORY) instead of the
 * test process, and a case that hangs is ended by terminating the worker; either is recorded as a
 * failure of that case and the run goes on from the next one in a fresh worker. The heap limit
 * bounds JS objects; ArrayBuffers live outside it, so the worker also reports the process's
 * resident memory after each case and a case that leaves it above `rssMb` fails.
 *
 * A target is a module whose `fuzzCase(rng, index)` returns `{ label, run }`: `label` says what
 * was mutated (shown on failure), `run` does what the CLI does with the input. Each case gets its
 * own PRNG seeded from (seed, index), so `LSC_FUZZ_ONLY=index` reruns one case alone.
 */
import { Worker } from 'node:worker_threads';
import { Rng } from '../../runtime/sampling.js';

export { Rng };

export interface FuzzCase {
  /** What this case mutated, e.g. "/dims/layers := 1e12". */
  label: string;
  run: () => unknown;
}

/** The export a target module provides. */
export type FuzzCaseFactory = (rng: Rng, index: number) => FuzzCase | Promise<FuzzCase>;

export type FuzzFailureKind = 'crash' | 'multiline' | 'timeout' | 'out-of-memory' | 'rss';

export interface FuzzFailure {
  index: number;
  label: string;
  kind: FuzzFailureKind;
  /** The error's stack or message, or what was exceeded. */
  detail: string;
}

export interface FuzzReport {
  cases: number;
  succeeded: number;
  userErrors: number;
  failures: FuzzFailure[];
  /** Distinct user-error messages with digits and quoted names folded, to see what was reached. */
  distinctUserErrors: number;
  ms: number;
  slowestCaseMs: number;
}

export interface FuzzOptions {
  /** URL of the target module (compiled .js), e.g. new URL('./fuzz-targets/graph.js', import.meta.url). */
  target: URL;
  seed: number;
  cases: number;
  /** Per-case time limit (default 5000 ms; generous because the machine is shared). */
  caseMs?: number;
  /** Worker heap limit in MiB (default 512). */
  heapMb?: number;
  /** Resident-set limit in MiB checked after each case (default 2048). */
  rssMb?: number;
  /** Run only this case index. */
  only?: number;
}

/** Case count for a suite run: `fallback`, or LSC_FUZZ_CASES for a longer session. */
export function fuzzCaseCount(fallback: number): number {
  const env = process.env.LSC_FUZZ_CASES;
  if (!env) return fallback;
  const n = Number(env);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`LSC_FUZZ_CASES must be a positive integer, got '${env}'`);
  return n;
}

/** LSC_FUZZ_ONLY=index reruns one case (with the suite's seed) when reproducing a failure. */
export function fuzzOnly(): number | undefined {
  const env = process.env.LSC_FUZZ_ONLY;
  return env === undefined ? undefined : Number(env);
}

/** The PRNG of case `index` of a run seeded with `seed`. */
export function caseRng(seed: number, index: number): Rng {
  return new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0);
}

/** Messages compared with numbers and quoted names folded: "dim 'x' is 5" ~ "dim 'y' is 7". */
function foldMessage(m: string): string {
  return m.replace(/'[^']*'/g, "'…'").replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/gi, 'N');
}

/** Worker → runner messages. */
export type WorkerMessage =
  | { type: 'start'; index: number; label: string }
  | { type: 'done'; index: number; outcome: 'ok' | 'user-error' | 'crash' | 'multiline'; detail: string; ms: number; rssMb: number };

export async function fuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const caseMs = opts.caseMs ?? 5000;
  const heapMb = opts.heapMb ?? 512;
  const rssMb = opts.rssMb ?? 2048;
  const indices = opts.only !== undefined ? [opts.only] : Array.from({ length: opts.cases }, (_, i) => i);
  const report: FuzzReport = { cases: 0, succeeded: 0, userErrors: 0, failures: [], distinctUserErrors: 0, ms: 0, slowestCaseMs: 0 };
  const messages = new Set<string>();
  const t0 = performance.now();

  let next = 0;
  while (next < indices.length) {
    // one worker runs cases until it finishes them all or dies on one
    next = await new Promise<number>((resolve) => {
      const worker = new Worker(new URL('./fuzz-worker.js', import.meta.url), {
        workerData: { target: opts.target.href, seed: opts.seed, indices: indices.slice(next) },
        resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 32 },
        stdout: true, stderr: true,
      });
      let current: { index: number; label: string } | undefined;
      let position = next;
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      const fail = (kind: FuzzFailureKind, detail: string): void => {
        report.cases++;
        report.failures.push({ index: current?.index ?? -1, label: current?.label ?? '(worker start)', kind, detail });
      };
      const finish = (resumeAt: number): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        void worker.terminate();
        resolve(resumeAt);
      };
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'start') {
          current = { index: m.index, label: m.label };
          clearTimeout(timer);
          timer = setTimeout(() => {
            fail('timeout', `no result within ${caseMs} ms`);
            finish(position + 1);
          }, caseMs);
          return;
        }
        clearTimeout(timer);
        report.cases++;
        report.slowestCaseMs = Math.max(report.slowestCaseMs, m.ms);
        if (m.outcome === 'ok') report.succeeded++;
        else if (m.outcome === 'user-error') {
          report.userErrors++;
          messages.add(foldMessage(m.detail));
        } else report.failures.push({ index: m.index, label: current?.label ?? '', kind: m.outcome, detail: m.detail });
        if (m.rssMb > rssMb) report.failures.push({ index: m.index, label: current?.label ?? '', kind: 'rss', detail: `resident memory ${m.rssMb} MiB after the case (limit ${rssMb})` });
        current = undefined;
        position++;
      });
      worker.on('error', (e: Error & { code?: string }) => {
        fail(e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'out-of-memory' : 'crash',
          e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `worker heap exceeded ${heapMb} MiB` : (e.stack ?? String(e)));
        finish(position + 1);
      });
      worker.on('exit', () => finish(position));
    });
  }
  report.ms = performance.now() - t0;
  report.distinctUserErrors = messages.size;
  return report;
}

/** One line per failure (at most `max`), for assertion messages. */
export function describeFailures(r: FuzzReport, seed: number, max = 10): string {
  return r.failures.slice(0, max)
    .map((f) => `case ${f.index} (LSC_FUZZ_ONLY=${f.index}, seed ${seed}) ${f.kind}: ${f.label}\n    ${f.detail.split('\n').slice(0, 6).join('\n    ')}`)
    .join('\n') + (r.failures.length > max ? `\n… and ${r.failures.length - max} more` : '');
}

/** A summary line for the test log: counts and time. */
export function summarize(name: string, r: FuzzReport): string {
  return `${name}: ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s (slowest ${r.slowestCaseMs.toFixed(0)} ms): `
    + `${r.succeeded} accepted, ${r.userErrors} user errors (${r.distinctUserErrors} distinct messages), ${r.failures.length} failures`;
}
