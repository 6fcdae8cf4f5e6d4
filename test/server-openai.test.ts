import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { LscModel } from '../runtime/model.js';
import { testGpu } from './helpers/gpu.js';
import { runLsc } from './helpers/run-cli.js';
import { request, startServer, tinyChatCopy, type Running } from './helpers/serve.js';

/**
 * lsc serve with the official openai client: completions and chat, streamed and not, give the
 * library's greedy text for the same prompt (and `lsc generate`'s); usage and speculation
 * statistics ride along. The model is a copy of tiny-code with a chat template.
 */
const PROMPT = 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n';
const MESSAGES = [{ role: 'system' as const, content: 'You write Python.' }, { role: 'user' as const, content: 'def add(a, b):' }];

describe('lsc serve with the openai client', function () {
  this.timeout(180_000);
  let tmp: string;
  let model: LscModel;
  let srv: Running;
  let client: OpenAI;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-serve-'));
    model = await LscModel.load(tinyChatCopy(tmp), { gpu: await testGpu() });
    srv = await startServer(model, { apiKey: 'sk-test' });
    client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'sk-test', maxRetries: 0, timeout: 60_000 });
  });
  after(async () => {
    await srv?.close();
    model?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('lists the model, and /health is ready', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['tiny-chat']);
    const health = await request(srv.base, 'GET', '/health');
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: 'ok' });
  });

  it('a completion equals the library\'s greedy output and `lsc generate`\'s, with usage and speculation stats', async () => {
    const solo = await model.complete(PROMPT, { maxNewTokens: 24 });
    const r = await client.completions.create({ model: 'tiny-chat', prompt: PROMPT, max_tokens: 24 });
    assert.equal(r.choices[0].text, solo.text);
    assert.equal(r.choices[0].finish_reason, solo.stats.stopReason === 'eos' ? 'stop' : 'length');
    assert.deepEqual(r.usage, { prompt_tokens: solo.promptTokens.length, completion_tokens: solo.tokens.length, total_tokens: solo.promptTokens.length + solo.tokens.length });
    const spec = (r as unknown as { speculation: Record<string, unknown> }).speculation;
    assert.equal(spec.strategy, 'self-speculative');
    assert.equal(spec.drafted_tokens, solo.stats.draftedTokens);
    assert.equal(spec.accepted_tokens, solo.stats.acceptedTokens);
    assert.equal(spec.acceptance_rate, solo.stats.acceptanceRate);
    // the same prompt through the command line
    const cli = await runLsc(['generate', path.join(tmp, 'tiny-chat'), '--prompt-file', '-', '--max-new-tokens', '24', '--json'], {}, { input: PROMPT, timeoutMs: 120_000 });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal((JSON.parse(cli.stdout) as { text: string }).text, r.choices[0].text);
  });

  it('strategy "adaptive" as an extra body field: the autoregressive text, with the exits and k it used', async () => {
    const ar = await model.complete(PROMPT, { maxNewTokens: 24, strategy: 'autoregressive' });
    const r = await client.completions.create({ model: 'tiny-chat', prompt: PROMPT, max_tokens: 24, ...{ strategy: 'adaptive' } });
    assert.equal(r.choices[0].text, ar.text);
    const spec = (r as unknown as { speculation: Record<string, unknown> }).speculation;
    assert.equal(spec.strategy, 'adaptive');
    assert.ok(typeof spec.drafted_tokens === 'number' && spec.drafted_tokens > 0, JSON.stringify(spec));
    const byExit = spec.rounds_by_exit as Record<string, number>;
    const byK = spec.rounds_by_k as Record<string, number>;
    const sum = (h: Record<string, number>): number => Object.values(h).reduce((a, b) => a + b, 0);
    assert.ok(sum(byExit) === spec.rounds && sum(byK) === spec.rounds, JSON.stringify(spec));
  });

  it('a streamed completion (SSE, include_usage) concatenates to the same text; the usage chunk comes last', async () => {
    const solo = await model.complete(PROMPT, { maxNewTokens: 24, strategy: 'autoregressive' });
    const stream = await client.completions.create({
      model: 'tiny-chat', prompt: PROMPT, max_tokens: 24, stream: true, stream_options: { include_usage: true },
      // LayerSkip's extra field
      ...{ strategy: 'autoregressive' },
    });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null = null;
    for await (const c of stream) {
      chunks++;
      if (c.usage) {
        assert.equal(c.choices.length, 0, 'the usage chunk has no choices');
        usage = c.usage;
        continue;
      }
      assert.equal(usage, undefined, 'no text after the usage chunk');
      text += c.choices[0].text;
      finish = c.choices[0].finish_reason ?? finish;
    }
    assert.equal(text, solo.text);
    assert.ok(chunks > 3, `streamed in pieces (${chunks} chunks)`);
    assert.equal(finish, 'length');
    assert.equal(usage?.completion_tokens, solo.tokens.length);
  });

  it('chat equals LscModel.chat on the same messages, streamed and not', async () => {
    const solo = await model.chat(MESSAGES, { maxNewTokens: 20 }).result;
    const r = await client.chat.completions.create({ model: 'tiny-chat', messages: MESSAGES, max_tokens: 20 });
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, solo.text);
    assert.equal(r.usage?.prompt_tokens, solo.promptTokens.length);

    const stream = await client.chat.completions.create({ model: 'tiny-chat', messages: MESSAGES, max_tokens: 20, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let role: string | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      const delta = c.choices[0]?.delta;
      role ??= delta?.role;
      text += delta?.content ?? '';
    }
    assert.equal(role, 'assistant');
    assert.equal(text, solo.text);
    assert.equal(usage?.total_tokens, solo.promptTokens.length + solo.tokens.length);
  });

  it('sampling with a seed is reproducible through the server and equals the library', async () => {
    const opts = { temperature: 0.8, topP: 0.9, seed: 7, maxNewTokens: 16 };
    const solo = await model.complete(PROMPT, opts);
    const body = { model: 'tiny-chat', prompt: PROMPT, max_tokens: 16, temperature: 0.8, top_p: 0.9, seed: 7 };
    const [a, b] = await Promise.all([client.completions.create(body), client.completions.create(body)]);
    assert.equal(a.choices[0].text, solo.text);
    assert.equal(b.choices[0].text, solo.text);
  });

  it('the openai client surfaces the server\'s 400 as its BadRequestError with OpenAI\'s error body', async () => {
    await assert.rejects(client.completions.create({ model: 'tiny-chat', prompt: PROMPT, max_tokens: 4, ...{ exit_layer: 9 } }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.status, 400);
      assert.equal(e.type, 'invalid_request_error');
      assert.match(e.message, /^400 exit layer must be in 1\.\.7, got 9$/); // the library's (and the CLI's) wording
      return true;
    });
  });
});
