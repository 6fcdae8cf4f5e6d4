import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { LscModel } from '../runtime/model.js';
import type { GenerateOptions, GenerateResult } from '../runtime/generate.js';
import { CancelledError, QueueFullError } from '../runtime/batch/errors.js';
import { testGpu } from './helpers/gpu.js';

const tinyDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));

const prompts = [
  'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
  'import os\n\nclass Config:\n    def __init__(self, path):\n',
  'for i in range(10):\n',
  'def add(a, b):\n    return',
  '# sort a list\nxs = [3, 1, 2]\n',
  'class Stack:\n    def push(self, x):\n',
  'while True:\n    line = input()\n',
  'print("hello',
];

interface Request { prompt: string; opts: GenerateOptions }

/** 8 requests: different prompts and lengths, autoregressive and self-speculative mixed. */
const requests: Request[] = prompts.map((prompt, i) => ({
  prompt,
  opts: {
    maxNewTokens: 6 + 3 * i, stopAtEos: false,
    strategy: i % 2 ? 'self-speculative' : 'autoregressive',
    ...(i % 4 === 3 ? { numSpeculations: 2 } : {}),
  },
}));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('many generations on one model at once', function () {
  let model: LscModel;
  const solo = new Map<number, GenerateResult>();
  before(async () => {
    // speculation in full batches, whatever the adapter's default (the fallback is tested below)
    model = await LscModel.load(tinyDir, { gpu: await testGpu(), maxQueued: 16, sequences: 8, speculationMaxBatch: 8 });
    for (const [i, r] of requests.entries()) solo.set(i, await model.complete(r.prompt, r.opts));
    // the solo runs are those of the single-sequence model (no batch engine, slot 0)
    const single = await LscModel.load(tinyDir, { gpu: await testGpu(), sequences: 1 });
    try {
      for (const [i, r] of requests.entries()) assert.deepEqual((await single.complete(r.prompt, r.opts)).tokens, solo.get(i)!.tokens, `request ${i}`);
    } finally {
      single.dispose();
    }
  });
  after(() => model?.dispose());

  it('4 greedy generations in flight at once (autoregressive and self-speculative) each equal their solo run', async () => {
    const out = await Promise.all(requests.slice(0, 4).map((r) => model.complete(r.prompt, r.opts)));
    out.forEach((o, i) => {
      assert.deepEqual(o.tokens, solo.get(i)!.tokens, `request ${i}`);
      assert.equal(o.text, solo.get(i)!.text);
      // the same drafts were made and accepted: batched rounds draft exactly what solo rounds do
      assert.equal(o.stats.acceptedTokens, solo.get(i)!.stats.acceptedTokens, `request ${i} accepted drafts`);
    });
  });

  it('4 self-speculative sequences started together share rounds: each drafts, accepts and emits what it does alone', async () => {
    const opts: GenerateOptions = { maxNewTokens: 40, stopAtEos: false, strategy: 'self-speculative' };
    const alone: GenerateResult[] = [];
    for (const p of prompts.slice(0, 4)) alone.push(await model.complete(p, opts));
    const before = { ...model.engine!.stats };
    const together = await Promise.all(prompts.slice(0, 4).map((p) => model.complete(p, opts)));
    const { batchedRows, batchedSubmissions } = model.engine!.stats;
    assert.ok(batchedRows - before.batchedRows >= 2 * (batchedSubmissions - before.batchedSubmissions), 'rounds ran batched');
    together.forEach((o, i) => {
      assert.deepEqual(o.tokens, alone[i].tokens, `prompt ${i}`);
      assert.equal(o.stats.rounds, alone[i].stats.rounds, `prompt ${i} rounds`);
      assert.equal(o.stats.acceptedTokens, alone[i].stats.acceptedTokens, `prompt ${i} accepted drafts`);
    });
  });

  it('6 self-speculative sequences (k=3 and k=2 groups) chain batched rounds on the GPU, one stopping mid-chain: each equals its run alone', async () => {
    const base: GenerateOptions = { maxNewTokens: 48, stopAtEos: false, strategy: 'self-speculative' };
    const opts: GenerateOptions[] = prompts.slice(0, 6).map((_, i) => ({ ...base, maxNewTokens: 30 + 6 * i, ...(i % 2 ? { numSpeculations: 2 } : {}) }));
    const alone: GenerateResult[] = [];
    for (const [i, p] of prompts.slice(0, 6).entries()) alone.push(await model.complete(p, opts[i]));
    // sequence 4 stops at a text its run alone reaches after ~12 tokens, inside a chain of rounds
    const stopText = alone[4].text.slice(Math.floor(alone[4].text.length / 3), Math.floor(alone[4].text.length / 3) + 3);
    assert.ok(stopText.length === 3, `a stop text from ${JSON.stringify(alone[4].text)}`);
    opts[4] = { ...opts[4], stop: [stopText] };
    alone[4] = await model.complete(prompts[4], opts[4]);
    assert.equal(alone[4].stats.stopReason, 'stop-string');
    const before = { ...model.engine!.stats };
    const together = await Promise.all(prompts.slice(0, 6).map((p, i) => model.complete(p, opts[i])));
    assert.ok(model.engine!.stats.chainedRounds > before.chainedRounds, 'batched rounds chained on the GPU');
    together.forEach((o, i) => {
      assert.deepEqual(o.tokens, alone[i].tokens, `prompt ${i}`);
      assert.equal(o.text, alone[i].text, `prompt ${i} text`);
      assert.equal(o.stats.stopReason, alone[i].stats.stopReason, `prompt ${i} stop reason`);
      assert.equal(o.stats.rounds, alone[i].stats.rounds, `prompt ${i} rounds`);
      assert.equal(o.stats.acceptedTokens, alone[i].stats.acceptedTokens, `prompt ${i} accepted drafts`);
    });
  });

  it('KV memory: a slot per sequence, accounted in gpuBytes', () => {
    const b = model.gpuBytes;
    assert.equal(b.sequences, 8);
    assert.equal(b.kvCache, 8 * b.kvPerSequence);
    const d = model.plan.dims;
    assert.equal(b.kvPerSequence, d.layers * 2 * d.ctx * d.kvHeads * d.headDim * 2); // f16 K and V per layer
  });

  it('8 greedy generations with staggered starts, one cancelled midway: the others equal their solo runs, the model is idle after', async () => {
    const cancelled = 5;
    const runs = [];
    for (const [i, r] of requests.entries()) {
      const run = model.generate(r.prompt, r.opts);
      runs.push((async () => {
        let chunks = 0;
        for await (const _ of run) {
          if (i === cancelled && ++chunks === 2) run.cancel();
        }
        return run.result;
      })());
      await sleep(5 * i); // later arrivals join while earlier ones run
    }
    const before = { ...model.engine!.stats };
    const out = await Promise.all(runs);
    // they ran together: batched submissions of several rows
    assert.ok(model.engine!.stats.batchedRows - before.batchedRows > model.engine!.stats.batchedSubmissions - before.batchedSubmissions);
    for (const [i, o] of out.entries()) {
      if (i === cancelled) continue;
      assert.deepEqual(o.tokens, solo.get(i)!.tokens, `request ${i}`);
      assert.equal(o.stats.acceptedTokens, solo.get(i)!.stats.acceptedTokens, `request ${i} accepted drafts`);
      assert.equal(o.stats.stopReason, 'max-tokens');
    }
    const c = out[cancelled];
    assert.equal(c.stats.stopReason, 'cancelled');
    assert.ok(c.tokens.length < solo.get(cancelled)!.tokens.length, 'the cancelled run stopped early');
    assert.deepEqual(c.tokens, solo.get(cancelled)!.tokens.slice(0, c.tokens.length), 'its tokens so far are its solo run\'s');
    assert.equal(model.queue.busy, false);
    assert.equal(model.queue.queued, 0);
    // every slot is free again: the cancelled sequence's too
    assert.equal(model.engine!.active, 0);
    assert.equal(model.gpuBytes.activeSequences, 0);
    assert.equal(model.gpuBytes.kvInUse, 0);
    // after the crowd, a generation still gives its solo tokens
    assert.deepEqual((await model.complete(requests[0].prompt, requests[0].opts)).tokens, solo.get(0)!.tokens);
  });

  it('a seeded sampled generation gives the same tokens alone and among others', async () => {
    const opts: GenerateOptions = { maxNewTokens: 16, temperature: 0.9, topP: 0.95, seed: 1234, stopAtEos: false };
    for (const strategy of ['autoregressive', 'self-speculative'] as const) {
      const alone = await model.complete(prompts[0], { ...opts, strategy });
      const [, crowded] = await Promise.all([
        model.complete(prompts[1], { ...opts, seed: 7, strategy }),
        model.complete(prompts[0], { ...opts, strategy }),
        model.complete(prompts[2], requests[2].opts),
      ]);
      assert.deepEqual(crowded.tokens, alone.tokens, strategy);
    }
  });

  it('one KV slot: a full queue refuses with a typed error; an aborted waiter leaves the line; the others are undisturbed', async () => {
    const small = await LscModel.load(tinyDir, { gpu: await testGpu(), maxQueued: 1, sequences: 1 });
    try {
      const r = requests[1];
      const first = small.complete(r.prompt, r.opts);
      const abort = new AbortController();
      const waiting = small.complete(r.prompt, { ...r.opts, signal: abort.signal });
      await sleep(0);
      await assert.rejects(small.complete(r.prompt, r.opts), (e: unknown) => e instanceof QueueFullError && e.code === 'queue-full');
      abort.abort();
      await assert.rejects(waiting, (e: unknown) => e instanceof CancelledError && e.code === 'cancelled');
      assert.deepEqual((await first).tokens, solo.get(1)!.tokens);
      assert.equal(small.queue.busy, false);
      // a bad sampling parameter fails its own request only
      const [bad, good] = await Promise.allSettled([
        small.complete(r.prompt, { ...r.opts, temperature: -1 }),
        small.complete(r.prompt, r.opts),
      ]);
      assert.equal(bad.status, 'rejected');
      assert.equal(good.status === 'fulfilled' && good.value.tokens.join(), solo.get(1)!.tokens.join());
    } finally {
      small.dispose();
    }
  });
});

