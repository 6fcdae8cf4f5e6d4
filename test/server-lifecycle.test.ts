import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { LscModel } from '../runtime/model.js';
import { testGpu } from './helpers/gpu.js';
import { TINY, metric, request, spawnServe, startServer, waitFor, type Running, type Spawned } from './helpers/serve.js';

/**
 * A server's life around its requests: a client that disconnects mid-stream cancels its sequence
 * (the slot is free again, the generation stopped early); SIGTERM stops accepting, lets in-flight
 * requests finish within the grace period (or cancels them after it), and exits 0.
 */
describe('lsc serve: disconnects and shutdown', function () {
  this.timeout(120_000);

  describe('a client that disconnects mid-stream', () => {
    let model: LscModel;
    let srv: Running;
    before(async () => {
      model = await LscModel.load(TINY, { gpu: await testGpu(), sequences: 4 });
      srv = await startServer(model);
    });
    after(async () => {
      await srv?.close();
      model?.dispose();
    });

    for (const strategy of ['autoregressive', 'self-speculative']) {
      it(`cancels its ${strategy} sequence: the slot is freed and generation stops early`, async () => {
        const client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'none', maxRetries: 0 });
        const before = await metric(srv.base, 'lsc_generated_tokens_total');
        const stream = await client.completions.create({ model: 'tiny-code', prompt: 'def f(x):\n', max_tokens: 1000, stream: true, ...{ strategy } });
        let chunks = 0;
        for await (const _ of stream) if (++chunks === 3) break; // leaving the loop aborts the HTTP request
        assert.equal(chunks, 3);
        await waitFor(async () => (await metric(srv.base, 'lsc_active_sequences')) === 0, 10_000, 'the slot freed');
        // the generation ended and was counted: far fewer than the 1000 tokens asked for
        await waitFor(async () => (await metric(srv.base, 'lsc_generated_tokens_total')) > before, 10_000, 'the cancelled generation counted');
        const generated = (await metric(srv.base, 'lsc_generated_tokens_total')) - before;
        assert.ok(generated < 1000, `cancelled after ${generated} tokens`);
        assert.match((await request(srv.base, 'GET', '/metrics')).text, /^lsc_requests_total\{endpoint="\/v1\/completions",status="499"\} [1-9]/m);
        // the server goes on serving
        const r = await client.completions.create({ model: 'tiny-code', prompt: 'def f(x):\n', max_tokens: 4 });
        assert.equal(r.usage?.completion_tokens, 4);
      });
    }
  });

  describe('SIGTERM to `lsc serve`', () => {
    let proc: Spawned | undefined;
    afterEach(() => { if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL'); });

    /** Starts the CLI and waits until /health is ready (it may first say 'loading'). */
    async function ready(args: string[] = [], env: NodeJS.ProcessEnv = { LSC_API_KEY: undefined }): Promise<Spawned> {
      proc = await spawnServe([TINY, ...args], env);
      const base = proc.base;
      await waitFor(async () => {
        const h = await request(base, 'GET', '/health');
        assert.ok(h.status === 200 || (h.status === 503 && (h.body as { status: string }).status === 'loading'), h.text);
        return h.status === 200;
      }, 60_000, '/health ready');
      return proc;
    }

    /** A streamed completion, resolved with its text and finish once [DONE] arrives; `started` once the first chunk has. */
    function streamed(base: string, maxTokens: number, apiKey = 'none'): { started: Promise<void>; done: Promise<{ text: string; finish: string | null; tokens?: number }> } {
      const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
      let start!: () => void;
      const started = new Promise<void>((r) => { start = r; });
      const done = (async () => {
        const stream = await client.completions.create({ model: 'tiny-code', prompt: 'def f(x):\n', max_tokens: maxTokens, stream: true, stream_options: { include_usage: true }, ...{ strategy: 'autoregressive' } });
        let text = '';
        let finish: string | null = null;
        let tokens: number | undefined;
        for await (const c of stream) {
          start();
          tokens = c.usage?.completion_tokens ?? tokens;
          text += c.choices[0]?.text ?? '';
          finish = c.choices[0]?.finish_reason ?? finish;
        }
        return { text, finish, tokens };
      })();
      return { started, done };
    }

    it('lets an in-flight request finish, refuses new connections, and exits 0 (the key from LSC_API_KEY)', async () => {
      const p = await ready([], { LSC_API_KEY: 'sk-env' });
      assert.equal((await request(p.base, 'POST', '/v1/completions', { model: 'tiny-code', prompt: 'x' })).status, 401);
      const inFlight = streamed(p.base, 120, 'sk-env');
      await inFlight.started;
      p.child.kill('SIGTERM');
      const out = await inFlight.done;
      assert.equal(out.finish, 'length', 'the in-flight request ran to its max_tokens');
      assert.equal(out.tokens, 120);
      assert.equal(await p.exit, 0, p.stderr());
      await assert.rejects(fetch(`${p.base}/health`), 'no longer accepting');
      assert.match(p.stderr(), /lsc: SIGTERM: finishing 1 in-flight request\(s\) \(grace 30 s\)\nlsc: stopped\n$/);
    });

    it('cancels what is still running when the grace period ends, and exits 0', async () => {
      const p = await ready(['--grace-period', '1']);
      const inFlight = streamed(p.base, 1000);
      await inFlight.started;
      const t = Date.now();
      p.child.kill('SIGTERM');
      const out = await inFlight.done;
      assert.equal(await p.exit, 0, p.stderr());
      assert.equal(out.finish, 'stop', 'cancelled: the client got the text so far and a clean end');
      assert.ok(out.tokens !== undefined && out.tokens < 1000, `cancelled after ${out.tokens} of 1000 tokens`);
      assert.ok(Date.now() - t < 20_000, `exited ${Date.now() - t} ms after SIGTERM`);
    });
  });
});
