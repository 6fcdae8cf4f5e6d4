import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { AdaptiveController, expectedTokens } from '../runtime/adaptive-controller.js';
import { RoundCost } from '../runtime/round-cost.js';
import { speculationBounds } from '../runtime/speculation-bounds.js';
import { Rng, distribution, probabilityOf } from '../runtime/sampling.js';
import { LscModel } from '../runtime/model.js';
import { speculativeRound } from '../runtime/generate.js';
import { testGpu } from './helpers/gpu.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tinyDir = path.join(root, 'examples/models/tiny-code/');
const deepDir = path.join(root, 'examples/models/tiny-code-deep/');

const prompts = [
  'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
  'import os\n\nclass Config:\n    def __init__(self, path):\n',
  'for i in range(10):\n',
];

/** A round of k drafts, each accepted with probability alpha until the first rejection: accepted count. */
function simulateRound(rng: Rng, alpha: number, k: number): number {
  let n = 0;
  while (n < k && rng.next() < alpha) n++;
  return n;
}

describe('adaptive controller (runtime/adaptive-controller.ts)', () => {
  it('expected tokens per round: the closed form equals the sum over outcomes', () => {
    for (const alpha of [0, 0.3, 0.77, 0.999, 1]) {
      for (const k of [1, 2, 5, 8]) {
        // P(n accepted) = α^n (1 − α) for n < k, α^k for n = k; a round emits n + 1 tokens
        let sum = 0;
        for (let n = 0; n < k; n++) sum += alpha ** n * (1 - alpha) * (n + 1);
        sum += alpha ** k * (k + 1);
        assert.ok(Math.abs(expectedTokens(alpha, k) - sum) < 1e-9, `α=${alpha} k=${k}: ${expectedTokens(alpha, k)} vs ${sum}`);
      }
    }
  });

  it('finds the best (E, k) of simulated exits and stays near the best rate', () => {
    const truth: Record<number, number> = { 1: 0.35, 2: 0.6, 3: 0.82, 4: 0.9, 5: 0.93 };
    const exits = Object.keys(truth).map(Number);
    const roundCost = (E: number, k: number): number => 0.15 + k * (0.1 + 0.12 * E) + 1 - 0.1 * E;
    const rateAt = (E: number, k: number): number => expectedTokens(truth[E], k) / roundCost(E, k);
    let best = { E: 0, k: 0, v: 0 };
    for (const E of exits) for (let k = 1; k <= 8; k++) if (rateAt(E, k) > best.v) best = { E, k, v: rateAt(E, k) };
    const c = new AdaptiveController({ exits, kMax: 8, roundCost, maxRounds: 8 });
    const rng = new Rng(7);
    const used = new Set<number>();
    let late = 0;
    let lateRate = 0;
    for (let round = 0; round < 600; round++) {
      const { E, k, rounds } = c.next();
      assert.ok(rounds === 2 || rounds === 8, `${rounds} rounds: a quarter of 8 exploring, 8 exploiting`);
      used.add(E);
      if (round >= 400) { late++; lateRate += rateAt(E, k); }
      c.record(E, k, simulateRound(rng, truth[E], k));
    }
    assert.ok(used.size >= 3, `explored exits ${[...used]}`);
    // the best exit in truth, and at least 97% of the best expected rate on average once settled
    assert.equal(c.next().E, best.E, `best (E, k) is ${JSON.stringify(best)}`);
    assert.ok(lateRate / late > 0.97 * best.v, `late mean rate ${(lateRate / late).toFixed(3)} vs best ${best.v.toFixed(3)}`);
    const est = c.acceptance(best.E).mean;
    assert.ok(Math.abs(est - truth[best.E]) < 0.15, `estimate ${est} vs ${truth[best.E]}`);
  });

  it('follows a change of acceptance: forgetting with the half-life', () => {
    const c = new AdaptiveController({ exits: [2], kMax: 8, roundCost: (_E, k) => 1 + 0.3 * k, maxRounds: 4, halfLife: 8 });
    for (let i = 0; i < 60; i++) c.record(2, 4, 4);
    const high = c.next().k;
    assert.ok(c.acceptance(2).mean > 0.95);
    for (let i = 0; i < 40; i++) c.record(2, 4, 0);
    assert.ok(c.acceptance(2).mean < 0.2, `after the text turned hard: ${c.acceptance(2).mean}`);
    assert.ok(c.next().k < high, `k ${c.next().k} after, ${high} before`);
    assert.equal(c.next().k, 1);
  });

  it('ranks pairs by their measured round times once it has them, and carries them to the next sequence', () => {
    // the model says k = 2 is best at α = 0.8; the clock says a round of k = 2 costs 3× what the
    // model's scale predicts, while every other pair costs what the model says
    const roundCost = (_E: number, k: number): number => 1 + 0.25 * k;
    const c = new AdaptiveController({ exits: [2], kMax: 6, roundCost, maxRounds: 8 });
    for (let i = 0; i < 40; i++) c.record(2, 4, i % 5 === 0 ? 2 : 4);
    const modelK = c.bestK(2, c.acceptance(2).mean).k;
    assert.equal(c.cost(2, modelK), roundCost(2, modelK), 'before any time: the model itself');
    const msPerUnit = 1.7;
    for (let i = 0; i < 6; i++) {
      c.recordTime(2, 1, msPerUnit * roundCost(2, 1), 8);
      c.recordTime(2, modelK, 3 * msPerUnit * roundCost(2, modelK), 8);
    }
    // unmeasured pairs: the model in milliseconds at the measured scale, a forgotten mean of 1× and 3×
    const other = modelK === 3 ? 4 : 3;
    const scale = c.cost(2, other) / roundCost(2, other) / msPerUnit;
    assert.ok(scale > 1.5 && scale < 2.5, `scale ${scale}`);
    // the slow pair: above the scale, toward its measured 3× (forgetting caps the measured weight)
    const slow = c.cost(2, modelK) / roundCost(2, modelK) / msPerUnit;
    assert.ok(slow > 1.15 * scale && slow < 3, `slow pair at ${slow}× the model, scale ${scale}`);
    const after = c.next().k;
    assert.notEqual(after, modelK, `still k=${modelK} after it measured 3× its modelled cost`);
    // the next sequence starts from these times
    const d = new AdaptiveController({ exits: [2], kMax: 6, roundCost, maxRounds: 8, history: c.counts(), timeHistory: c.times() });
    assert.equal(d.next().k, after);
    assert.equal(d.cost(2, modelK), c.cost(2, modelK));
    assert.throws(() => c.recordTime(2, 1, 0, 8), /round time/);
    assert.throws(() => c.recordTime(2, 1, 5, 0), /round time/);
  });

  it('keeps histograms of what it ran and refuses rounds it did not offer', () => {
    const c = new AdaptiveController({ exits: [1, 3], kMax: 4, roundCost: (E, k) => 1 + 0.2 * E * k, maxRounds: 2 });
    c.record(1, 2, 1);
    c.record(3, 2, 2);
    c.record(3, 4, 0);
    assert.deepEqual([...c.roundsByExit], [[1, 1], [3, 2]]);
    assert.deepEqual([...c.roundsByK], [[2, 2], [4, 1]]);
    assert.throws(() => c.record(2, 2, 1), /E=2/);
    assert.throws(() => c.record(1, 2, 3), /n=3/);
  });
});

