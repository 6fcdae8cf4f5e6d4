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
    model = await LscModel.load(tinyDir, { gpu: await testGpu(), maxQueued: 16 });
    for (const [i, r] of requests.entries()) solo.set(i, await model.complete(r.prompt, r.opts));
  });
  after(() => model?.dispose());

  it('4 greedy generations in flight at once (autoregressive and self-speculative) each equal their solo run', async () => {
    const out = await Promise.all(requests.slice(0, 4).map((r) => model.complete(r.prompt, r.opts)));
    out.forEach((o, i) => {
      assert.deepEqual(o.tokens, solo.get(i)!.tokens, `request ${i}`);
      assert.equal(o.text, solo.get(i)!.text);
    });
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
    const out = await Promise.all(runs);
    for (const [i, o] of out.entries()) {
      if (i === cancelled) continue;
      assert.deepEqual(o.tokens, solo.get(i)!.tokens, `request ${i}`);
      assert.equal(o.stats.stopReason, 'max-tokens');
    }
    const c = out[cancelled];
    assert.equal(c.stats.stopReason, 'cancelled');
    assert.ok(c.tokens.length < solo.get(cancelled)!.tokens.length, 'the cancelled run stopped early');
    assert.deepEqual(c.tokens, solo.get(cancelled)!.tokens.slice(0, c.tokens.length), 'its tokens so far are its solo run\'s');
    assert.equal(model.queue.busy, false);
    assert.equal(model.queue.queued, 0);
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

  it('a full queue refuses with a typed error; an aborted waiter leaves the line; the others are undisturbed', async () => {
    const small = await LscModel.load(tinyDir, { gpu: await testGpu(), maxQueued: 1 });
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
