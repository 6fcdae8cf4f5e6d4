import assert from 'node:assert/strict';
import net from 'node:net';
import { LscModel } from '../runtime/model.js';
import { LscServer } from '../server/server.js';
import { apiError } from '../server/api-error.js';
import { LscError } from '../compiler/errors.js';
import { QueueFullError } from '../runtime/batch/errors.js';
import { testGpu } from './helpers/gpu.js';
import { TINY, metric, request, startServer, waitFor, type Reply, type Running } from './helpers/serve.js';

/**
 * Every error the server answers, through plain HTTP: the status, OpenAI's error body
 * {"error": {"message", "type", "param", "code"}}, and the CLI's wording. The model is the bundled
 * tiny-code (no chat template), with 2 KV slots and no queue, so a third request is refused 429.
 * LSC_TEST_VERBOSE=1 prints each status and body.
 */
const KEY = 'sk-errors';
const AUTH = { Authorization: `Bearer ${KEY}` };
const MAX_BODY = 16 * 1024;

interface ErrorBody { error: { message: string; type: string; param: string | null; code: string | null } }

/** The reply is an OpenAI error with this status, type, param and a message matching `message`. */
function assertError(r: Reply, status: number, type: string, param: string | null, message: RegExp): ErrorBody {
  if (process.env.LSC_TEST_VERBOSE) console.log(`      ${r.status} ${r.text}`);
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  const body = r.body as ErrorBody;
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(body.error.type, type);
  assert.equal(body.error.param, param);
  assert.match(body.error.message, message);
  return body;
}

