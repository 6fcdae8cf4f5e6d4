import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { GATE_PROBS } from '../codegen/draft-gate.js';
import { LscModel } from '../runtime/model.js';
import { DRAFT_STOP } from '../runtime/generate.js';
import { testGpu } from './helpers/gpu.js';

/** Confidence-stopped drafting inside GPU-chained greedy rounds (codegen/draft-gate.ts, runtime/greedy-chain.ts). */

const root = fileURLToPath(new URL('../../', import.meta.url));
const tinyDir = path.join(root, 'examples/models/tiny-code/');
const graphFile = path.join(root, 'graphs/tiny-code.json');

const prompts = [
  'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
  'import os\n\nclass Config:\n    def __init__(self, path):\n',
  'for i in range(10):\n',
];

/** Greedy pick (lowest index among maxima) and its probability 1 / Σ exp(l_i − l_max), in f64. */
function pickOf(logits: Float32Array): { id: number; prob: number } {
  let id = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[id]) id = i;
  let sum = 0;
  for (const l of logits) sum += Math.exp(l - logits[id]);
  return { id, prob: 1 / sum };
}

describe('draft stop in chained greedy rounds: the plan', () => {
  it('one argmax kernel for every entry; only draft steps ask it for the probability', () => {
    const plan = compileGraph(JSON.parse(fs.readFileSync(graphFile, 'utf8')) as Graph, { file: graphFile }).plan;
    const argmax = plan.kernels.filter((k) => k.family === 'argmax');
    assert.equal(argmax.length, 1);
    assert.deepEqual(argmax[0].params, ['outBase', 'prob', 'pad1', 'pad2']);
    for (const e of plan.entries) {
      const picks = e.stages.flatMap((st) => st.dispatches).filter((d) => d.kernel === argmax[0].id);
      assert.equal(picks.length, 1, e.name);
      assert.equal(picks[0].params[1], e.kind === 'draft' ? 1 : 0, e.name);
    }
    assert.ok(plan.draftStop, 'the plan has the draft stop');
    const ds = plan.draftStop;
    assert.deepEqual(ds.accept.buffers, [...plan.accept.buffers, ds.state]);
    assert.deepEqual(ds.gate.buffers, [ds.state]);
  });
});

