/**
 * A GPU benchmark to run where a real GPU is lent: Llama-2-7B's geometry (32 layers by default)
 * with random weights generated on the GPU (nothing uploaded but the norm vectors), decoded at
 * f16, q8_0 and q4_0. Per format: autoregressive and greedy self-speculative decode tok/s (the
 * random model's acceptance is whatever it is: the cost ratios are the portable figures), the
 * draft-step / decode-step and verify(k+1) / decode-step cost ratios, and the effective weight
 * bandwidth (matrix bytes read per decode step / step time) next to the adapter's measured
 * buffer-copy bandwidth. One table at the end. NVIDIA's Vulkan driver exposes shader-f16 only
 * with Dawn's vulkan_enable_f16_on_nvidia toggle, which runtime/device.ts always passes; the
 * table says whether the adapter has it.
 *
 *   bench/gpu.sh [--layers 32] [--formats f16,q8,q4] [--tokens 64] [--exit-layer 8] [--k 3] [--ctx 1024]
 *
 * On this 2-core lavapipe machine, `bench/gpu.sh --layers 2 --tokens 8` proves it runs.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { buildLlamaGraph } from '../compiler/builder/llama.js';
import { parseLlamaConfig } from '../compiler/builder/hf-config.js';
import { compileGraph } from '../compiler/compile.js';
import { WEIGHT_CHOICES, type MatrixFormat } from '../compiler/ir/weight-formats.js';
import type { Plan } from '../compiler/plan.js';
import { openDevice, planLimits, type GpuContext } from '../runtime/device.js';
import { Executor } from '../runtime/executor.js';
import { Steps } from '../runtime/steps.js';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '32' },
    formats: { type: 'string', default: 'f16,q8,q4' },
    tokens: { type: 'string', default: '64' },
    'exit-layer': { type: 'string' },
    k: { type: 'string', default: '3' },
    ctx: { type: 'string', default: '1024' },
    json: { type: 'boolean', default: false },
  },
});
const layers = Number(values.layers);
const nTokens = Number(values.tokens);
const k = Number(values.k);
const formats = values.formats.split(',').map((f) => {
  const m = WEIGHT_CHOICES[f];
  if (!m) throw new Error(`--formats: ${f} is not one of ${Object.keys(WEIGHT_CHOICES).join(', ')}`);
  return m;
});
const log = (s: string): void => { process.stderr.write(`${s}\n`); };

const graphFile = new URL('../../graphs/llama2-7b.json', import.meta.url);
const hf = (JSON.parse(fs.readFileSync(graphFile, 'utf8')) as { source: { hfConfig: Record<string, unknown> } }).source.hfConfig;
const config = parseLlamaConfig({ ...hf, num_hidden_layers: layers }, 'graphs/llama2-7b.json');
const graph = buildLlamaGraph(config, { name: `llama2-7b-geometry-${layers}-layers`, ctx: Number(values.ctx) });
const exitLayer = values['exit-layer'] ? Number(values['exit-layer']) : graph.defaults.exitLayer;

/** Fills a buffer with small random f16 pairs (valid f16 weights, Q8_0/Q4_0 quants, and f16 scales alike). */
const FILL_WGSL = `
@group(0) @binding(0) var<storage, read_write> w: array<u32>;
@group(0) @binding(1) var<uniform> p: vec2<u32>;
fn hash(x: u32) -> u32 {
  var h = x * 747796405u + 2891336453u;
  h = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u;
  return (h >> 22u) ^ h;
}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = g.y * n.x * 256u + g.x;
  if (i >= p.x) { return; }
  let h = hash(i ^ p.y);
  let a = (f32(h & 0xffffu) / 65535.0 - 0.5) * 0.004;
  let b = (f32(h >> 16u) / 65535.0 - 0.5) * 0.004;
  w[i] = pack2x16float(vec2<f32>(a, b));
}`;

function randomWeights(gpu: GpuContext, plan: Plan): Map<string, GPUBuffer> {
  const d = gpu.device;
  const module = d.createShaderModule({ code: FILL_WGSL });
  const pipeline = d.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const sizes = new Map(plan.buffers.map((b) => [b.id, b.bytes]));
  const out = new Map<string, GPUBuffer>();
  const enc = d.createCommandEncoder();
  let seed = 1;
  for (const w of plan.weights) {
    if (w.tiedTo) continue;
    for (const ch of w.chunks) {
      const bytes = Math.ceil(sizes.get(ch.buffer)! / 4) * 4;
      const buf = d.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: ch.buffer });
      out.set(ch.buffer, buf);
      if (w.gpuDtype === 'f32') {
        d.queue.writeBuffer(buf, 0, new Float32Array(bytes / 4).fill(1)); // norm weights
        continue;
      }
      const words = bytes / 4;
      const params = d.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      d.queue.writeBuffer(params, 0, new Uint32Array([words, seed++ * 0x9e3779b9 >>> 0, 0, 0]));
      const bind = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }, { binding: 1, resource: { buffer: params } }] });
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      const groups = Math.ceil(words / 256);
      const x = Math.min(groups, 65535);
      pass.dispatchWorkgroups(x, Math.ceil(groups / x));
      pass.end();
    }
  }
  d.queue.submit([enc.finish()]);
  return out;
}

