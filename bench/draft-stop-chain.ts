/**
 * The draft stop inside chained greedy rounds (codegen/draft-gate.ts) at fixed (E, k): one chain
 * of R rounds from each prompt's prefill, at each draft-stop probability in turn (0: never stops),
 * the order rotated per repeat. Per pair and threshold: GPU-chain milliseconds per emitted token
 * (median), tokens and drafts per round. A threshold of 1e-9 never stops (no pick is that
 * unlikely) but runs the gate, the probability and the stop-aware acceptance: their overhead.
 *
 *   node dist/bench/draft-stop-chain.js [--model DIR] [--pairs 2:2,2:4,1:4] [--stops 0,1e-9,0.1,0.3] [--rounds 8] [--repeat 8]
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LscModel } from '../runtime/model.js';
import { median } from '../runtime/median.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: fileURLToPath(new URL('../../examples/models/tiny-code', import.meta.url)) },
    pairs: { type: 'string', default: '2:2,2:4,1:4' },
    stops: { type: 'string', default: '0,1e-9,0.1,0.3' },
    rounds: { type: 'string', default: '8' },
    repeat: { type: 'string', default: '8' },
  },
});
const prompts = JSON.parse(fs.readFileSync(new URL('../../examples/prompts/code.json', import.meta.url), 'utf8')) as string[];
const stops = values.stops.split(',').map(Number);
const R = Number(values.rounds);
const model = await LscModel.load(values.model);
for (const pair of values.pairs.split(',')) {
  const [E, k] = pair.split(':').map(Number);
  const rounds = Math.min(R, model.steps.maxChainedRounds(E, k));
  const msPerToken = stops.map((): number[] => []);
  const sums = stops.map(() => ({ tokens: 0, drafts: 0, rounds: 0 }));
  for (let rep = 0; rep < Number(values.repeat); rep++) {
    const ids = model.tokenizer.encode(prompts[rep % prompts.length]);
    const { next } = await model.steps.prefill(ids, {});
    for (let j = 0; j < stops.length; j++) {
      const s = (j + rep) % stops.length;
      // warm-up: the pipelines and the submission's expected duration
      await model.steps.greedyRounds(next, ids.length, k, E, rounds, stops[s]);
      const t0 = performance.now();
      const r = await model.steps.greedyRounds(next, ids.length, k, E, rounds, stops[s]);
      const ms = performance.now() - t0;
      const tokens = r.rounds.flat().length;
      msPerToken[s].push(ms / tokens);
      sums[s].tokens += tokens;
      sums[s].drafts += r.drafts.reduce((a, b) => a + b, 0);
      sums[s].rounds += r.rounds.length;
    }
  }
  const cells = stops.map((t, s) => `stop ${t}: ${median(msPerToken[s]).toFixed(2)} ms/token, ${(sums[s].tokens / sums[s].rounds).toFixed(2)} tokens and ${(sums[s].drafts / sums[s].rounds).toFixed(2)} drafts per round`);
  console.log(`E=${E} k=${k} (${rounds} rounds per chain): ${cells.join(' · ')}`);
}
model.dispose();
