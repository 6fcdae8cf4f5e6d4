/**
 * The runtime in a real browser (issue 14): `lsc web`'s server (cli/web-server.ts) on a free
 * loopback port, Debian's chromium driven by puppeteer-core, WebGPU on SwiftShader (a CPU adapter
 * without shader-f16: the page runs the f32-KV plan with CPU-driver kernels). The page's kernels
 * are the Node runtime's on an adapter of that kind (lavapipe without shader-f16, untuned), and its
 * greedy tokens equal Node's for reference.json's prompts under every strategy, and
 * self-speculative must equal autoregressive in the page. Weights arrive by Range requests (a
 * sharded copy too) and a reload takes them from Cache Storage. Bad input (no WebGPU, a weight URL that 404s, a truncated
 * checkpoint, an adapter below the plans' limits) rejects lsc.ready and lsc.generate with one clear line, shown in the page too.
 * A screenshot of the page after a generation goes to the temp dir (lsc-web-page.png).
 * LSC_TEST_VERBOSE=1 prints tok/s in the page and in Node (different adapters: SwiftShader vs lavapipe).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { startWebServer, type WebServer } from '../cli/web-server.js';
import { LscModel } from '../runtime/model.js';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import { writeShardedSafetensors } from './helpers/checkpoint-writer.js';
import type { GenerateOptions, GenerateStats } from '../runtime/generate.js';
import { testGpu } from './helpers/gpu.js';
import { ROOT, assertUserError } from './helpers/run-cli.js';
import { runInProcess } from './helpers/run-in-process.js';

// what the page callbacks use of the browser's globals (the tests compile without the DOM lib)
interface PageModel {
  gpu: { features: Set<string>; adapterInfo: { architecture: string } };
  plan: { features: string[]; buffers: { kind: string; doc: string }[]; kernels: { id: string }[] };
  loadedBytes: { network: number; cache: number };
  complete(prompt: string, o: GenerateOptions): Promise<{ tokens: number[] }>;
}
interface PageApi {
  ready: Promise<void>;
  model?: PageModel;
  generate(prompt: string, o: GenerateOptions): Promise<{ text: string; tokens: number[]; stats: GenerateStats }>;
}
declare const lsc: PageApi;
declare const navigator: object;
declare const document: { getElementById(id: string): { textContent: string | null; className: string; click(): void } | null };

const CHROMIUM = process.env.LSC_CHROMIUM ?? '/usr/bin/chromium';
const TINY = path.join(ROOT, 'examples', 'models', 'tiny-code');
const prompts = (JSON.parse(fs.readFileSync(path.join(TINY, 'reference.json'), 'utf8')) as { prompts: { text: string }[] }).prompts;
const NEW_TOKENS = 32;
const GREEDY = { temperature: 0, stopAtEos: false, maxNewTokens: NEW_TOKENS } as const;
const STRATEGIES: [string, GenerateOptions][] = [
  ['autoregressive', { strategy: 'autoregressive' }],
  ['early-exit E=2', { strategy: 'early-exit', exitLayer: 2 }],
  ['self-speculative E=2 k=3', { strategy: 'self-speculative', exitLayer: 2, numSpeculations: 3 }],
  ['self-speculative E=4 k=2', { strategy: 'self-speculative', exitLayer: 4, numSpeculations: 2 }],
];
const verbose = (line: string): void => { if (process.env.LSC_TEST_VERBOSE) console.log(`      ${line}`); };

/** A copy of tiny-code in a temp dir, to break under a running server. */
function tinyCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-web-model-'));
  for (const f of fs.readdirSync(TINY)) fs.copyFileSync(path.join(TINY, f), path.join(dir, f));
  return dir;
}