/** Buffer-to-buffer copy bandwidth (bytes read + written per second), the adapter's practical ceiling. */
async function copyBandwidth(gpu: GpuContext): Promise<number> {
  const d = gpu.device;
  const bytes = Math.min(256 << 20, gpu.limits.maxBufferSize) & ~3;
  const a = d.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const b = d.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const run = async (n: number): Promise<number> => {
    const t0 = performance.now();
    const enc = d.createCommandEncoder();
    for (let i = 0; i < n; i++) enc.copyBufferToBuffer(i % 2 ? b : a, 0, i % 2 ? a : b, 0, bytes);
    d.queue.submit([enc.finish()]);
    await d.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await run(2);
  const n = gpu.isCpu ? 4 : 40;
  const ms = await run(n);
  a.destroy();
  b.destroy();
  return (2 * bytes * n) / (ms / 1000);
}

interface Row {
  format: MatrixFormat;
  weightBytes: number;
  matrixBytes: number;
  arTokPerS: number;
  ssTokPerS: number;
  acceptance: number;
  draftOverDecode: number;
  verifyOverDecode: number;
  effectiveBandwidth: number;
}

async function time(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

const gpu = await openDevice();
const info = gpu.adapterInfo;
log(`adapter: ${info.description || info.device || info.vendor} (${info.vendor} ${info.architecture}); shader-f16: ${gpu.features.has('shader-f16')}; ${layers} layers, E=${exitLayer}, k=${k}`);
const copyBw = await copyBandwidth(gpu);
log(`copy bandwidth ${(copyBw / 1e9).toFixed(1)} GB/s`);
const rows: Row[] = [];
const prompt = Array.from({ length: 16 }, (_, i) => 100 + i * 37);
for (const format of formats) {
  const t0 = performance.now();
  const { plan, wgsl } = compileGraph(graph, { weights: format, limits: planLimits(gpu), target: gpu.isCpu ? 'cpu' : 'gpu' });
  const weights = randomWeights(gpu, plan);
  const ex = await Executor.create(gpu, plan, wgsl, weights);
  const steps = new Steps(ex);
  try {
    const weightBytes = plan.buffers.filter((b) => b.kind === 'weight').reduce((a, b) => a + b.bytes, 0);
    // a decode step reads every matrix once; the embedding only one row
    const embed = plan.weights.find((w) => w.hf === 'model.embed_tokens.weight')!;
    const embedBytes = embed.chunks.reduce((a, c) => a + plan.buffers.find((b) => b.id === c.buffer)!.bytes, 0);
    const matrixBytes = weightBytes - embedBytes;
    let { next } = await steps.prefill(prompt, {});
    let p = prompt.length;
    // warm-up: pipelines, first submissions
    await steps.greedySteps(next, p, 2);
    await steps.greedySteps(next, p, 2, exitLayer);
    await steps.verifyLogits(Array(k + 1).fill(next), p, exitLayer);
    await steps.greedyRounds(next, p, k, exitLayer, 1);
    const arMs = await time(() => steps.greedySteps(next, p, nTokens));
    const draftMs = await time(() => steps.greedySteps(next, p, nTokens, exitLayer));
    const reps = Math.max(2, Math.floor(nTokens / (k + 1)));
    const verifyMs = await time(async () => { for (let i = 0; i < reps; i++) await steps.verifyLogits(Array(k + 1).fill(next), p, exitLayer); });
    const decodeStep = arMs / nTokens;
    // self-speculative: chained greedy rounds until nTokens are out
    let emitted = 0;
    let drafted = 0;
    let accepted = 0;
    const ssMs = await time(async () => {
      while (emitted < nTokens) {
        const R = Math.max(1, Math.min(steps.maxChainedRounds(exitLayer, k), Math.ceil((nTokens - emitted) / (k + 1))));
        const { rounds } = await steps.greedyRounds(next, p, k, exitLayer, R);
        for (const r of rounds) {
          emitted += r.length;
          drafted += k;
          accepted += r.length - 1;
          p += r.length;
          next = r[r.length - 1];
        }
      }
    });
    rows.push({
      format, weightBytes, matrixBytes, arTokPerS: nTokens / (arMs / 1000), ssTokPerS: emitted / (ssMs / 1000), acceptance: accepted / drafted,
      draftOverDecode: draftMs / nTokens / decodeStep, verifyOverDecode: verifyMs / reps / decodeStep,
      effectiveBandwidth: matrixBytes / (decodeStep / 1000),
    });
    log(`${format}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    ex.destroy(); // and the weights it owns
  }
}
gpu.dispose();

if (values.json) {
  process.stdout.write(JSON.stringify({ adapter: info, shaderF16: gpu.features.has('shader-f16'), layers, exitLayer, k, tokens: nTokens, copyBandwidth: copyBw, rows }, null, 2) + '\n');
} else {
  const gb = (b: number): string => (b / 1e9).toFixed(2);
  console.log(`Llama-2-7B geometry, ${layers} layers, random weights; ${nTokens} greedy tokens; SS at E=${exitLayer}, k=${k}; copy bandwidth ${gb(copyBw)} GB/s`);
  console.log('| weights | GB | AR tok/s | SS tok/s (acceptance) | draft/decode | verify(k+1)/decode | effective weight GB/s | of copy |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.format} | ${gb(r.weightBytes)} | ${r.arTokPerS.toFixed(1)} | ${r.ssTokPerS.toFixed(1)} (${(100 * r.acceptance).toFixed(0)}%) | ${r.draftOverDecode.toFixed(3)} | `
      + `${r.verifyOverDecode.toFixed(2)} | ${gb(r.effectiveBandwidth)} | ${(100 * r.effectiveBandwidth / copyBw).toFixed(0)}% |`);
  }
}
