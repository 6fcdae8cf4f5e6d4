import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { LscModel } from '../runtime/model.js';
import { Rng, distribution } from '../runtime/sampling.js';
import { sampledRound } from '../runtime/generate.js';
import { testGpu } from './helpers/gpu.js';

const tinyDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));
const deepDir = fileURLToPath(new URL('../../examples/models/tiny-code-deep/', import.meta.url));

const prompts = [
  'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
  'import os\n\nclass Config:\n    def __init__(self, path):\n',
  'for i in range(10):\n',
];

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * Greedy self-speculative decoding is exact: for every exit E and draft count k given, each
 * prompt's 24 tokens (and text) equal autoregressive decoding's, with drafts actually made.
 */
async function expectSelfSpeculativeEqualsAutoregressive(model: LscModel, exits: number[], ks: number[]): Promise<void> {
  const n = 24;
  for (const prompt of prompts) {
    const ar = await model.complete(prompt, { maxNewTokens: n, stopAtEos: false, strategy: 'autoregressive' });
    for (const E of exits) {
      for (const k of ks) {
        const ss = await model.complete(prompt, { maxNewTokens: n, stopAtEos: false, strategy: 'self-speculative', exitLayer: E, numSpeculations: k });
        assert.deepEqual(ss.tokens, ar.tokens, `E=${E} k=${k} prompt ${JSON.stringify(prompt.slice(0, 20))}`);
        assert.equal(ss.text, ar.text);
        assert.ok(ss.stats.draftedTokens > 0);
      }
    }
  }
}

