/**
 * What quantizing costs and buys on a bundled model: per weight format (--weights specs, default
 * f16, q8, q4:head=q4, q4:head=q8, q4:head=f16; quantized while loading) the perplexity on a held-out code text (bench/data/heldout.py, not in the
 * training data), the agreement of its next-token argmax with f16's and the max |Δ logit| against
 * f16 (teacher-forced over the same text), the load time and GPU weight bytes, and greedy
 * autoregressive / self-speculative decode tok/s on the bundled code prompts.
 *
 *   node dist/bench/quant-quality.js [--model examples/models/tiny-code] [--text FILE]
 *     [--max-new-tokens 64] [--exit-layer 3] [--num-speculations 2] [--formats f16,q8,...] [--json]
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LscModel } from '../runtime/model.js';
import { runBench } from '../runtime/bench.js';
import { parseWeightsSpec } from '../compiler/ir/weights-spec.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: fileURLToPath(new URL('../../examples/models/tiny-code', import.meta.url)) },
    text: { type: 'string', default: fileURLToPath(new URL('../../bench/data/heldout.py', import.meta.url)) },
    'max-new-tokens': { type: 'string', default: '64' },
    'exit-layer': { type: 'string', default: '3' },
    'num-speculations': { type: 'string', default: '2' },
    formats: { type: 'string', default: 'f16,q8,q4:head=q4,q4:head=q8,q4:head=f16' },
    json: { type: 'boolean', default: false },
  },
});
const prompts = JSON.parse(fs.readFileSync(new URL('../../examples/prompts/code.json', import.meta.url), 'utf8')) as string[];
const text = fs.readFileSync(values.text, 'utf8');
/** Teacher-forced windows: the model's trained length. */
const WINDOW = 256;

interface Row {
  format: string;
  weightBytes: number;
  loadMs: number;
  perplexity: number;
  tokens: number;
  top1VsF16: number | null;
  maxAbsDiffVsF16: number | null;
  arTokPerS: number;
  ssTokPerS: number;
  acceptance: number;
  ssMatchesAr: boolean | null;
}

const rows: Row[] = [];
let f16Logits: Float32Array[] | undefined;
for (const format of values.formats.split(',')) {
  const t0 = performance.now();
  const model = await LscModel.load(values.model, { weights: parseWeightsSpec(format) });
  const loadMs = performance.now() - t0;
  try {
    const ids = model.tokenizer.encode(text);
    // logits at every position of each window predict the next token
    const logits: Float32Array[] = [];
    const targets: number[] = [];
    for (let s = 0; s + 1 < ids.length; s += WINDOW) {
      const win = ids.slice(s, Math.min(ids.length, s + WINDOW + 1));
      const out = await model.logits(win.slice(0, -1), { allPositions: true });
      logits.push(...out);
      targets.push(...win.slice(1));
    }
    let nll = 0;
    for (let i = 0; i < logits.length; i++) {
      const l = logits[i];
      let max = -Infinity;
      for (const v of l) max = Math.max(max, v);
      let z = 0;
      for (const v of l) z += Math.exp(v - max);
      nll += max + Math.log(z) - l[targets[i]];
    }
    const argmax = (l: Float32Array): number => l.reduce((b, v, i) => (v > l[b] ? i : b), 0);
    let agree: number | null = null;
    let maxDiff: number | null = null;
    if (!f16Logits) {
      f16Logits = logits;
    } else {
      agree = logits.filter((l, i) => argmax(l) === argmax(f16Logits![i])).length / logits.length;
      maxDiff = 0;
      for (let i = 0; i < logits.length; i++) for (let j = 0; j < logits[i].length; j++) maxDiff = Math.max(maxDiff, Math.abs(logits[i][j] - f16Logits[i][j]));
    }
    const bench = await runBench(model, {
      prompts, maxNewTokens: Number(values['max-new-tokens']), temperature: 0, repeat: 1,
      pairs: [{ exitLayer: Number(values['exit-layer']), numSpeculations: Number(values['num-speculations']) }],
    });
    rows.push({
      format, weightBytes: model.gpuBytes.weights, loadMs, perplexity: Math.exp(nll / logits.length), tokens: logits.length,
      top1VsF16: agree, maxAbsDiffVsF16: maxDiff,
      arTokPerS: bench.autoregressive.tokensPerSecond, ssTokPerS: bench.selfSpeculative.tokensPerSecond,
      acceptance: bench.acceptanceRate, ssMatchesAr: bench.selfSpeculative.matchesAutoregressive,
    });
  } finally {
    model.dispose();
  }
}

if (values.json) {
  process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
} else {
  const E = values['exit-layer'];
  const k = values['num-speculations'];
  console.log(`${values.model}: perplexity on ${values.text} (${rows[0].tokens} tokens, windows of ${WINDOW}); ${prompts.length} prompts × ${values['max-new-tokens']} greedy tokens, SS at E=${E} k=${k}`);
  console.log('| weights | GPU weight bytes | load ms | perplexity | top-1 = f16 | max |Δ logit| vs f16 | AR tok/s | SS tok/s | acceptance | SS = AR |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.format} | ${r.weightBytes.toLocaleString('en-US')} | ${r.loadMs.toFixed(0)} | ${r.perplexity.toFixed(3)} | ${r.top1VsF16 === null ? '—' : `${(100 * r.top1VsF16).toFixed(1)}%`} | `
      + `${r.maxAbsDiffVsF16 === null ? '—' : r.maxAbsDiffVsF16.toFixed(4)} | ${r.arTokPerS.toFixed(1)} | ${r.ssTokPerS.toFixed(1)} | ${(100 * r.acceptance).toFixed(1)}% | ${r.ssMatchesAr} |`);
  }
}
