/**
 * Llama-2-7B geometry on the GPU runtime: hidden 4096, intermediate 11008, 32 heads (32 kv
 * heads), vocab 32000, rms_norm_eps 1e-5, rope_theta 10000, but 2 layers, random F16 weights
 * (1.33 GB; bench/streaming-checkpoint.ts writes them tensor by tensor, piece by piece).
 * What small models cannot show: the embedding and the LM head (32000 × 4096 f16 = 250 MiB each)
 * exceed the 128 MiB storage binding limit, so the plan splits each into row slices of their own
 * buffers; the embed kernel runs one dispatch per slice, the head kernel one dispatch binding
 * every slice; and 4096/11008-long dot
 * products, 128-wide heads and a 32000-way argmax at full size.
 *
 * The yardstick is test/helpers/streaming-llama.ts: the float64 reference of cpu-llama.ts (checked
 * against reference.json in model-reference.test.ts; the two are checked against each other here
 * on a small model) streaming every matrix from the checkpoint, never all weights as float64.
 *
 * Tolerance: LOGIT_TOL = 0.03 on max |Δlogit| over all 32000 logits at every prompt position —
 * the same bound model-features.test.ts justifies for small models. The reference computes in
 * float64 on the stored f16 values; what remains is the runtime's f32 accumulation (relative
 * ~1e-7 · sqrt(11008), negligible) and the f16 KV cache (each K/V rounded, relative ≤ 2^-11),
 * whose error reaches the logits scaled by their size: logit std ≈ 3, |logit| ≤ ~15 here.
 * Measured on this checkpoint: see LSC_TEST_VERBOSE=1 (≈ 2e-3 to 3e-3, i.e. a ≥ 10x margin),
 * while a wrong slice (row offset of the second embedding / head buffer, a skipped dispatch) puts
 * the affected rows O(1..10) off. Greedy: the prompt is chosen so that the reference's greedy
 * path has every top-2 gap ≥ 2·LOGIT_TOL, so the runtime must reproduce it token for token.
 *
 * Time on the 2-core lavapipe machine: ~1 minute (writing 1.33 GB 8 s, load 5 s, the float64
 * reference 20 s, GPU work ~20 s). With a cold Mesa shader cache (a fresh machine, or
 * MESA_SHADER_CACHE_DISABLE=true) add ~2.5 minutes: llvmpipe compiles each kernel at its first
 * dispatch, and the CPU-default attention kernel (attention_lanes, block 8, rows 4) takes ~140 s
 * at head_dim 128. LSC_TEST_VERBOSE=1 prints the breakdown and the peak memory (peak RSS ≈ 1.6 GB
 * warm, 2.0 GB cold, with 1.27 GiB of weights in host memory).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import type { Plan, PlanWeight } from '../compiler/plan.js';
import { LscModel } from '../runtime/model.js';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import { DEFAULT_DRAIN_BYTES, uploadWeights, weightBytes } from '../runtime/weights.js';
import { testGpu } from './helpers/gpu.js';
import { CpuLlama, argmax, maxAbs, maxAbsDiff, top2Gap } from './helpers/cpu-llama.js';
import { SeededRandom, writeRandomModel, type RandomModelConfig } from './helpers/random-model.js';
import { writeStreamedRandomModel, type StreamedModel } from '../bench/streaming-checkpoint.js';
import { StreamingLlama, type StreamingCache } from './helpers/streaming-llama.js';

const LOGIT_TOL = 0.03;
const GREEDY_GAP = 2 * LOGIT_TOL;
const GREEDY_STEPS = 4;
const CTX = 128;
const PREFILL_CHUNK = 16;
const EXIT = 1;
/** Binding limit the slice assertions are about (lavapipe's, and WebGPU's default). */
const BINDING_LIMIT = 128 * 2 ** 20;
const MiB = 2 ** 20;
const verbose = !!process.env.LSC_TEST_VERBOSE;
const log = (s: string): void => { if (verbose) console.log(`      ${s}`); };

const SEVEN_B: RandomModelConfig = {
  hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 2, num_attention_heads: 32, num_key_value_heads: 32,
  vocab_size: 32000, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 4096,
};
const SEED = 7;