describe('lsc web: the runtime in chromium (WebGPU on SwiftShader, puppeteer-core)', function () {
  this.timeout(300_000);
  let browser: Browser;
  let server: WebServer;
  let node: LscModel;
  let page: Page;
  const problems: string[] = [];
  const cleanup: (() => Promise<void> | void)[] = [];

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`no browser at ${CHROMIUM}: this test needs Debian's chromium (LSC_SETUP_BROWSER=1 bash scripts/setup.sh, or apt-get install chromium; LSC_CHROMIUM=path for another)`);
    }
    server = await startWebServer({ model: TINY, port: 0 });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM, headless: true,
      args: ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])],
    });
    // Node on the page's plan: the shared lavapipe device as an adapter without shader-f16 (f32 KV),
    // a CPU driver like SwiftShader (CPU-driver kernels), untuned (the page has no tuning database)
    const gpu = await testGpu();
    node = await LscModel.load(TINY, {
      gpu: { ...gpu, features: new Set([...gpu.features].filter((f) => f !== 'shader-f16')), dispose() { /* shared */ } }, tuned: false,
    });
  });
  after(async () => {
    node?.dispose();
    await browser?.close();
    await server?.close();
    for (const f of cleanup) await f();
  });

  /** A page of a server, with page errors and requests off loopback collected into `problems`. */
  async function open(url: string, setup?: (p: Page) => Promise<unknown>): Promise<Page> {
    const p = await browser.newPage();
    p.on('pageerror', (e) => { problems.push(`page error: ${(e as Error).message}`); });
    p.on('request', (r) => { if (!r.url().startsWith('http://127.0.0.1:')) problems.push(`fetched ${r.url()}`); });
    await setup?.(p);
    await p.goto(url, { waitUntil: 'load' });
    return p;
  }
  /** lsc.ready's outcome: 'ok' or the rejection's message. */
  const readiness = (p: Page): Promise<string> => p.evaluate(() => lsc.ready.then(() => 'ok', (e: Error) => `rejected: ${e.message}`));
  const statusOf = (p: Page): Promise<{ text: string; cls: string }> => p.evaluate(() => {
    const s = document.getElementById('status')!;
    return { text: s.textContent ?? '', cls: s.className };
  });

  it('loads the bundled tiny-code: SwiftShader has no shader-f16, so the f32-KV plan with CPU-driver kernels; the checkpoint arrives by Range requests', async () => {
    page = await open(server.url);
    assert.equal(await readiness(page), 'ok');
    const m = await page.evaluate(() => {
      const model = lsc.model!;
      return {
        features: [...model.gpu.features], arch: model.gpu.adapterInfo.architecture, planFeatures: model.plan.features,
        kv: model.plan.buffers.filter((b) => b.kind === 'kv').map((b) => b.doc), loaded: model.loadedBytes,
        kernels: model.plan.kernels.map((k) => k.id),
      };
    });
    // the same kernels as the Node runtime on an adapter of the same kind (ids name their WGSL's hash)
    assert.deepEqual(m.kernels, node.plan.kernels.map((k) => k.id));
    assert.equal(m.arch, 'swiftshader');
    assert.ok(!m.features.includes('shader-f16'), 'SwiftShader offers no shader-f16');
    assert.ok(!m.planFeatures.includes('shader-f16'));
    assert.ok(m.kv.length === 8 && m.kv.every((d) => d.endsWith('f32')), m.kv.join('; '));
    // every byte of the file exactly once: the header by two ranges, the data in pieces
    assert.deepEqual(m.loaded, { network: fs.statSync(path.join(TINY, 'model.safetensors')).size, cache: 0 });
    assert.match((await statusOf(page)).text, /^Ready: 8 layers .*KV cache f32/);
    assert.deepEqual(problems.splice(0), []);
  });

  prompts.forEach((p, i) => {
    it(`prompt ${i}: greedy tokens in the page equal the Node runtime's (autoregressive, early-exit, self-speculative), and self-speculative equals autoregressive there`, async () => {
      const inPage: Record<string, number[]> = {};
      for (const [name, o] of STRATEGIES) {
        const opts = { ...GREEDY, ...o };
        const web = await page.evaluate((text, opts) => lsc.generate(text, opts), p.text, opts);
        const ref = await node.complete(p.text, opts);
        assert.equal(web.tokens.length, NEW_TOKENS, name);
        assert.deepEqual(web.tokens, ref.tokens, `${name}: page vs Node`);
        assert.equal(web.text, ref.text, `${name}: text`);
        inPage[name] = web.tokens;
        verbose(`${name}: page ${web.stats.tokensPerSecond.toFixed(1)} tok/s (SwiftShader), Node ${ref.stats.tokensPerSecond.toFixed(1)} tok/s (lavapipe)`
          + (web.stats.acceptanceRate === null ? '' : `, acceptance ${web.stats.acceptanceRate.toFixed(2)} / ${ref.stats.acceptanceRate?.toFixed(2)}`));
      }
      assert.deepEqual(inPage['self-speculative E=2 k=3'], inPage.autoregressive);
      assert.deepEqual(inPage['self-speculative E=4 k=2'], inPage.autoregressive);
      assert.deepEqual(problems.splice(0), []);
    });
  });

  it('two generations started at once in the page take turns: each gives its tokens alone (lsc.generate, and the model\'s own generate)', async () => {
    const a = { ...GREEDY, strategy: 'self-speculative' } as const;
    const b = { ...GREEDY, strategy: 'autoregressive' } as const;
    const [wa, wb] = await page.evaluate((pa, oa, pb, ob) => Promise.all([lsc.generate(pa, oa), lsc.generate(pb, ob)]),
      prompts[0].text, a, prompts[1].text, b);
    assert.deepEqual(wa.tokens, (await node.complete(prompts[0].text, a)).tokens);
    assert.deepEqual(wb.tokens, (await node.complete(prompts[1].text, b)).tokens);
    // the model directly (streaming embeddings call it): its queue, not the page API's, keeps them apart
    const [ma, mb] = await page.evaluate((pa, oa, pb, ob) => Promise.all([lsc.model!.complete(pa, oa), lsc.model!.complete(pb, ob)])
      .then((rs) => rs.map((r) => r.tokens)), prompts[0].text, a, prompts[1].text, b);
    assert.deepEqual(ma, wa.tokens);
    assert.deepEqual(mb, wb.tokens);
    assert.deepEqual(problems.splice(0), []);
  });

  it('the page: Generate streams the output and shows tok/s and acceptance (screenshot lsc-web-page.png in the temp dir)', async () => {
    await page.setViewport({ width: 1000, height: 760 });
    await page.evaluate(() => document.getElementById('generate')!.click());
    await page.waitForFunction(() => /tok\/s/.test(document.getElementById('stats')?.textContent ?? ''), { timeout: 120_000 });
    const shown = await page.evaluate(() => ({ out: document.getElementById('output')!.textContent ?? '', stats: document.getElementById('stats')!.textContent ?? '' }));
    const ref = await node.complete(`def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n`, { temperature: 0, maxNewTokens: 64 });
    assert.equal(shown.out, ref.text);
    assert.match(shown.stats, /^\d+ tokens, [\d.]+ tok\/s, acceptance \d+% /);
    await page.screenshot({ path: path.join(os.tmpdir(), 'lsc-web-page.png') });
  });

  it('a reload takes the weights from Cache Storage: nothing is downloaded again', async () => {
    await page.reload({ waitUntil: 'load' });
    assert.equal(await readiness(page), 'ok');
    const loaded = await page.evaluate(() => lsc.model!.loadedBytes);
    assert.deepEqual(loaded, { network: 0, cache: fs.statSync(path.join(TINY, 'model.safetensors')).size });
    await page.close();
  });

  it('examples/browser/index.html (lsc web --page): the embedding streams the same tokens as the Node runtime', async () => {
    const s = await startWebServer({ model: TINY, port: 0, page: path.join(ROOT, 'examples', 'browser', 'index.html') });
    cleanup.push(() => s.close());
    const p = await open(s.url);
    await p.waitForFunction(() => (globalThis as { embedded?: unknown }).embedded !== undefined, { timeout: 120_000 });
    const got = await p.evaluate(() => {
      const r = (globalThis as unknown as { embedded: { tokens: number[]; text: string } }).embedded;
      return { tokens: r.tokens, text: r.text, shown: document.getElementById('out')!.textContent };
    });
    const ref = await node.complete('def fibonacci(n):', { maxNewTokens: 48, strategy: 'self-speculative', temperature: 0 });
    assert.deepEqual(got.tokens, ref.tokens);
    assert.equal(got.shown, ref.text);
    await p.close();
    assert.deepEqual(problems.splice(0), []);
  });

  it('a sharded checkpoint (index + 5 shards, fetched in parallel): the same greedy tokens', async () => {
    const dir = tinyCopy();
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const single = SafetensorsCheckpoint.open(TINY);
    const tensors = [...single.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype, data: single.readAll(t.name, 'f32') as Float32Array }));
    single.close();
    fs.rmSync(path.join(dir, 'model.safetensors'));
    writeShardedSafetensors(dir, tensors, 1 << 20);
    const shards = fs.readdirSync(dir).filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f));
    assert.equal(shards.length, 5);
    const s = await startWebServer({ model: dir, port: 0 });
    cleanup.push(() => s.close());
    const p = await open(s.url);
    assert.equal(await readiness(p), 'ok');
    const loaded = await p.evaluate(() => lsc.model!.loadedBytes);
    assert.deepEqual(loaded, { network: shards.reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0), cache: 0 });
    for (const [name, o] of [STRATEGIES[0], STRATEGIES[2]]) {
      const opts = { ...GREEDY, ...o };
      const web = await p.evaluate((text, opts) => lsc.generate(text, opts), prompts[0].text, opts);
      assert.deepEqual(web.tokens, (await node.complete(prompts[0].text, opts)).tokens, name);
    }
    await p.close();
    assert.deepEqual(problems.splice(0), []);
  });

  it('a port in use: a clear error', async () => {
    await assert.rejects(startWebServer({ model: TINY, port: server.port }),
      (e: Error) => /^port \d+ on 127\.0\.0\.1 is in use$/.test(e.message) && e.name === 'LscError');
  });

  async function expectRejected(p: Page, pattern: RegExp): Promise<void> {
    const ready = await readiness(p);
    assert.match(ready, pattern);
    assert.doesNotMatch(ready, /\n/, 'one line');
    const gen = await p.evaluate(() => lsc.generate('def', { maxNewTokens: 2 }).then(() => 'resolved', (e: Error) => `rejected: ${e.message}`));
    assert.equal(gen, ready, 'generate rejects with the same line');
    const status = await statusOf(p);
    assert.equal(status.cls, 'error');
    assert.equal(status.text, `Cannot load the model: ${ready.replace(/^rejected: /, '')}`);
    await p.close();
    assert.deepEqual(problems.splice(0), [], 'no page errors');
  }

  it('no WebGPU in the browser: a clear rejection and message, not a frozen tab', async () => {
    const p = await open(server.url, (pg) => pg.evaluateOnNewDocument(() => {
      Object.defineProperty(Object.getPrototypeOf(navigator), 'gpu', { get: () => undefined });
    }));
    await expectRejected(p, /^rejected: this browser has no WebGPU \(navigator\.gpu is missing\)\. Fix: use a browser with WebGPU/);
  });

  it('an adapter below the plan\'s limits: a clear rejection', async () => {
    const p = await open(server.url, (pg) => pg.evaluateOnNewDocument(() => {
      // a device that allows 4 storage buffers per stage (the plans use WebGPU's default, 8)
      const proto = (globalThis as unknown as { GPUDevice: { prototype: object } }).GPUDevice.prototype;
      const real = Object.getOwnPropertyDescriptor(proto, 'limits')!.get!;
      Object.defineProperty(proto, 'limits', {
        get(this: object) {
          const l = real.call(this) as Record<string, number>;
          const copy: Record<string, number> = {};
          for (const k in l) copy[k] = l[k];
          return { ...copy, maxStorageBuffersPerShaderStage: 4 };
        },
      });
    }));
    await expectRejected(p, /^rejected: this adapter is below the model's needs: the plan was compiled for maxStorageBuffersPerShaderStage = 8, this adapter allows 4\. Fix: use a browser and GPU whose WebGPU adapter offers at least the default limits/);
  });

  it('lsc web with a bad model directory or port: exit 2, one line', async () => {
    assertUserError(await runInProcess(['web', path.join(os.tmpdir(), 'no-such-model-dir')]), /model directory '.*no-such-model-dir' does not exist/, 'missing model dir');
    assertUserError(await runInProcess(['web', TINY, '--port', '70000']), /--port 70000 is not a port/, 'port out of range');
  });

  it('a weight URL that 404s: a clear rejection naming the file', async () => {
    const dir = tinyCopy();
    const s = await startWebServer({ model: dir, port: 0 });
    cleanup.push(() => s.close(), () => fs.rmSync(dir, { recursive: true, force: true }));
    fs.rmSync(path.join(dir, 'model.safetensors')); // gone after the server started
    await expectRejected(await open(s.url), /^rejected: checkpoint file: HTTP 404 Not Found \(at http:\/\/127\.0\.0\.1:\d+\/model\/model\.safetensors\)\. Fix: the file is not at this URL/);
  });

  it('a truncated checkpoint: a clear rejection before anything is downloaded or allocated', async () => {
    const dir = tinyCopy();
    const s = await startWebServer({ model: dir, port: 0 });
    cleanup.push(() => s.close(), () => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'model.safetensors');
    fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    await expectRejected(await open(s.url), /^rejected: data_offsets \[\d+, \d+\] run past the \d+-byte data region \(at http:\/\/127\.0\.0\.1:\d+\/model\/model\.safetensors tensor '[^']+'\)\. Fix: re-download the checkpoint/);
  });
});