describe('self-speculative decoding on tiny-code', function () {
  let model: LscModel;
  before(async () => {
    model = await LscModel.load(tinyDir, { gpu: await testGpu() });
  });
  after(() => model?.dispose());

  it('greedy output equals autoregressive output for every E in 1..7 and k in 1..8', async () => {
    assert.deepEqual(model.exitCandidates, range(1, 7));
    await expectSelfSpeculativeEqualsAutoregressive(model, range(1, 7), range(1, 8));
  });

  it('stops exactly mid-round: max tokens, stop strings and EOS give the autoregressive result', async () => {
    const prompt = prompts[0];
    const ar = await model.complete(prompt, { maxNewTokens: 40, stopAtEos: false, strategy: 'autoregressive' });
    // a stop string that first appears somewhere inside the continuation
    const stop = ar.text.slice(17, 22);
    for (const [E, k] of [[2, 3], [3, 5], [1, 8]]) {
      for (const n of [1, 2, 7, 13]) {
        const a = await model.complete(prompt, { maxNewTokens: n, stopAtEos: false, strategy: 'autoregressive' });
        const b = await model.complete(prompt, { maxNewTokens: n, stopAtEos: false, strategy: 'self-speculative', exitLayer: E, numSpeculations: k });
        assert.deepEqual(b.tokens, a.tokens, `max ${n} tokens, E=${E} k=${k}`);
        assert.equal(b.tokens.length, n);
      }
      const a = await model.complete(prompt, { maxNewTokens: 40, stopAtEos: false, stop: [stop], strategy: 'autoregressive' });
      const b = await model.complete(prompt, { maxNewTokens: 40, stopAtEos: false, stop: [stop], strategy: 'self-speculative', exitLayer: E, numSpeculations: k });
      assert.equal(a.stats.stopReason, 'stop-string');
      assert.equal(b.stats.stopReason, 'stop-string');
      assert.equal(b.text, a.text);
      assert.equal(a.text, ar.text.slice(0, ar.text.indexOf(stop)));
      assert.deepEqual(b.tokens, a.tokens);
      // EOS: treat the 6th generated token as the end of sequence
      const eosAt = ar.tokens[5];
      const first = ar.tokens.indexOf(eosAt);
      const c = await model.complete(prompt, { maxNewTokens: 40, stopAtEos: false, stop: [], strategy: 'self-speculative', exitLayer: E, numSpeculations: k, eosTokens: [eosAt] });
      assert.equal(c.stats.stopReason, 'eos');
      assert.deepEqual(c.tokens, ar.tokens.slice(0, first + 1));
    }
  });

  it('rounds chained on the GPU (acceptance kernel) give the tokens and statistics of one round per submission', async () => {
    const prompt = prompts[0];
    const ar = await model.complete(prompt, { maxNewTokens: 60, stopAtEos: false, strategy: 'autoregressive' });
    // an EOS that first appears well inside the continuation, so it lands inside a chain of rounds
    const eosAt = ar.tokens.find((t, i) => i >= 24 && ar.tokens.indexOf(t) === i)!;
    assert.ok(eosAt !== undefined);
    for (const [E, k] of [[1, 1], [2, 3], [4, 2], [6, 5]]) {
      for (const eos of [[], [eosAt]]) {
        const o = { maxNewTokens: 60, stopAtEos: false, eosTokens: eos, strategy: 'self-speculative' as const, exitLayer: E, numSpeculations: k };
        const one = await model.complete(prompt, { ...o, roundsPerSubmission: 1 });
        const chained = await model.complete(prompt, { ...o, roundsPerSubmission: 8 });
        const what = `E=${E} k=${k} eos=${eos.join()}`;
        assert.deepEqual(chained.tokens, one.tokens, what);
        assert.deepEqual(chained.tokens, eos.length ? ar.tokens.slice(0, ar.tokens.indexOf(eosAt) + 1) : ar.tokens, what);
        assert.equal(chained.text, one.text, what);
        for (const key of ['rounds', 'draftedTokens', 'acceptedTokens', 'stopReason'] as const) {
          assert.equal(chained.stats[key], one.stats[key], `${what}: ${key}`);
        }
        assert.ok(chained.stats.submissions < one.stats.submissions, `${what}: ${chained.stats.submissions} submissions chained, ${one.stats.submissions} not`);
      }
    }
  });

  it("verify's logits for each position equal decode's bit for bit", async () => {
    const ids = model.tokenizer.encode(prompts[0]);
    const p = ids.length;
    for (const E of [1, 3, 6]) {
      const k = 4;
      // the tokens of a round: the current token and k drafts (any tokens will do)
      const round = [model.steps.vocab - 1, 13, 260, 348, 7].slice(0, k + 1);
      // autoregressive: decode each position alone
      await model.steps.prefill(ids, {});
      const decode: Float32Array[] = [];
      for (let i = 0; i <= k; i++) decode.push(await model.steps.stepLogits(round[i], p + i, 0));
      // self-speculative: drafts write layers < E for positions p..p+k-1, verify does the rest
      await model.steps.prefill(ids, {});
      for (let i = 0; i < k; i++) await model.steps.stepLogits(round[i], p, i, E);
      const verify = await model.steps.verifyLogits(round, p, E);
      for (let i = 0; i <= k; i++) {
        const a = new Uint32Array(decode[i].buffer, decode[i].byteOffset, decode[i].length);
        const b = new Uint32Array(verify[i].buffer, verify[i].byteOffset, verify[i].length);
        const diff = a.findIndex((x, j) => x !== b[j]);
        assert.equal(diff, -1, `E=${E} position ${i}: logit ${diff} differs (${decode[i][diff]} vs ${verify[i][diff]})`);
      }
    }
  });

  it('speculative sampling reproduces the target distribution', async () => {
    // The first token of a round must be distributed as the full model's p(· | context),
    // whatever the draft proposes. Exact p from the full model's logits; a chi-square bound on
    // the empirical frequencies of seeded rounds (deterministic: fixed seeds).
    const ids = model.tokenizer.encode('def add(a, b):\n    return');
    const sampling = { temperature: 1.3, topK: 6 };
    const E = 1; // a weak draft: many rejections exercise the residual distribution
    const k = 2;
    await model.steps.prefill(ids.slice(0, -1), {});
    const cur = ids[ids.length - 1];
    const p = ids.length - 1;
    const target = distribution(await model.steps.stepLogits(cur, p, 0), sampling);
    const draft = distribution(await model.steps.stepLogits(cur, p, 0, E), sampling);
    const tv = [...target.ids].reduce((a, id, j) => {
      const q = draft.ids.indexOf(id) >= 0 ? draft.probs[draft.ids.indexOf(id)] : 0;
      return a + Math.abs(target.probs[j] - q);
    }, 0) / 2;
    assert.ok(tv > 0.05, `draft and target must differ for the test to mean something (TV ${tv})`);
    const N = 1500;
    const counts = new Map<number, number>();
    let rejected = 0;
    for (let s = 0; s < N; s++) {
      const out = await sampledRound(model, cur, p, k, {
        strategy: 'self-speculative', maxNew: 100, E, K: k, sampling, greedy: false, rng: new Rng(1000 + s), chain: 1,
      });
      counts.set(out[0], (counts.get(out[0]) ?? 0) + 1);
      if (out.length === 1) rejected++;
    }
    assert.ok(rejected > 0, 'some first drafts must be rejected');
    let chi2 = 0;
    for (const [j, id] of [...target.ids].entries()) {
      const expected = N * target.probs[j];
      chi2 += (((counts.get(id) ?? 0) - expected) ** 2) / expected;
    }
    const outside = [...counts.keys()].filter((id) => !target.ids.includes(id));
    assert.deepEqual(outside, [], 'tokens outside the target support');
    // df = 5; P(chi2 > 25.7) = 1e-4
    assert.ok(chi2 < 25.7, `chi-square ${chi2.toFixed(2)} (counts ${JSON.stringify([...counts])}, target ${JSON.stringify([...target.probs].map((x) => +x.toFixed(3)))})`);
  });

  it('adds no GPU memory but the acceptance state: draft and verify use only shared buffers', async () => {
    const plan = model.plan;
    const used = (pred: (name: string) => boolean): Set<string> => new Set(plan.entries.filter((e) => pred(e.name))
      .flatMap((e) => e.stages.flatMap((s) => s.dispatches.flatMap((d) => d.buffers))));
    const plain = used((n) => n === 'prefill' || n === 'decode');
    const spec = used((n) => n.startsWith('draft@') || n.startsWith('verify@'));
    const extra = [...spec].filter((b) => !plain.has(b));
    assert.deepEqual(extra, ['io:tokens'].filter((b) => !plain.has(b)), 'buffers only self-speculation uses');
    // a fresh model, so the autoregressive figure precedes anything self-speculation allocates
    const fresh = await LscModel.load(tinyDir, { gpu: await testGpu() });
    try {
      const ar = await fresh.complete(prompts[0], { maxNewTokens: 40, strategy: 'autoregressive' });
      const ss = await fresh.complete(prompts[0], { maxNewTokens: 40, strategy: 'self-speculative', exitLayer: 3, numSpeculations: 4 });
      assert.ok(ss.stats.rounds > 1 && ss.stats.submissions < ss.stats.rounds, 'rounds were chained');
      const bound = fresh.exitQueryCacheBytes + (4 + 1) * plan.dims.vocab * 4;
      const extra = ss.stats.gpuBytes.total - ar.stats.gpuBytes.total;
      // the acceptance state is a plan buffer (allocated at load): self-speculation adds only the
      // acceptance kernel's per-round params uniforms
      assert.ok(extra > 0 && extra <= bound, `self-speculative adds ${extra} bytes; bound ${bound}`);
      assert.equal(ss.stats.gpuBytes.weights, ar.stats.gpuBytes.weights);
      assert.equal(ss.stats.gpuBytes.kvCache, ar.stats.gpuBytes.kvCache);
    } finally {
      fresh.dispose();
    }
  });
});

// The 16-layer model: every exit candidate, with one draft, the graph's default k (3) and the most
// drafts the plan allows (8) — a bounded sweep (135 generations) that still crosses every exit.
describe('self-speculative decoding on tiny-code-deep', function () {
  let model: LscModel;
  before(async () => {
    model = await LscModel.load(deepDir, { gpu: await testGpu() });
  });
  after(() => model?.dispose());

  it('greedy output equals autoregressive output for every E in 1..15 and k in {1, 3, 8}', async () => {
    assert.deepEqual(model.exitCandidates, range(1, 15));
    await expectSelfSpeculativeEqualsAutoregressive(model, range(1, 15), [1, 3, 8]);
  });
});
