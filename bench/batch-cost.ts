/**
 * Where the batch engine's time goes (BENCHMARKS.md, "Many streams at once"):
 *  1. one submission's time against the rows it holds, for a full-model decode step, one
 *     speculation round (E, k) and R rounds chained: the intercept is the fixed cost (dispatches,
 *     pass breaks, submission and readback), the slope the rows' arithmetic;
 *  2. N streams generating at once: wall time split into encoding (JS), waiting for the GPU
 *     (submit → results) and the rest (JS between submissions: scheduling, sampling, text).
 *
 *   node dist/bench/batch-cost.js [--model DIR] [--streams 8] [--repeat 20] [--rows-only]
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LscModel } from '../runtime/model.js';
import { SeqRowTable } from '../runtime/batch/seq-rows.js';
import { BatchedSteps, type SeqStep } from '../runtime/batch/batched-steps.js';
import type { GenerateOptions } from '../runtime/generate.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: fileURLToPath(new URL('../../examples/models/tiny-code', import.meta.url)) },
    streams: { type: 'string', default: '8' },
    repeat: { type: 'string', default: '20' },
    'rows-only': { type: 'boolean', default: false },
  },
});
const streams = Number(values.streams);
const repeat = Number(values.repeat);
const model = await LscModel.load(values.model, { sequences: 16 });
const ex = model.executor;
const E = model.plan.exits.defaultExitLayer;
const k = model.plan.exits.defaultNumSpeculations;

async function median(run: () => Promise<unknown>): Promise<number> {
  await run();
  const ms: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await run();
    ms.push(performance.now() - t0);
  }
  return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
}

// 1. per submission, against rows (the engine is idle: the steps run here directly, slots 0..N-1)
const table = new SeqRowTable(ex);
const steps = new BatchedSteps(ex, table);
const dispatches = (entry: 'prefill' | 'draft' | 'verify', exit?: number): number => ex.entry(entry, exit).stages.reduce((n, st) => n + st.dispatches.length, 0);
console.log(`tiny model: ${model.plan.dims.layers} layers; dispatches: decode step ${dispatches('prefill')}, draft step ${dispatches('draft', E)}, verify ${dispatches('verify', E)}`);
console.log('sequences | decode step ms | 8 chained decode steps ms (per step) | round (E=%d k=%d) ms | 8 chained rounds ms (per round)', E, k);
for (const N of [1, 2, 4, 8, 16]) {
  const seqs: SeqStep[] = Array.from({ length: N }, (_, s) => ({ slot: s, cur: 100 + s, p: 64 }));
  const dec = await median(() => steps.decode(seqs, false));
  // chained steps: what the engine runs for greedy sequences (the fixed cost per submission shared)
  const C = Math.min(8, steps.maxChainedSteps(N));
  const decChain = await median(() => steps.decodeChain(seqs, C));
  const fits = (k + 1) * N <= steps.maxRows;
  const round = fits ? await median(() => steps.speculate(seqs, k, E)) : NaN;
  const R = Math.min(8, steps.maxChainedRounds(N, k, E));
  const chain = fits && R > 1 ? await median(() => steps.speculateChain(seqs, k, E, R)) : NaN;
  console.log(`${N} | ${dec.toFixed(2)} | ${decChain.toFixed(2)} (${(decChain / C).toFixed(2)}${C !== 8 ? `, ${C} steps` : ''}) | ${round.toFixed(2)} | ${chain.toFixed(2)} (${(chain / R).toFixed(2)})`);
}
table.reset();

// 2. N streams at once, one prompt each
const prompts = JSON.parse(fs.readFileSync(new URL('../../examples/prompts/code.json', import.meta.url), 'utf8')) as string[];
for (const strategy of values['rows-only'] ? [] : ['autoregressive', 'self-speculative'] as const) {
  const opts: GenerateOptions = { maxNewTokens: 96, stopAtEos: false, strategy };
  await Promise.all(Array.from({ length: streams }, (_, s) => model.complete(prompts[s % prompts.length], opts))); // warm-up
  const t = { ...ex.timing };
  const st = { ...model.engine!.stats };
  const t0 = performance.now();
  const out = await Promise.all(Array.from({ length: streams }, (_, s) => model.complete(prompts[s % prompts.length], opts)));
  const wall = performance.now() - t0;
  const tokens = out.reduce((a, o) => a + o.tokens.length, 0);
  const enc = ex.timing.encodeMs - t.encodeMs;
  const wait = ex.timing.waitMs - t.waitMs;
  const e = model.engine!.stats;
  console.log(`${strategy}, ${streams} streams: ${tokens} tokens in ${wall.toFixed(0)} ms (${(tokens / wall * 1000).toFixed(1)} tok/s); `
    + `${ex.timing.submissions - t.submissions} submissions (${e.batchedSubmissions - st.batchedSubmissions} batched, ${e.soloRequests - st.soloRequests} solo requests, `
    + `${e.chainedRounds - st.chainedRounds} batched rounds chained); encode ${enc.toFixed(0)} ms, GPU wait ${wait.toFixed(0)} ms, other JS ${(wall - enc - wait).toFixed(0)} ms`);
}
model.dispose();