describe('lsc serve: error cases over plain HTTP', function () {
  this.timeout(120_000);
  let model: LscModel;
  let srv: Running;
  const post = (route: string, body: string | object, headers: Record<string, string> = AUTH): Promise<Reply> => request(srv.base, 'POST', route, body, headers);
  const completion = (extra: object): Promise<Reply> => post('/v1/completions', { model: 'tiny-code', prompt: 'def add(a, b):\n', max_tokens: 4, ...extra });

  before(async () => {
    model = await LscModel.load(TINY, { gpu: await testGpu(), sequences: 2, maxQueued: 0 });
    srv = await startServer(model, { apiKey: KEY, maxBodyBytes: MAX_BODY });
  });
  after(async () => {
    await srv?.close();
    model?.dispose();
  });

  it('400 invalid JSON', async () => {
    const b = assertError(await post('/v1/completions', '{"model": "tiny-code", "prompt": '), 400, 'invalid_request_error', null, /^the request body is not valid JSON: /);
    assert.equal(b.error.code, 'invalid_json');
    assertError(await post('/v1/completions', '[1, 2]'), 400, 'invalid_request_error', null, /^the request body must be a JSON object, got a list$/);
  });

  it('400 wrong types (max_tokens a string, stop a number, messages not a list)', async () => {
    assertError(await completion({ max_tokens: 'ten' }), 400, 'invalid_request_error', 'max_tokens', /^max_tokens must be a positive integer, got "ten"$/);
    assertError(await completion({ stop: 3 }), 400, 'invalid_request_error', 'stop', /^stop must be a string or a list of strings, got 3$/);
    assertError(await completion({ prompt: { text: 'x' } }), 400, 'invalid_request_error', 'prompt', /^prompt must be a string or a list of token ids/);
    assertError(await post('/v1/chat/completions', { model: 'tiny-code', messages: 'hi' }), 400, 'invalid_request_error', 'messages',
      /^messages must be a non-empty list of \{role, content\}, got "hi"$/);
  });

  it("400 values the library refuses, in the library's (and the CLI's) words", async () => {
    assertError(await completion({ strategy: 'fastest' }), 400, 'invalid_request_error', null,
      /^unknown strategy 'fastest'\. Fix: use autoregressive, early-exit, self-speculative or adaptive$/);
    assertError(await completion({ temperature: -1 }), 400, 'invalid_request_error', null, /^temperature must be ≥ 0, got -1$/);
    assertError(await completion({ num_speculations: 99 }), 400, 'invalid_request_error', null, /^number of speculations must be in 1\.\.\d+, got 99/);
    assertError(await completion({ stop: [''] }), 400, 'invalid_request_error', null, /^stop string 1 is empty/);
  });

  it('400 unknown model', async () => {
    const b = assertError(await completion({ model: 'gpt-4' }), 400, 'invalid_request_error', 'model',
      /^model 'gpt-4' is not served here; this server serves 'tiny-code'/);
    assert.equal(b.error.code, 'model_not_found');
    assertError(await completion({ model: undefined }), 400, 'invalid_request_error', 'model', /^model is required/);
  });

  it('400 max_tokens past the context', async () => {
    const ctx = model.plan.dims.ctx;
    const b = assertError(await completion({ max_tokens: ctx + 100 }), 400, 'invalid_request_error', 'max_tokens',
      new RegExp(`^max_tokens ${ctx + 100} does not fit the context: \\d+ prompt tokens \\+ ${ctx + 100} new tokens exceed ${ctx} positions`));
    assert.equal(b.error.code, 'context_length_exceeded');
  });

  it('400 over-long prompt', async () => {
    const ctx = model.plan.dims.ctx;
    const b = assertError(await completion({ prompt: Array(ctx + 1).fill(100) }), 400, 'invalid_request_error', 'prompt',
      new RegExp(`^prompt: ${ctx + 1} tokens do not fit the context of ${ctx} positions\\. Fix: shorten the prompt`));
    assert.equal(b.error.code, 'context_length_exceeded');
  });

  it('400 n other than 1, and other choices the server does not make', async () => {
    assertError(await completion({ n: 2 }), 400, 'invalid_request_error', 'n', /^n must be 1 \(one choice per request\), got 2$/);
    assertError(await completion({ prompt: ['a', 'b'] }), 400, 'invalid_request_error', 'prompt', /^one prompt per request, got 2$/);
    assertError(await completion({ logprobs: 2 }), 400, 'invalid_request_error', 'logprobs', /^logprobs is not supported by this server$/);
  });

  it('400 chat on a model without a chat template (completions still work)', async () => {
    assertError(await post('/v1/chat/completions', { model: 'tiny-code', messages: [{ role: 'user', content: 'hi' }] }), 400, 'invalid_request_error', 'messages',
      /^this model has no chat template \(no chat_template in tokenizer_config\.json\)/);
    assert.equal((await completion({})).status, 200);
  });

  it('413 body over the size cap', async () => {
    const b = assertError(await completion({ prompt: 'x'.repeat(MAX_BODY) }), 413, 'invalid_request_error', null,
      new RegExp(`^the request body exceeds the server's limit of ${MAX_BODY} bytes$`));
    assert.equal(b.error.code, 'body_too_large');
  });

  it('401 missing or wrong API key (health and metrics stay open)', async () => {
    assertError(await completion({}).then(() => post('/v1/completions', {}, {})), 401, 'authentication_error', null, /^missing API key/);
    assertError(await post('/v1/completions', {}, { Authorization: 'Bearer sk-wrong' }), 401, 'authentication_error', null, /^incorrect API key$/);
    assertError(await request(srv.base, 'GET', '/v1/models', undefined, { Authorization: `Bearer ${KEY}x` }), 401, 'authentication_error', null, /^incorrect API key$/);
    assert.equal((await request(srv.base, 'GET', '/health')).status, 200);
    assert.equal((await request(srv.base, 'GET', '/metrics')).status, 200);
  });

  it('429 queue full, with Retry-After (2 slots busy, no queue)', async () => {
    const abort = new AbortController();
    // two long generations hold both slots
    const long = [0, 1].map(() => fetch(`${srv.base}/v1/completions`, {
      method: 'POST', headers: { ...AUTH, 'Content-Type': 'application/json' }, signal: abort.signal,
      body: JSON.stringify({ model: 'tiny-code', prompt: 'def f(x):\n', max_tokens: 1000, strategy: 'autoregressive', stream: true }),
    }).then((r) => r.body?.cancel()).catch(() => undefined));
    try {
      await waitFor(async () => (await metric(srv.base, 'lsc_active_sequences')) === 2, 30_000, 'both slots in use');
      const r = await completion({});
      const b = assertError(r, 429, 'rate_limit_error', null, /^0 requests are already waiting for this model\. Fix: retry later/);
      assert.equal(b.error.code, 'queue-full');
      assert.equal(r.headers.get('retry-after'), '1');
    } finally {
      abort.abort();
      await Promise.all(long);
    }
    await waitFor(async () => (await metric(srv.base, 'lsc_active_sequences')) === 0, 30_000, 'the slots freed');
  });

  it('404 unknown route, 405 wrong method', async () => {
    assertError(await request(srv.base, 'GET', '/v2/things', undefined, AUTH), 404, 'invalid_request_error', null, /^no route GET \/v2\/things$/);
    const r = await request(srv.base, 'GET', '/v1/completions', undefined, AUTH);
    assertError(r, 405, 'invalid_request_error', null, /^GET is not allowed on \/v1\/completions \(allowed: POST\)$/);
    assert.equal(r.headers.get('allow'), 'POST');
  });

  it('garbage on the socket gets 400 from node and the server goes on', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(Number(new URL(srv.base).port), '127.0.0.1', () => sock.write('NOT HTTP AT ALL\r\n\r\n'));
      let got = '';
      sock.setEncoding('utf8').on('data', (d: string) => { got += d; }).on('end', () => resolve(got)).on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request/);
    assert.equal((await completion({})).status, 200);
  });

  it('/metrics counts requests by status', async () => {
    const text = (await request(srv.base, 'GET', '/metrics')).text;
    for (const s of [200, 400, 401, 404, 405, 413, 429]) assert.match(text, new RegExp(`^lsc_requests_total\\{endpoint="[^"]+",status="${s}"\\} [1-9]\\d*$`, 'm'), `status ${s}`);
  });
});