function expectRows(actual: Float32Array[], expected: Float64Array[], what: string): number {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} rows, expected ${expected.length}`);
  let worst = 0;
  actual.forEach((row, t) => {
    assert.equal(row.length, expected[t].length, `${what}, position ${t}: ${row.length} logits`);
    const d = maxAbsDiff(row, expected[t]);
    worst = Math.max(worst, d);
    assert.ok(d <= LOGIT_TOL, `${what}, position ${t}: max |Δlogit| = ${d} > ${LOGIT_TOL} (|logits| up to ${maxAbs(expected[t]).toFixed(2)})`);
    if (top2Gap(expected[t]) > 2 * LOGIT_TOL) assert.equal(argmax(row), argmax(expected[t]), `${what}, position ${t}: argmax differs`);
  });
  log(`${what}: max |Δlogit| ${worst.toExponential(2)} over ${actual.length} positions, max |logit| ${Math.max(...expected.map(maxAbs)).toFixed(1)}`);
  return worst;
}

function weight(plan: Plan, hf: string): PlanWeight {
  const w = plan.weights.find((x) => x.hf === hf);
  assert.ok(w, `the plan has no weight ${hf}`);
  return w;
}

/** Samples process memory every 50 ms (async code only: synchronous stretches show in maxRSS). */
class MemorySampler {
  peakRss = 0;
  peakExternal = 0;
  private timer: NodeJS.Timeout | undefined;
  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), 50);
  }
  sample(): void {
    const m = process.memoryUsage();
    this.peakRss = Math.max(this.peakRss, m.rss);
    this.peakExternal = Math.max(this.peakExternal, m.arrayBuffers + m.external);
  }
  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }
}

describe('the streaming float64 reference agrees with CpuLlama (small random model)', function () {
  let tmp: string;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-streamref-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('logits at every position, through every exit, and greedy tokens, to 1e-9', () => {
    const m = writeRandomModel(path.join(tmp, 'm'), {
      hidden_size: 64, intermediate_size: 160, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 300,
    }, { dtype: 'F16', seed: 11 });
    const cpu = new CpuLlama(m.config, m.tensors);
    const ckpt = SafetensorsCheckpoint.open(m.dir);
    try {
      const ref = new StreamingLlama(m.config, ckpt);
      const prompt = new SeededRandom(3).ints(12, 3, 300);
      // prompt in two pieces: the cache carries over
      const cache = ref.newCache();
      const a = ref.extend(cache, prompt.slice(0, 5));
      const b = ref.extend(cache, prompt.slice(5));
      for (let E = 1; E <= 3; E++) {
        const got = ref.head([...a[E - 1], ...b[E - 1]]);
        const want = cpu.forward(prompt, { exitLayer: E });
        got.forEach((row, t) => assert.ok(maxAbsDiff(row, want[t]) < 1e-9, `exit ${E}, position ${t}: ${maxAbsDiff(row, want[t])}`));
      }
      const trace = ref.greedyFrom(cache, b[2][b[2].length - 1], 6);
      assert.deepEqual(trace.tokens, cpu.greedy(prompt, 6));
    } finally {
      ckpt.close();
    }
  });
});

describe('Llama-2-7B geometry (2 layers, vocab 32000, F16) on the GPU runtime', function () {
  this.timeout(900_000);
  let tmp: string;
  let m: StreamedModel;
  let model: LscModel;
  let ckpt: SafetensorsCheckpoint;
  let prompt: number[];
  /** Reference logits at every prompt position: full model and exit EXIT. */
  let refFull: Float64Array[];
  let refExit: Float64Array[];
  let refGreedy: { tokens: number[]; gaps: number[] };
  let autoregressive: number[] | undefined;
  const mem = new MemorySampler();
  /**
   * The process's lifetime peak and resident memory before this file's work: in the full suite
   * earlier tests leave ~1 GiB resident (models loaded on lavapipe keep host memory), so the bound
   * is on what this file adds.
   */
  let maxRssBefore = 0;
  let rssBefore = 0;
  const times: Record<string, number> = {};
  const timed = async <T>(what: string, f: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    times[what] = (performance.now() - t0) / 1000;
    log(`${what}: ${times[what].toFixed(1)} s`);
    return r;
  };

  before(async function () {
    maxRssBefore = process.resourceUsage().maxRSS * 1024;
    rssBefore = process.memoryUsage().rss;
    mem.start();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-7b-'));
    m = await timed('write checkpoint', () => writeStreamedRandomModel(path.join(tmp, 'llama-7b-2l'), SEVEN_B, { dtype: 'F16', seed: SEED }));
    model = await timed('load', async () => LscModel.load(m.dir, { gpu: await testGpu(), ctx: CTX, prefillChunk: PREFILL_CHUNK }));
    // ids around 0, 10000, on both sides of the first embedding slice boundary, 17000 and the last
    const b = weight(model.plan, 'model.embed_tokens.weight').chunks[1]?.rowStart ?? 16384;
    prompt = [5, 10000, b - 1, b, 17000, SEVEN_B.vocab_size - 1];
    ckpt = SafetensorsCheckpoint.open(m.dir);
    const ref = new StreamingLlama(m.config, ckpt);
    const cache: StreamingCache = ref.newCache();
    await timed('reference forward + greedy', () => {
      const hidden = ref.extend(cache, prompt);
      const logits = ref.head([...hidden[SEVEN_B.num_hidden_layers - 1], ...hidden[EXIT - 1]]);
      refFull = logits.slice(0, prompt.length);
      refExit = logits.slice(prompt.length);
      const last = hidden[SEVEN_B.num_hidden_layers - 1][prompt.length - 1];
      // the first greedy token comes from refFull's last row; greedyFrom recomputes it (one head pass, ~1 s)
      refGreedy = ref.greedyFrom(cache, last, GREEDY_STEPS);
    });
    mem.sample();
  });

  after(function () {
    mem.stop();
    model?.dispose();
    ckpt?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    const maxRss = process.resourceUsage().maxRSS * 1024;
    log(`peak RSS ${(maxRss / MiB).toFixed(0)} MiB (sampled ${(mem.peakRss / MiB).toFixed(0)} MiB), `
      + `peak arrayBuffers+external ${(mem.peakExternal / MiB).toFixed(0)} MiB; times ${JSON.stringify(times)}`);
  });

  it('writes the 7B-geometry checkpoint (1.33 GB of F16)', () => {
    assert.equal(m.tensorBytes, 2 * (2 * 32000 * 4096 + 2 * (4 * 4096 * 4096 + 3 * 4096 * 11008) + (2 * 2 * 4096 + 4096)));
  });

  it('splits the embedding and the LM head into ≥ 2 buffers under the binding limit: one embed dispatch per slice, one LM-head dispatch over all', () => {
    const plan = model.plan;
    assert.ok(plan.limits.maxStorageBufferBindingSize <= BINDING_LIMIT,
      `the adapter allows ${plan.limits.maxStorageBufferBindingSize}-byte bindings: nothing needs splitting`);
    const sizes = new Map(plan.buffers.map((x) => [x.id, x.bytes]));
    for (const hf of ['model.embed_tokens.weight', 'lm_head.weight']) {
      const w = weight(plan, hf);
      assert.ok(!w.tiedTo);
      assert.ok(w.chunks.length >= 2, `${hf}: ${w.chunks.length} buffer(s)`);
      // the slices tile the rows, each within the binding limit
      let next = 0;
      for (const ch of w.chunks) {
        assert.equal(ch.rowStart, next, `${hf}: slices must tile the rows`);
        next += ch.rowCount;
        assert.equal(sizes.get(ch.buffer), ch.rowCount * 4096 * 2, `${hf} slice ${ch.buffer}: bytes`);
        assert.ok(sizes.get(ch.buffer)! <= plan.limits.maxStorageBufferBindingSize, `${hf} slice ${ch.buffer} exceeds the binding limit`);
      }
      assert.equal(next, 32000);
      // every stage that reads the embedding dispatches once per slice, each binding exactly one
      // slice; the LM head is one dispatch binding every slice (the final norm computed once)
      const slices = new Set(w.chunks.map((c) => c.buffer));
      let stages = 0;
      for (const e of plan.entries) {
        for (const st of e.stages) {
          const uses = st.dispatches.filter((disp) => disp.buffers.some((id) => slices.has(id)));
          if (!uses.length) continue;
          stages++;
          const bound = uses.map((disp) => disp.buffers.filter((id) => slices.has(id)));
          if (hf === 'lm_head.weight') {
            assert.equal(uses.length, 1, `${e.name}/${st.name}: ${uses.length} dispatches read ${hf}`);
            assert.deepEqual(bound[0], w.chunks.map((c) => c.buffer), `${e.name}/${st.name}: the head binds every ${hf} slice in order`);
            continue;
          }
          assert.ok(bound.every((ids) => ids.length === 1), `${e.name}/${st.name}: a dispatch binds several ${hf} slices`);
          assert.deepEqual(bound.map((ids) => ids[0]).sort(), [...slices].sort(), `${e.name}/${st.name}: one dispatch per ${hf} slice`);
          assert.equal(new Set(uses.map((disp) => disp.params.join())).size, uses.length, `${e.name}/${st.name}: slices dispatched with the same params`);
        }
      }
      assert.ok(stages >= 2, `${hf} is read in only ${stages} stage(s)`);
      log(`${hf}: ${w.chunks.length} slices (${w.chunks.map((c) => `${c.rowStart}+${c.rowCount}`).join(', ')}), read in ${stages} stages`);
    }
    // the prompt's ids lie in both embedding slices
    const b = weight(plan, 'model.embed_tokens.weight').chunks[1].rowStart;
    assert.ok(prompt.some((t) => t < b) && prompt.some((t) => t >= b));
  });

  it('logits at every prompt position match the float64 reference (full model)', async () => {
    const rows = await timed('gpu logits (all positions)', () => model.logits(prompt, { allPositions: true }));
    // all 32000 logits: rows of both LM-head slices
    expectRows(rows, refFull, 'full model');
  });

  it(`early-exit logits (exit ${EXIT}) at every prompt position match the reference's exit ${EXIT}`, async () => {
    const rows = await timed('gpu exit logits (all positions)', () => model.logits(prompt, { allPositions: true, exitLayer: EXIT }));
    expectRows(rows, refExit, `exit ${EXIT}`);
  });

  it(`${GREEDY_STEPS} greedy tokens equal the reference's`, async () => {
    assert.equal(refGreedy.tokens[0], argmax(refFull[refFull.length - 1]));
    const minGap = Math.min(...refGreedy.gaps);
    assert.ok(minGap >= GREEDY_GAP, `precondition: the reference's greedy path has a top-2 gap of ${minGap} < ${GREEDY_GAP}; change SEED or the prompt`);
    log(`reference greedy ${JSON.stringify(refGreedy.tokens)}, top-2 gaps ${refGreedy.gaps.map((g) => g.toFixed(2)).join(' ')}`);
    const r = await timed('gpu greedy', () => model.complete(prompt, { maxNewTokens: GREEDY_STEPS, strategy: 'autoregressive', temperature: 0, stopAtEos: false }));
    assert.deepEqual(r.tokens, refGreedy.tokens);
    autoregressive = r.tokens;
  });

  for (const k of [2, 3]) {
    it(`greedy self-speculative decoding (exit ${EXIT}, k ${k}) yields exactly the autoregressive tokens`, async () => {
      assert.ok(autoregressive, 'needs the greedy test');
      const r = await timed(`gpu self-speculative k=${k}`, () => model.complete(prompt, {
        maxNewTokens: GREEDY_STEPS, strategy: 'self-speculative', exitLayer: EXIT, numSpeculations: k, temperature: 0, stopAtEos: false,
      }));
      assert.deepEqual(r.tokens, autoregressive);
      assert.ok(r.stats.draftedTokens > 0, 'no drafts');
    });
  }

  it('memory stays bounded: peak RSS grows by at most the GPU weights (host memory on lavapipe) + 1 GiB', () => {
    // maxRSS is the process's lifetime peak: it is this file's peak when its work raised it,
    // else that peak lies below an earlier test's and the 50 ms samples are the measure
    const maxRss = process.resourceUsage().maxRSS * 1024;
    const peak = maxRss > maxRssBefore ? maxRss : mem.peakRss;
    const grew = peak - rssBefore;
    const w = weightBytes(model.plan);
    assert.ok(grew <= w + 2 ** 30, `peak RSS grew by ${(grew / MiB).toFixed(0)} MiB with ${(w / MiB).toFixed(0)} MiB of weights `
      + `(peak ${(peak / MiB).toFixed(0)} MiB, ${(rssBefore / MiB).toFixed(0)} MiB resident before this file)`);
  });

  describe('uploadWeights: fail early, bounded staging', () => {
    it('a CPU adapter without enough free host memory fails before creating a buffer, naming both figures', async () => {
      let created = 0;
      const device = { createBuffer: () => { created++; throw new Error('must not allocate'); } } as unknown as GPUDevice;
      const w = weightBytes(model.plan);
      await assert.rejects(uploadWeights(device, model.plan, ckpt, undefined, {
        adapterInfo: { vendor: 'mesa', architecture: 'software', description: 'llvmpipe: Mesa' },
        freeHostBytes: () => 1024 * MiB,
      }), (e: unknown) => {
        assert.ok(e instanceof LscError, String(e));
        assert.match(e.message, new RegExp(`weights need ${w} bytes`));
        assert.match(e.message, new RegExp(`only ${1024 * MiB} bytes \\(1\\.00 GiB\\) are free`));
        assert.match(e.message, /llvmpipe/);
        return true;
      });
      assert.equal(created, 0);
      // through model.ts, which passes no adapter info: detected from the device itself
      const gpu = await testGpu();
      if (gpu.isCpu) {
        const counting = new Proxy(gpu.device, {
          get: (t, k) => (k === 'createBuffer' ? () => { created++; throw new Error('must not allocate'); } : Reflect.get(t, k, t)),
        });
        await assert.rejects(uploadWeights(counting, model.plan, ckpt, undefined, { freeHostBytes: () => 1024 * MiB }),
          (e: unknown) => e instanceof LscError && /weights need .* only 1073741824 bytes .*CPU driver/.test(e.message));
        assert.equal(created, 0);
      }
    });

    it('an out-of-memory error while creating the buffers destroys them all and fails before writing', async () => {
      const scopes: string[] = [];
      const made: { destroyed: boolean }[] = [];
      let writes = 0;
      const device = {
        pushErrorScope: (f: string) => { scopes.push(f); },
        popErrorScope: async () => (scopes.pop() === 'out-of-memory' ? { message: 'fake: not enough device memory' } : null),
        createBuffer: () => { const b = { destroyed: false, destroy() { b.destroyed = true; } }; made.push(b); return b; },
        queue: { writeBuffer: () => { writes++; }, onSubmittedWorkDone: async () => undefined },
      } as unknown as GPUDevice;
      await assert.rejects(uploadWeights(device, model.plan, ckpt, undefined, { adapterInfo: { vendor: 'nvidia', architecture: 'ampere', description: 'fake' } }),
        (e: unknown) => {
          assert.ok(e instanceof LscError, String(e));
          assert.match(e.message, new RegExp(`weights need ${weightBytes(model.plan)} bytes`));
          assert.match(e.message, /could not allocate them/);
          assert.match(e.hint ?? '', /more memory|smaller model/);
          return true;
        });
      assert.equal(made.length, model.plan.buffers.filter((x) => x.kind === 'weight').length);
      assert.ok(made.every((x) => x.destroyed), 'every created buffer is destroyed');
      assert.equal(writes, 0);
      assert.equal(scopes.length, 0, 'error scopes balanced');
    });

    it(`waits for the queue after every ~${DEFAULT_DRAIN_BYTES / MiB} MiB of writes (1.33 GB through a counting device)`, async () => {
      let pending = 0, worst = 0, drains = 0, written = 0;
      const bufs = new Map<unknown, number>();
      const device = {
        pushErrorScope: () => undefined,
        popErrorScope: async () => null,
        createBuffer: (desc: GPUBufferDescriptor) => { const b = { destroy() {} }; bufs.set(b, desc.size); return b; },
        queue: {
          writeBuffer: (buf: unknown, offset: number, data: Uint8Array) => {
            assert.ok(offset % 4 === 0 && data.byteLength % 4 === 0 && offset + data.byteLength <= bufs.get(buf)!);
            pending += data.byteLength;
            written += data.byteLength;
            worst = Math.max(worst, pending);
          },
          onSubmittedWorkDone: async () => { drains++; pending = 0; },
        },
      } as unknown as GPUDevice;
      const t0 = performance.now();
      await uploadWeights(device, model.plan, ckpt, undefined, { adapterInfo: { description: 'fake' } });
      log(`counting upload: ${(written / MiB).toFixed(0)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${drains} drains, `
        + `at most ${(worst / MiB).toFixed(0)} MiB between drains`);
      assert.equal(written, weightBytes(model.plan));
      assert.ok(worst <= DEFAULT_DRAIN_BYTES + 64 * MiB, `${worst} bytes written between two waits`);
      assert.ok(drains >= Math.floor(written / (DEFAULT_DRAIN_BYTES + 64 * MiB)));
    });
  });
});
