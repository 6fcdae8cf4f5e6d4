/**
 * Adaptive self-speculation head to head with fixed (E, k) pairs: each run of a strategy comes
 * right after an autoregressive run of the same prompt (its pair), and the strategies' order
 * rotates with the repeat and the prompt, so neither drift nor a place late in the loop favours
 * one. (`lsc bench` pairs every strategy with one autoregressive run per prompt, so the runs late
 * in its loop sit further from their baseline.)
 *
 *   node dist/bench/adaptive-pairs.js [--model DIR] [--pairs 2:3,1:1] [--draft-stops 0,0.1] [--repeat N] [--max-new-tokens N]
 *
 * `--draft-stops` runs adaptive once per draft-stop probability (0: rounds never stop drafting
 * early) instead of once at its default; `--pairs ''` runs no fixed pair.
 * Prints, per strategy, the median of the paired speedups and each prompt's median, and for
 * adaptive the drafts per round and the rounds whose drafting stopped early; then adaptive over
 * each fixed pair: the median of the per-(prompt, repeat) ratios of their speedups, with a 95%
 * bootstrap interval of that median (a difference is shown only when the interval excludes 1).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LscModel } from '../runtime/model.js';
import { median } from '../runtime/median.js';
import type { GenerateOptions, GenerateResult } from '../runtime/generate.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: fileURLToPath(new URL('../../examples/models/tiny-code', import.meta.url)) },
    pairs: { type: 'string', default: '2:3' },
    'draft-stops': { type: 'string', default: '' },
    repeat: { type: 'string', default: '6' },
    'max-new-tokens': { type: 'string', default: '96' },
  },
});
const prompts = JSON.parse(fs.readFileSync(new URL('../../examples/prompts/code.json', import.meta.url), 'utf8')) as string[];
const maxNewTokens = Number(values['max-new-tokens']);
const stops = values['draft-stops'] ? values['draft-stops'].split(',').map(Number) : [undefined];
const configs: [string, GenerateOptions][] = [
  ...values.pairs.split(',').filter(Boolean).map((p): [string, GenerateOptions] => {
    const [E, k] = p.split(':').map(Number);
    return [`E=${E} k=${k}`, { strategy: 'self-speculative', exitLayer: E, numSpeculations: k }];
  }),
  ...stops.map((t): [string, GenerateOptions] => [t === undefined ? 'adaptive' : `adaptive stop ${t}`, { strategy: 'adaptive', draftStopProbability: t }]),
];
const model = await LscModel.load(values.model);
const run = (p: string, o: GenerateOptions): Promise<GenerateResult> => model.complete(p, { ...o, maxNewTokens, stopAtEos: false });
const tps = (r: GenerateResult): number => ((r.tokens.length - 1) * 1000) / r.stats.decodeMs;
// warm-up: pipelines, caches, and adaptive's acceptance history
for (const p of prompts) {
  await run(p, { strategy: 'autoregressive' });
  for (const [, o] of configs) await run(p, o);
}
const perPrompt = configs.map(() => prompts.map((): number[] => []));
const totals = configs.map(() => ({ rounds: 0, drafted: 0, stops: 0, accepted: 0 }));
for (let rep = 0; rep < Number(values.repeat); rep++) {
  for (const [i, p] of prompts.entries()) {
    for (let j = 0; j < configs.length; j++) {
      const c = (j + rep + i) % configs.length;
      const a = await run(p, { strategy: 'autoregressive' });
      const b = await run(p, configs[c][1]);
      perPrompt[c][i].push(tps(b) / tps(a));
      const t = totals[c];
      t.rounds += b.stats.rounds;
      t.drafted += b.stats.draftedTokens;
      t.accepted += b.stats.acceptedTokens;
      t.stops += b.stats.draftStops ?? 0;
    }
  }
}
for (const [c, [name]] of configs.entries()) {
  const all = perPrompt[c].flat();
  const t = totals[c];
  const drafting = `${(t.drafted / t.rounds).toFixed(2)} drafts/round, acceptance ${((100 * t.accepted) / t.drafted).toFixed(1)}%, ${t.stops} of ${t.rounds} rounds stopped early`;
  console.log(`${name.padEnd(10)} ×${median(all).toFixed(2)} (median of ${all.length} pairs); per prompt ${perPrompt[c].map((x) => `×${median(x).toFixed(2)}`).join(' ')}; ${drafting}`);
}
// adaptive over each fixed pair, cell by cell (same prompt, same repeat)
const rng = (() => { let x = 0x9e3779b9; return (): number => ((x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32); })();
const bootstrap = (xs: number[], n = 2000): [number, number] => {
  const meds = Array.from({ length: n }, () => median(xs.map(() => xs[Math.floor(rng() * xs.length)]))).sort((a, b) => a - b);
  return [meds[Math.floor(0.025 * n)], meds[Math.floor(0.975 * n)]];
};
const named = configs.map(([name, o], c) => ({ name, c, adaptive: o.strategy === 'adaptive' }));
const fixed = named.filter((x) => !x.adaptive);
for (const a of named.filter((x) => x.adaptive)) {
  for (const f of fixed) {
    const cells = perPrompt[a.c].flatMap((runs, i) => runs.map((r, rep) => r / perPrompt[f.c][i][rep]));
    const [lo, hi] = bootstrap(cells);
    const verdict = lo > 1 ? 'ahead' : hi < 1 ? 'behind' : 'not told apart';
    console.log(`${a.name} over ${f.name}: ×${median(cells).toFixed(3)} [${lo.toFixed(3)}, ${hi.toFixed(3)}] (95% bootstrap interval of the median of ${cells.length} cells): ${verdict}`);
  }
}
model.dispose();