describe('round cost (runtime/round-cost.ts)', () => {
  for (const name of ['tiny-code', 'tiny-code-deep']) {
    it(`${name}: its three extreme shapes give speculation-bounds.ts's three ideal speedups`, () => {
      const file = path.join(root, 'graphs', `${name}.json`);
      const plan = compileGraph(JSON.parse(fs.readFileSync(file, 'utf8')) as Graph, { file }).plan;
      const shapes = {
        bandwidthBound: new RoundCost(plan, { dispatchShare: 0, extraRowCost: 0 }),
        computeBound: new RoundCost(plan, { dispatchShare: 0, extraRowCost: 1 }),
        dispatchBound: new RoundCost(plan, { dispatchShare: 1, extraRowCost: 0 }),
      };
      for (const E of plan.exits.candidates) {
        for (const [k, tau] of [[1, 1.7], [3, 2.9], [8, 4.1]]) {
          const b = speculationBounds(plan, E, k, tau);
          for (const [key, cost] of Object.entries(shapes)) {
            const want = b[key as keyof typeof b];
            const got = tau / cost.round(E, k);
            assert.ok(Math.abs(got - want) < 1e-9, `E=${E} k=${k} ${key}: ${got} vs ${want}`);
          }
        }
      }
    });
  }
});

/** Greedy adaptive decoding gives exactly the autoregressive tokens, and moves between exits. */
async function expectAdaptiveEqualsAutoregressive(model: LscModel, n: number): Promise<void> {
  const exitsUsed = new Set<string>();
  for (const prompt of prompts) {
    const ar = await model.complete(prompt, { maxNewTokens: n, stopAtEos: false, strategy: 'autoregressive' });
    for (const chain of [1, 8]) {
      const ad = await model.complete(prompt, { maxNewTokens: n, stopAtEos: false, strategy: 'adaptive', roundsPerSubmission: chain });
      const what = `prompt ${JSON.stringify(prompt.slice(0, 20))} chain ${chain}: rounds by E ${JSON.stringify(ad.stats.roundsByExit)} by k ${JSON.stringify(ad.stats.roundsByK)}`;
      assert.deepEqual(ad.tokens, ar.tokens, what);
      assert.equal(ad.text, ar.text, what);
      assert.ok(ad.stats.draftedTokens > 0, what);
      const rounds = Object.values(ad.stats.roundsByExit ?? {}).reduce((a, b) => a + b, 0);
      assert.equal(rounds, ad.stats.rounds, what);
      assert.equal(Object.values(ad.stats.roundsByK ?? {}).reduce((a, b) => a + b, 0), ad.stats.rounds, what);
      // E changed between rounds within this sequence: KV of accepted positions is complete for any E
      if (Object.keys(ad.stats.roundsByExit ?? {}).length > 1) exitsUsed.add(prompt);
    }
  }
  assert.ok(exitsUsed.size >= 2, `E changed within a sequence for ${exitsUsed.size} of ${prompts.length} prompts`);
}

