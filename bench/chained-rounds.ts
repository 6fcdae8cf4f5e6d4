/**
 * Greedy self-speculative decoding with a readback after every round against rounds chained on
 * the GPU (acceptance kernel, R rounds per submission), and autoregressive decoding, on the same
 * prompts in one process, interleaved per prompt so drift hits all alike.
 *
 *   node dist/bench/chained-rounds.js [--model DIR] [--exit-layer E] [--num-speculations K] [--repeat N] [--rounds 1,8,16]
 *
 * Prints tok/s (median over prompts × repeats) and the median of the paired per-prompt ratios.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LscModel } from '../runtime/model.js';
import type { GenerateOptions } from '../runtime/generate.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: fileURLToPath(new URL('../../examples/models/tiny-code', import.meta.url)) },
    'exit-layer': { type: 'string', default: '2' },
    'num-speculations': { type: 'string', default: '2' },
    repeat: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '1,8' },
    'max-new-tokens': { type: 'string', default: '96' },
  },
});
const prompts = JSON.parse(fs.readFileSync(new URL('../../examples/prompts/code.json', import.meta.url), 'utf8')) as string[];
const E = Number(values['exit-layer']);
const K = Number(values['num-speculations']);
const maxNewTokens = Number(values['max-new-tokens']);
const configs: [string, GenerateOptions][] = [
  ['autoregressive', { strategy: 'autoregressive' }],
  ...values.rounds!.split(',').map((r): [string, GenerateOptions] => [
    `E=${E} k=${K} ${r} round${r === '1' ? '' : 's'}/submission`,
    { strategy: 'self-speculative', exitLayer: E, numSpeculations: K, roundsPerSubmission: Number(r) },
  ]),
];

const model = await LscModel.load(values.model!);
const rates = new Map<string, number[]>(configs.map(([n]) => [n, []]));
const subs = new Map<string, number[]>(configs.map(([n]) => [n, []]));
try {
  for (let rep = 0; rep <= Number(values.repeat); rep++) {
    for (const prompt of prompts) {
      for (const [name, o] of configs) {
        const r = await model.complete(prompt, { ...o, maxNewTokens, stopAtEos: false });
        if (rep === 0) continue; // warm-up
        rates.get(name)!.push(r.stats.tokensPerSecond);
        subs.get(name)!.push(r.stats.submissions);
      }
    }
  }
} finally {
  model.dispose();
}
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1];
const base = rates.get(configs[1][0])!;
const ar = rates.get('autoregressive')!;
console.log(`${values.model} · ${prompts.length} prompts × ${values.repeat} repeats · ${maxNewTokens} tokens · greedy`);
for (const [name] of configs) {
  const r = rates.get(name)!;
  console.log(`${name.padEnd(40)} ${median(r).toFixed(1).padStart(7)} tok/s  ${median(subs.get(name)!).toString().padStart(3)} submissions` +
    `  ×${median(r.map((v, i) => v / ar[i])).toFixed(3)} vs autoregressive  ×${median(r.map((v, i) => v / base[i])).toFixed(3)} vs ${configs[1][0].split(' ').slice(2).join(' ')}`);
}
