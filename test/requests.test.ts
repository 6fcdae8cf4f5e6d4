/**
 * Requests to a loaded model at the edges: the last positions of the context, options of the
 * wrong type (the library's callers are not the CLI's parsers), stop strings, and calls after or
 * during dispose(). Uses the bundled model at ctx 32 next to the same model at its own ctx, so
 * every token near the end of the small context has a reference computed far from any edge.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import { LscModel } from '../runtime/model.js';
import type { GenerateOptions } from '../runtime/generate.js';
import { testGpu } from './helpers/gpu.js';
import { ROOT, runLsc } from './helpers/run-cli.js';

const TINY = path.join(ROOT, 'examples', 'models', 'tiny-code');
const CTX = 32;

async function rejection(p: Promise<unknown>): Promise<LscError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof LscError, `expected an LscError, got ${(e as Error)?.stack ?? String(e)}`);
    assert.doesNotMatch(e.format(), /\n/);
    return e;
  }
  assert.fail('expected a rejection, but it succeeded');
}

describe('requests at the edges of a loaded model', function () {
  let small: LscModel;
  let big: LscModel;
  let ids: number[];
  before(async () => {
    const gpu = await testGpu();
    small = await LscModel.load(TINY, { gpu, ctx: CTX });
    big = await LscModel.load(TINY, { gpu });
    ids = big.tokenizer.encode('import os\nimport sys\n\n\ndef main(argv):\n    """Run the command line."""\n    for arg in argv:\n        print(arg)\n');
    assert.ok(ids.length > CTX + 1, `the prompt has ${ids.length} tokens`);
  });
  after(() => {
    small?.dispose();
    big?.dispose();
  });

  describe('the last positions of the context', () => {
    it(`logits of exactly ctx (${CTX}) tokens, at every position, equal those of a model with a larger context`, async () => {
      const prompt = ids.slice(0, CTX);
      const a = await small.logits(prompt, { allPositions: true });
      const b = await big.logits(prompt, { allPositions: true });
      assert.equal(a.length, CTX);
      let worst = 0;
      a.forEach((row, i) => row.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - b[i][j])); }));
      assert.ok(worst <= 1e-5, `max |Δlogit| ${worst}`);
      await rejection(small.logits(ids.slice(0, CTX + 1)));
    });

    const strategies: [string, GenerateOptions][] = [
      ['autoregressive', { strategy: 'autoregressive' }],
      ['early-exit E=2', { strategy: 'early-exit', exitLayer: 2 }],
      ['self-speculative E=2 k=3', { strategy: 'self-speculative', exitLayer: 2, numSpeculations: 3 }],
      ['self-speculative E=4 k=8, one round per submission', { strategy: 'self-speculative', exitLayer: 4, numSpeculations: 8, roundsPerSubmission: 1 }],
      ['sampled self-speculative E=2 k=3', { strategy: 'self-speculative', exitLayer: 2, numSpeculations: 3, temperature: 0.8, seed: 11 }],
    ];
    for (const [name, opts] of strategies) {
      it(`${name}: a prompt of n ≤ ctx tokens yields ctx − n + 1 tokens, the same as with room to spare`, async () => {
        for (const n of [CTX, CTX - 1, 20]) {
          const want = CTX - n + 1;
          const a = await small.complete(ids.slice(0, n), { ...opts, maxNewTokens: 100, stopAtEos: false });
          const b = await big.complete(ids.slice(0, n), { ...opts, maxNewTokens: want, stopAtEos: false });
          assert.equal(a.tokens.length, want, `prompt of ${n}: ${a.tokens.length} tokens`);
          assert.equal(a.stats.stopReason, 'context');
          assert.deepEqual(a.tokens, b.tokens, `prompt of ${n}`);
        }
      });
    }

    it('the CLI takes exactly ctx tokens for logits and generate', async () => {
      const prompt = ids.slice(0, CTX).join(',');
      const r = await runLsc(['logits', '--model', TINY, '--ctx', String(CTX), '--tokens', prompt, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { logits: number[][] }).logits.length, 1);
      const text = small.tokenizer.decode(ids.slice(0, CTX - 1));
      assert.equal(small.tokenizer.encode(text).length, CTX - 1, 'the text encodes back to ctx - 1 tokens');
      const g = await runLsc(['generate', '--model', TINY, '--ctx', String(CTX), '--prompt', text, '--json']);
      assert.equal(g.code, 0, g.stderr);
      const out = JSON.parse(g.stdout) as { tokens: number[]; stats: { stopReason: string } };
      assert.deepEqual([out.tokens.length, out.stats.stopReason], [2, 'context']);
    });
  });

  describe('options of the wrong type or range, from library callers', () => {
    const cases: [string, unknown, RegExp][] = [
      ['a string seed', { seed: 'abc' }, /seed must be an integer in 0\.\.4294967295, got "abc"/],
      ['a negative seed', { seed: -1 }, /seed must be an integer in 0\.\.4294967295, got -1/],
      ['a seed past 32 bits', { seed: 2 ** 32 }, /seed must be an integer in 0\.\.4294967295, got 4294967296/],
      ['a fractional seed', { seed: 1.5 }, /seed must be an integer/],
      ['a string temperature', { temperature: '0.5' }, /temperature must be ≥ 0, got "0\.5"/],
      ['a string top-p', { temperature: 1, topP: '0.9' }, /top-p must be in \(0, 1\], got "0\.9"/],
      ['a string max tokens', { maxNewTokens: '5' }, /max new tokens must be a positive integer, got "5"/],
      ['a string exit layer', { strategy: 'early-exit', exitLayer: '2' }, /exit layer must be in 1\.\.7, got "2"/],
      ['k of zero', { strategy: 'self-speculative', numSpeculations: 0 }, /number of speculations must be in 1\.\.8, got 0/],
      ['a string stopAtEos', { stopAtEos: 'no' }, /stopAtEos must be true or false/],
      ['an EOS id outside the vocabulary', { eosTokens: [2048] }, /eosTokens must be a list of token ids in 0\.\.2047/],
      ['null options', null, /generate options must be an object, got null/],
      ['an empty stop string', { stop: [''] }, /stop string 1 is empty.*at least one character/],
      ['an empty stop string after a good one', { stop: ['\n\n', ''] }, /stop string 2 is empty/],
      ['a stop string that is not a string', { stop: [7] }, /stop string 1 is not a string \(7\)/],
      ['stop given as a string', { stop: 'x' }, /stop must be a list of strings, got "x"/],
    ];
    for (const [name, opts, message] of cases) {
      it(name, async () => {
        const e = await rejection(small.complete('def f(x):', opts as GenerateOptions));
        assert.match(e.format(), message);
        const streamed = await rejection((async () => { for await (const _ of small.generate('def f(x):', opts as GenerateOptions)) { /* drain */ } })());
        assert.equal(streamed.format(), e.format());
      });
    }

    it('a prompt that is neither text nor token ids', async () => {
      const e = await rejection(small.complete(123 as unknown as string));
      assert.match(e.message, /the prompt must be a string or a list of token ids, got number/);
    });

    it("the CLI's --stop '' is refused before the model loads", async () => {
      const r = await runLsc(['generate', '--model', TINY, '--prompt', 'x', '--stop', '\n', '--stop', '']);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^lsc: error: stop string 2 is empty\. Fix: give each stop string at least one character\n$/m);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  });

  describe('dispose()', () => {
    it('calls after dispose() are a clear error; a second dispose() does nothing; a generation cut short by it ends with a clear error', async () => {
      const gpu = await testGpu();
      const m = await LscModel.load(TINY, { gpu, ctx: CTX });
      const run = m.generate(ids.slice(0, 8), { maxNewTokens: 20, stopAtEos: false, strategy: 'self-speculative', exitLayer: 2, numSpeculations: 2, roundsPerSubmission: 1 });
      const it = run[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.done, false);
      m.dispose();
      const during = await rejection(it.next());
      assert.match(during.format(), /^this model was disposed while the call was running\. Fix: load the model again with LscModel.load$/);
      await assert.rejects(run.result, (e: unknown) => e instanceof LscError);
      m.dispose();
      assert.equal(m.disposed, true);
      const after = await rejection(m.complete('def f(x):'));
      assert.match(after.format(), /^this model was disposed before the call\. Fix: load the model again/);
      await rejection(m.logits([1, 2, 3]));
      // the shared device is intact: the other models still run
      const r = await small.complete(ids.slice(0, 8), { maxNewTokens: 3 });
      assert.equal(r.tokens.length, 3);
    });
  });
});
