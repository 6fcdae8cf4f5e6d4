import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { LscModel } from '../runtime/model.js';
import type { GenerateOptions } from '../runtime/generate.js';
import { testGpu } from './helpers/gpu.js';
import { TINY, metric, startServer, type Running } from './helpers/serve.js';

/**
 * Load: 200 greedy requests from 16 concurrent openai clients over mixed prompts, lengths and
 * strategies (autoregressive, self-speculative at two (exit, k), early exit). Every one is
 * answered 200 with exactly its solo greedy text (the library, one request at a time, on the
 * same model); afterwards /metrics shows no active sequence. Prints the figures (BENCHMARKS.md).
 */
const PROMPTS = [
  'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
  'import os\n\nclass Config:\n    def __init__(self, path):\n',
  'for i in range(10):\n',
  'def add(a, b):\n    return',
  '# sort a list\nxs = [3, 1, 2]\n',
  'class Stack:\n    def push(self, x):\n',
  'while True:\n    line = input()\n',
  'print("hello',
];
const LENGTHS = [4, 12, 24];
const STRATEGIES: { name: string; body: Record<string, unknown>; opts: GenerateOptions }[] = [
  { name: 'autoregressive', body: { strategy: 'autoregressive' }, opts: { strategy: 'autoregressive' } },
  { name: 'self-speculative', body: {}, opts: {} },
  { name: 'self-speculative E=4 k=2', body: { strategy: 'self-speculative', exit_layer: 4, num_speculations: 2 }, opts: { strategy: 'self-speculative', exitLayer: 4, numSpeculations: 2 } },
  { name: 'early-exit E=4', body: { strategy: 'early-exit', exit_layer: 4 }, opts: { strategy: 'early-exit', exitLayer: 4 } },
];
const REQUESTS = 200;
const CONCURRENCY = 16;

interface Case { prompt: number; length: number; strategy: number }
const key = (c: Case): string => `${c.prompt}/${c.length}/${c.strategy}`;
/**
 * Request i: one of the 96 (prompt, length, strategy) cases, j ↦ (j mod 8, (j + ⌊j/8⌋) mod 4,
 * ⌊j/32⌋) being one-to-one; j = 37·i mod 96 (37 is prime to 96) so requests in flight together differ.
 */
const CASES = PROMPTS.length * LENGTHS.length * STRATEGIES.length;
function caseOf(i: number): Case {
  const j = (37 * i) % CASES;
  const b = Math.floor(j / PROMPTS.length);
  return { prompt: j % PROMPTS.length, strategy: (j + b) % STRATEGIES.length, length: LENGTHS[Math.floor(b / STRATEGIES.length)] };
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

describe('lsc serve under load', function () {
  this.timeout(300_000);
  let model: LscModel;
  let srv: Running;
  const solo = new Map<string, string>();
  /** The solo runs' throughput (library, one at a time, no HTTP), printed beside the server's. */
  let soloTokens = 0;
  let soloS = 0;

  before(async () => {
    model = await LscModel.load(TINY, { gpu: await testGpu(), sequences: CONCURRENCY });
    const t0 = performance.now();
    for (let i = 0; i < REQUESTS; i++) {
      const c = caseOf(i);
      if (solo.has(key(c))) continue;
      const r = await model.complete(PROMPTS[c.prompt], { ...STRATEGIES[c.strategy].opts, maxNewTokens: c.length });
      solo.set(key(c), r.text);
      soloTokens += r.tokens.length;
    }
    soloS = (performance.now() - t0) / 1000;
    srv = await startServer(model);
  });
  after(async () => {
    await srv?.close();
    model?.dispose();
  });

  it(`${REQUESTS} greedy requests from ${CONCURRENCY} concurrent clients: all answered, each equal to its solo output; no sequence left active`, async () => {
    const client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'none', maxRetries: 0, timeout: 120_000 });
    const latencies: number[] = [];
    const mismatches: string[] = [];
    let tokens = 0;
    let next = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      for (let i = next++; i < REQUESTS; i = next++) {
        const c = caseOf(i);
        const t = performance.now();
        const r = await client.completions.create({ model: 'tiny-code', prompt: PROMPTS[c.prompt], max_tokens: c.length, ...STRATEGIES[c.strategy].body });
        latencies.push(performance.now() - t);
        tokens += r.usage!.completion_tokens;
        if (r.choices[0].text !== solo.get(key(c))) mismatches.push(`request ${i} (${STRATEGIES[c.strategy].name}, ${c.length} tokens): ${JSON.stringify(r.choices[0].text)} != ${JSON.stringify(solo.get(key(c)))}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const wall = (performance.now() - t0) / 1000;
    assert.equal(latencies.length, REQUESTS, 'every request answered');
    assert.deepEqual(mismatches, []);
    assert.equal(await metric(srv.base, 'lsc_active_sequences'), 0);
    assert.equal(await metric(srv.base, 'lsc_queue_depth'), 0);
    assert.equal(await metric(srv.base, 'lsc_kv_bytes_in_use'), 0);
    const sorted = [...latencies].sort((a, b) => a - b);
    assert.equal(solo.size, CASES, 'every case served');
    console.log(`      ${REQUESTS} requests (${solo.size} distinct), concurrency ${CONCURRENCY}, ${wall.toFixed(1)} s wall, ` +
      `${tokens} tokens, ${(tokens / wall).toFixed(1)} tok/s aggregate, latency p50 ${quantile(sorted, 0.5).toFixed(0)} ms p99 ${quantile(sorted, 0.99).toFixed(0)} ms, ` +
      `all ${REQUESTS} outputs equal to solo; peak active sequences ${model.engine?.stats.peakActive}; ` +
      `the ${solo.size} solo runs one at a time in the library: ${(soloTokens / soloS).toFixed(1)} tok/s`);
  });
});