describe('adaptive decoding on tiny-code', function () {
  let model: LscModel;
  before(async () => {
    model = await LscModel.load(tinyDir, { gpu: await testGpu() });
  });
  after(() => model?.dispose());

  it('greedy output equals autoregressive output, with E and k changing between rounds', async () => {
    await expectAdaptiveEqualsAutoregressive(model, 64);
  });

  it('stops exactly: max tokens mid-round, stop strings and EOS give the autoregressive result', async () => {
    const prompt = prompts[0];
    const ar = await model.complete(prompt, { maxNewTokens: 40, stopAtEos: false, strategy: 'autoregressive' });
    for (const n of [1, 2, 7, 13]) {
      const b = await model.complete(prompt, { maxNewTokens: n, stopAtEos: false, strategy: 'adaptive' });
      assert.deepEqual(b.tokens, ar.tokens.slice(0, n), `max ${n} tokens`);
    }
    const eosAt = ar.tokens[20];
    const c = await model.complete(prompt, { maxNewTokens: 40, stopAtEos: false, strategy: 'adaptive', eosTokens: [eosAt] });
    assert.equal(c.stats.stopReason, 'eos');
    assert.deepEqual(c.tokens, ar.tokens.slice(0, ar.tokens.indexOf(eosAt) + 1));
  });

  it('a fixed exit layer and a k cap are kept', async () => {
    const r = await model.complete(prompts[1], { maxNewTokens: 40, stopAtEos: false, strategy: 'adaptive', exitLayer: 3, numSpeculations: 2 });
    assert.deepEqual(Object.keys(r.stats.roundsByExit ?? {}), ['3']);
    assert.ok(Object.keys(r.stats.roundsByK ?? {}).every((k) => Number(k) <= 2), JSON.stringify(r.stats.roundsByK));
    await assert.rejects(model.complete(prompts[1], { strategy: 'adaptive', draftStopProbability: 2 }), /draft stop probability must be in \[0, 1\]/);
  });

  it('confidence-stopped sampled rounds reproduce the target distribution', async () => {
    // As the self-speculative distribution test: the round's first token must follow the full
    // model's p(· | context) whatever the draft does, here with drafting stopped after a draft
    // whose own probability is below the first draft's most likely token's (rounds of 1 to 3 drafts).
    const ids = model.tokenizer.encode('def add(a, b):\n    return');
    const sampling = { temperature: 1.3, topK: 6 };
    const E = 1;
    await model.steps.prefill(ids.slice(0, -1), {});
    const cur = ids[ids.length - 1];
    const p = ids.length - 1;
    const target = distribution(await model.steps.stepLogits(cur, p, 0), sampling);
    const draft = distribution(await model.steps.stepLogits(cur, p, 0, E), sampling);
    const stopBelow = Math.max(...draft.probs) - 1e-6;
    assert.ok(stopBelow < 0.9, `the draft must be uncertain for the test to mean something (${stopBelow})`);
    const N = 1500;
    const counts = new Map<number, number>();
    const draftCounts = new Map<number, number>();
    for (let s = 0; s < N; s++) {
      const out = await speculativeRound(model, cur, p, 3, E, {
        strategy: 'adaptive', maxNew: 100, E, K: 3, sampling, greedy: false, rng: new Rng(5000 + s), chain: 1,
      }, stopBelow);
      counts.set(out.tokens[0], (counts.get(out.tokens[0]) ?? 0) + 1);
      draftCounts.set(out.drafted, (draftCounts.get(out.drafted) ?? 0) + 1);
    }
    assert.ok(draftCounts.size >= 2 && (draftCounts.get(3) ?? 0) < N, `drafts per round ${JSON.stringify([...draftCounts])}: some rounds must stop early`);
    const outside = [...counts.keys()].filter((id) => probabilityOf(target, id) === 0);
    assert.deepEqual(outside, [], 'tokens outside the target support');
    let chi2 = 0;
    for (const [j, id] of [...target.ids].entries()) {
      const expected = N * target.probs[j];
      chi2 += (((counts.get(id) ?? 0) - expected) ** 2) / expected;
    }
    // df = 5; P(chi2 > 25.7) = 1e-4
    assert.ok(chi2 < 25.7, `chi-square ${chi2.toFixed(2)} (counts ${JSON.stringify([...counts])}, target ${JSON.stringify([...target.probs].map((x) => +x.toFixed(3)))})`);
  });

  it('sampled adaptive generation is seeded and reproducible, and reports its histograms', async () => {
    const o = { maxNewTokens: 24, stopAtEos: false, strategy: 'adaptive' as const, temperature: 0.8, seed: 11 };
    const a = await model.complete(prompts[2], o);
    const b = await model.complete(prompts[2], o);
    assert.deepEqual(a.tokens, b.tokens);
    assert.equal(a.tokens.length, 24);
    assert.equal(Object.values(a.stats.roundsByExit ?? {}).reduce((x, y) => x + y, 0), a.stats.rounds);
  });
});

describe('adaptive decoding on tiny-code-deep', function () {
  let model: LscModel;
  before(async () => {
    model = await LscModel.load(deepDir, { gpu: await testGpu() });
  });
  after(() => model?.dispose());

  it('greedy output equals autoregressive output, with E and k changing between rounds', async () => {
    await expectAdaptiveEqualsAutoregressive(model, 48);
  });
});
