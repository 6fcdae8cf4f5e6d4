/**
 * The worker side of test/helpers/fuzz.ts: imports the target, runs the given case indices in
 * order and reports each one's start (so a hang is attributed) and outcome.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { LscError } from '../../compiler/errors.js';
import { caseRng, type FuzzCaseFactory, type WorkerMessage } from './fuzz.js';

const { target, seed, indices } = workerData as { target: string; seed: number; indices: number[] };
const { fuzzCase } = (await import(target)) as { fuzzCase: FuzzCaseFactory };
const post = (m: WorkerMessage): void => parentPort!.postMessage(m);

for (const index of indices) {
  const c = await fuzzCase(caseRng(seed, index), index);
  post({ type: 'start', index, label: c.label });
  const t0 = performance.now();
  let outcome: 'ok' | 'user-error' | 'crash' | 'multiline' = 'ok';
  let detail = '';
  try {
    await c.run();
  } catch (e) {
    if (e instanceof LscError) {
      detail = e.format();
      outcome = /[\r\n]/.test(detail) ? 'multiline' : 'user-error';
    } else {
      outcome = 'crash';
      detail = (e as Error)?.stack ?? String(e);
    }
  }
  const ms = performance.now() - t0;
  post({ type: 'done', index, outcome, detail, ms, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) });
}