describe('the batch engine at its caps', function () {
  it('2 slots: a third request waits, a fourth is refused with queue-full; a cancelled waiter never takes a slot', async () => {
    const model = await LscModel.load(tinyDir, { gpu: await testGpu(), maxQueued: 1, sequences: 2 });
    try {
      const r = requests[1];
      const want = (await model.complete(r.prompt, r.opts)).tokens;
      const abort = new AbortController();
      const running = [model.complete(r.prompt, r.opts), model.complete(r.prompt, r.opts)];
      const waiter = model.complete(r.prompt, { ...r.opts, signal: abort.signal });
      await sleep(0);
      await assert.rejects(model.complete(r.prompt, r.opts), (e: unknown) => e instanceof QueueFullError && e.code === 'queue-full');
      abort.abort();
      await assert.rejects(waiter, (e: unknown) => e instanceof CancelledError);
      for (const out of await Promise.all(running)) assert.deepEqual(out.tokens, want);
      assert.equal(model.engine!.active, 0);
      // a bad sampling parameter fails its own request only
      const [bad, good] = await Promise.allSettled([
        model.complete(r.prompt, { ...r.opts, temperature: -1 }),
        model.complete(r.prompt, r.opts),
      ]);
      assert.equal(bad.status, 'rejected');
      assert.deepEqual(good.status === 'fulfilled' ? good.value.tokens : null, want);
      // a prompt longer than the context is refused before it takes a slot
      const long = Array.from({ length: model.plan.dims.ctx + 1 }, () => 5);
      await assert.rejects(model.complete(long, r.opts), /do not fit the context/);
      assert.equal(model.engine!.active, 0);
    } finally {
      model.dispose();
    }
  });
});