describe('lsc serve: before the model is loaded', () => {
  it('503 on /health and the API while loading (readiness probe not ready)', async () => {
    const server = new LscServer();
    const addr = await server.listen(0, '127.0.0.1');
    const base = `http://127.0.0.1:${addr.port}`;
    try {
      const h = await request(base, 'GET', '/health');
      assert.equal(h.status, 503);
      assert.deepEqual(h.body, { status: 'loading' });
      const r = await request(base, 'POST', '/v1/completions', { model: 'x', prompt: 'y' });
      assertError(r, 503, 'server_error', null, /^the model is still loading$/);
      assert.equal(r.headers.get('retry-after'), '1');
    } finally {
      await server.close(0);
    }
  });
});

describe('lsc serve: errors thrown while serving, mapped', () => {
  it('500 for anything but a user error (a bug): logged, and the body says so without its details', () => {
    const logged: unknown[] = [];
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    const e = apiError(bug, (b) => logged.push(b));
    assert.equal(e.status, 500);
    assert.deepEqual(e.body, { error: { message: 'internal server error (a bug in lsc; the server logged it)', type: 'server_error', param: null, code: 'internal_error' } });
    assert.deepEqual(logged, [bug]);
  });

  it("400 for an LscError, its one-line CLI form; 429 for QueueFullError, with Retry-After", () => {
    const never = (): never => assert.fail('not a bug');
    const e = apiError(new LscError('top-p must be in (0, 1], got 2', {}, 'pass a probability'), never);
    assert.deepEqual([e.status, e.message], [400, 'top-p must be in (0, 1], got 2. Fix: pass a probability']);
    const q = apiError(new QueueFullError(64), never);
    assert.deepEqual([q.status, q.headers, q.code], [429, { 'Retry-After': '1' }, 'queue-full']);
  });
});