describe('draft stop in chained greedy rounds on tiny-code', function () {
  let model: LscModel;
  before(async () => {
    model = await LscModel.load(tinyDir, { gpu: await testGpu() });
  });
  after(() => model?.dispose());

  it('greedy adaptive output equals autoregressive output at thresholds 0, 0.3, 0.9 and 1', async () => {
    const stops: Record<string, number> = {};
    for (const prompt of prompts) {
      const ar = await model.complete(prompt, { maxNewTokens: 48, stopAtEos: false, strategy: 'autoregressive' });
      for (const t of [0, 0.3, 0.9, 1]) {
        const ad = await model.complete(prompt, { maxNewTokens: 48, stopAtEos: false, strategy: 'adaptive', draftStopProbability: t });
        const what = `prompt ${JSON.stringify(prompt.slice(0, 20))} threshold ${t}: rounds by k ${JSON.stringify(ad.stats.roundsByK)}, ${ad.stats.draftStops} stopped`;
        assert.deepEqual(ad.tokens, ar.tokens, what);
        assert.equal(Object.values(ad.stats.roundsByK ?? {}).reduce((a, b) => a + b, 0), ad.stats.rounds, what);
        if (t === 0) assert.equal(ad.stats.draftStops, 0, what);
        // no draft is certain: every round stops after its first
        if (t === 1) assert.deepEqual(Object.keys(ad.stats.roundsByK ?? {}), ['1'], what);
        stops[t] = (stops[t] ?? 0) + (ad.stats.draftStops ?? 0);
      }
    }
    assert.ok(stops[0.9] > 0 && stops[1] > 0, `rounds stopped early per threshold: ${JSON.stringify(stops)}`);
  });

  it('by default greedy rounds on a CPU adapter do not stop (the stop costs more than it saves there); asked, they do', async () => {
    assert.equal(model.gpu.isCpu, true, 'the test adapter is lavapipe');
    assert.deepEqual(DRAFT_STOP, { default: 0.1, greedyOnCpu: 0 });
    let asked = 0;
    for (const prompt of prompts) {
      const ad = await model.complete(prompt, { maxNewTokens: 48, stopAtEos: false, strategy: 'adaptive' });
      assert.equal(ad.stats.draftStops, 0, `default: ${JSON.stringify(ad.stats.roundsByK)}`);
      asked += (await model.complete(prompt, { maxNewTokens: 48, stopAtEos: false, strategy: 'adaptive', draftStopProbability: 0.9 })).stats.draftStops ?? 0;
    }
    assert.ok(asked > 0, 'an explicit probability still stops rounds');
  });

  it('the drafts a chained round makes, and their probabilities, agree with the exit logits on the CPU', async () => {
    const steps = model.steps;
    const ds = model.plan.draftStop!;
    const k = Math.min(4, model.plan.rows.kMax);
    const made = new Set<number>();
    let cases = 0;
    for (const prompt of prompts) {
      const ids = model.tokenizer.encode(prompt);
      // rounds write KV at positions p and later only, each before reading it: one prefill serves every exit
      const { next: cur } = await steps.prefill(ids, {});
      const p = ids.length;
      for (const E of model.plan.exits.candidates.filter((e) => e < model.plan.dims.layers)) {
        // the k drafts and their probabilities from the exit's logits, one step at a time
        const cpu: { id: number; prob: number }[] = [];
        for (let i = 0, t = cur; i < k; i++) {
          cpu.push(pickOf(await steps.stepLogits(t, p, i, E)));
          t = cpu[i].id;
        }
        for (const threshold of [0.3, 0.5, 0.7, 0.9, 1]) {
          // a probability within f32 rounding of the threshold could go either way
          if (cpu.some((c) => Math.abs(c.prob - threshold) < 1e-5)) continue;
          const stopAt = cpu.findIndex((c) => c.prob < threshold);
          const want = stopAt < 0 ? k : stopAt + 1;
          const { rounds, drafts } = await steps.greedyRounds(cur, p, k, E, 1, threshold);
          const what = `E=${E} threshold ${threshold}: CPU probabilities ${cpu.map((c) => c.prob.toFixed(4)).join(' ')}`;
          assert.deepEqual(drafts, [want], what);
          assert.ok(rounds[0].length - 1 <= want, what);
          const sub = model.executor.begin();
          sub.read(ds.state, GATE_PROBS * 4, want * 4);
          sub.read(model.plan.io.tokens, 4, want * 4);
          const [probs, tokens] = await sub.submit();
          const gpu = new Float32Array(probs);
          for (let i = 0; i < want; i++) assert.ok(Math.abs(gpu[i] - cpu[i].prob) < 1e-5 * Math.max(1, cpu[i].prob), `${what}: draft ${i} GPU ${gpu[i]}`);
          assert.deepEqual([...new Uint32Array(tokens)], cpu.slice(0, want).map((c) => c.id), what);
          made.add(want);
          cases++;
        }
      }
    }
    // rounds stopped after the first draft, in the middle, and not at all
    assert.ok(cases > 0 && made.has(1) && made.has(k) && [...made].some((m) => m > 1 && m < k), `drafts made: ${[...made].join(', ')} in ${cases} rounds`);
  });

  it('an invalid threshold is a one-line error', async () => {
    for (const bad of [-0.1, 1.5, Number.NaN, '0.5']) {
      await assert.rejects(model.complete(prompts[0], { strategy: 'adaptive', draftStopProbability: bad as number }), (e: Error) => {
        assert.match(e.message, /^draft stop probability must be in \[0, 1\], got /);
        assert.ok(!e.message.includes('\n'), e.message);
        return true;
      });
    }
  });
});