describe('speculation only while the batch is small (speculationMaxBatch)', function () {
  let model: LscModel;
  before(async () => {
    model = await LscModel.load(tinyDir, { gpu: await testGpu(), maxQueued: 16, sequences: 8, speculationMaxBatch: 2 });
  });
  after(() => model?.dispose());

  it('with more sequences than the cap, greedy speculative sequences decode plainly, with their solo tokens; alone they speculate', async () => {
    // different lengths: the crowd thins as the short ones finish
    const opts = (i: number): GenerateOptions => ({ maxNewTokens: 16 + 16 * i, stopAtEos: false, strategy: 'self-speculative' });
    const alone: GenerateResult[] = [];
    for (const [i, p] of prompts.slice(0, 4).entries()) alone.push(await model.complete(p, opts(i)));
    for (const a of alone) {
      assert.equal(a.stats.plainTokens, 0);
      assert.ok(a.stats.rounds > 0);
    }
    const before = { ...model.engine!.stats };
    const together = await Promise.all(prompts.slice(0, 4).map((p, i) => model.complete(p, opts(i))));
    together.forEach((o, i) => {
      assert.deepEqual(o.tokens, alone[i].tokens, `prompt ${i}`);
      assert.ok(o.stats.plainTokens! > 0, `prompt ${i} decoded plainly`);
      assert.equal(o.stats.strategy, 'self-speculative');
    });
    // the cap counts the sequences running at each step: once two have finished, the last two speculate again
    assert.ok(together[3].stats.rounds > 0 && together[3].stats.plainTokens! < together[3].tokens.length, 'the longest one speculated at the end');
    assert.ok(model.engine!.stats.batchedSubmissions > before.batchedSubmissions);
  });

  it('a greedy generation may set its own cap; autoregressive ones report no plain tokens', async () => {
    const opts: GenerateOptions = { maxNewTokens: 24, stopAtEos: false, strategy: 'self-speculative', speculationMaxBatch: 8 };
    const [a, b, c, ar] = await Promise.all([
      ...prompts.slice(0, 3).map((p) => model.complete(p, opts)),
      model.complete(prompts[3], { maxNewTokens: 24, stopAtEos: false, strategy: 'autoregressive' }),
    ]);
    for (const o of [a, b, c]) assert.equal(o.stats.plainTokens, 0);
    assert.equal(ar.stats.plainTokens, null);
  });

  it('sampled sequences speculate whatever runs beside them (a seed must give the same tokens)', async () => {
    const opts: GenerateOptions = { maxNewTokens: 16, temperature: 0.9, seed: 99, stopAtEos: false, strategy: 'self-speculative' };
    const alone = await model.complete(prompts[0], opts);
    const crowd = await Promise.all([opts, { ...opts, seed: 1 }, { ...opts, seed: 2 }, { ...opts, seed: 3 }].map((o) => model.complete(prompts[0], o)));
    assert.deepEqual(crowd[0].tokens, alone.tokens);
    for (const o of crowd) assert.equal(o.stats.plainTokens, 0);
  });

  it('a cap that is not a positive integer is a one-line error, at load and per generation', async () => {
    for (const bad of [0, -1, 1.5, '2'] as unknown[]) {
      await assert.rejects(LscModel.load(tinyDir, { gpu: await testGpu(), speculationMaxBatch: bad as number }),
        (e: Error) => /^speculation max batch must be a positive integer, got /.test(e.message) && !e.message.includes('\n'));
      await assert.rejects(model.complete(prompts[0], { speculationMaxBatch: bad as number }),
        (e: Error) => /^speculation max batch must be a positive integer, got /.test(e.message) && !e.message.includes('\n'));
    }
  });
});
