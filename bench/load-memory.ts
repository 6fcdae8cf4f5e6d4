/**
 * Host memory of loading a multi-GB checkpoint.
 *
 *   node dist/bench/load-memory.js [--gb 2] [--shards 4] [--dtype BF16|F16|F32] [--ctx 128] [--keep DIR] [--no-loader-only] [--weights f16|q8|q4]
 *
 * Writes a random checkpoint with Llama-2-7B dimensions (hidden 4096, intermediate 11008, 32
 * heads, vocab 32000) and as many layers as make about --gb GB, BF16 by default so the BF16 → f16
 * conversion runs, in --shards shards (or more: shards hold whole tensors). Then:
 *
 *  1. loader only: uploadWeights into a device that counts and drops the writes, so only the
 *     loader's own memory shows (read pieces, conversion, JS-side buffers);
 *  2. LscModel.load on the real adapter, sampling process.memoryUsage() every 50 ms and after
 *     every written block (onProgress; the upload is synchronous between queue waits, so a timer
 *     alone would miss its peaks), and process.resourceUsage().maxRSS (the kernel's high-water
 *     mark) for the true peak RSS.
 *
 * On a CPU adapter (lavapipe) GPU buffers are host memory, so peak RSS − GPU weight bytes −
 * the RSS before loading is the loader's and the driver's own overhead (staging copies in flight).
 * --no-loader-only skips step 1, so the process's RSS before the real load is not inflated by it.
 * --keep DIR writes the checkpoint there and keeps it (a later run with the same --keep, --gb,
 * --dtype and --shards, or with --keep DIR and none of those three, reuses it); otherwise it goes
 * to a temporary directory, deleted at the end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LscModel } from '../runtime/model.js';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import { uploadWeights, weightBytes, DEFAULT_DRAIN_BYTES } from '../runtime/weights.js';
import { compileGraph } from '../compiler/compile.js';
import { modelGraph } from '../runtime/model-dir.js';
import { openDevice } from '../runtime/device.js';
import { randomLlamaTensors, streamTensorBytes, writeStreamedRandomModel, type StreamDType } from './streaming-checkpoint.js';
import type { LlamaConfigJson } from './llama-checkpoint.js';
import { WEIGHT_CHOICES, type MatrixFormat } from '../compiler/ir/weight-formats.js';

const MiB = 2 ** 20;

interface Args {
  gb: number; shards: number; dtype: StreamDType; ctx: number; keep?: string; loaderOnly: boolean; weights?: MatrixFormat;
  /** --gb, --shards or --dtype given: a kept checkpoint of another shape is rewritten. */
  shaped: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { gb: 2, shards: 4, dtype: 'BF16', ctx: 128, loaderOnly: true, shaped: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    const need = (): string => {
      if (v === undefined) throw new Error(`${k} needs a value`);
      i++;
      return v;
    };
    if (k === '--gb' || k === '--shards' || k === '--dtype') a.shaped = true;
    if (k === '--gb') a.gb = Number(need());
    else if (k === '--shards') a.shards = Number(need());
    else if (k === '--ctx') a.ctx = Number(need());
    else if (k === '--dtype') a.dtype = need().toUpperCase() as StreamDType;
    else if (k === '--keep') a.keep = need();
    else if (k === '--no-loader-only') a.loaderOnly = false;
    else if (k === '--weights') {
      a.weights = WEIGHT_CHOICES[need()];
      if (!a.weights) throw new Error(`--weights ${v} is not one of ${Object.keys(WEIGHT_CHOICES).join(', ')}`);
    }
    else if (k === '--help' || k === '-h') {
      console.log('usage: node dist/bench/load-memory.js [--gb 2] [--shards 4] [--dtype BF16|F16|F32] [--ctx 128] [--keep DIR] [--no-loader-only] [--weights f16|q8|q4]');
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  }
  if (!(a.gb > 0) || !Number.isInteger(a.shards) || a.shards < 1 || !['BF16', 'F16', 'F32'].includes(a.dtype) || !(a.ctx >= 16)) {
    throw new Error(`bad arguments ${JSON.stringify(a)}`);
  }
  return a;
}

class Peaks {
  rss = 0;
  external = 0;
  arrayBuffers = 0;
  heapUsed = 0;
  samples = 0;
  sample = (): void => {
    const m = process.memoryUsage();
    this.samples++;
    this.rss = Math.max(this.rss, m.rss);
    this.external = Math.max(this.external, m.arrayBuffers + m.external);
    this.arrayBuffers = Math.max(this.arrayBuffers, m.arrayBuffers);
    this.heapUsed = Math.max(this.heapUsed, m.heapUsed);
  };
  private timer?: NodeJS.Timeout;
  start(): this { this.sample(); this.timer = setInterval(this.sample, 50); return this; }
  stop(): this { clearInterval(this.timer); this.sample(); return this; }
}

const maxRss = (): number => process.resourceUsage().maxRSS * 1024;
const mib = (b: number): string => `${(b / MiB).toFixed(0)} MiB`;

/** A device that checks and counts writes and drops the data: the loader's memory alone. */
function countingDevice(): { device: GPUDevice; written: () => number; worstBetweenDrains: () => number } {
  let written = 0, pending = 0, worst = 0;
  const device = {
    pushErrorScope: () => undefined,
    popErrorScope: async () => null,
    createBuffer: (d: GPUBufferDescriptor) => ({ size: d.size, destroy() {} }),
    queue: {
      writeBuffer: (_b: unknown, _o: number, data: Uint8Array) => {
        written += data.byteLength;
        pending += data.byteLength;
        worst = Math.max(worst, pending);
      },
      onSubmittedWorkDone: async () => { pending = 0; },
    },
  } as unknown as GPUDevice;
  return { device, written: () => written, worstBetweenDrains: () => worst };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // --keep DIR alone reuses whatever checkpoint DIR holds rather than rewriting it at the defaults
  const keptStamp = args.keep && !args.shaped && fs.existsSync(path.join(args.keep, 'load-memory.json'))
    ? JSON.parse(fs.readFileSync(path.join(args.keep, 'load-memory.json'), 'utf8')) as { config: LlamaConfigJson; dtype: StreamDType; shardBytes: number }
    : undefined;
  if (keptStamp) args.dtype = keptStamp.dtype;
  const base: LlamaConfigJson = {
    hidden_size: 4096, intermediate_size: 11008, num_hidden_layers: 1, num_attention_heads: 32, num_key_value_heads: 32,
    vocab_size: 32000, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 4096,
  };
  const bytesOf = (c: LlamaConfigJson): number => randomLlamaTensors(c, { dtype: args.dtype, seed: 1 }).reduce((a, t) => a + streamTensorBytes(t), 0);
  const perLayer = bytesOf({ ...base, num_hidden_layers: 2 }) - bytesOf(base);
  const fixed = bytesOf(base) - perLayer;
  const layers = keptStamp?.config.num_hidden_layers ?? Math.max(2, Math.round((args.gb * 1e9 - fixed) / perLayer));
  const config = keptStamp?.config ?? { ...base, num_hidden_layers: layers };
  const total = bytesOf(config);
  const shardBytes = keptStamp?.shardBytes ?? Math.ceil(total / args.shards);

  const dir = args.keep ? path.resolve(args.keep) : fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-load-memory-'));
  const stamp = path.join(dir, 'load-memory.json');
  const want = JSON.stringify({ config, dtype: args.dtype, shardBytes });
  const rssStart = process.memoryUsage().rss;
  try {
    let t0 = performance.now();
    if (args.keep && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want) {
      console.log(`reusing the checkpoint in ${dir}`);
    } else {
      fs.rmSync(dir, { recursive: true, force: true });
      console.log(`writing ${(total / 1e9).toFixed(2)} GB (${layers} layers of Llama-7B dims, ${args.dtype}) to ${dir} ...`);
      writeStreamedRandomModel(dir, config, { dtype: args.dtype, seed: 1, shardBytes });
      fs.writeFileSync(stamp, want);
      console.log(`  written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const shards = fs.readdirSync(dir).filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f)).length;
    const rssBefore = process.memoryUsage().rss;

    // 1. loader only: the plan LscModel.load would build, uploaded into a counting device
    // (the device is opened first, for its limits: the same weight slices as the real load)
    const gpu = await openDevice();
    const { graph } = modelGraph(dir);
    const { plan } = compileGraph(graph, { ctx: args.ctx, prefillChunk: 16, limits: gpu.limits, weights: args.weights });
    const gpuWeights = weightBytes(plan);
    const fake = countingDevice();
    const ckpt = SafetensorsCheckpoint.open(dir);
    const p1 = new Peaks().start();
    t0 = performance.now();
    if (args.loaderOnly) await uploadWeights(fake.device, plan, ckpt, () => p1.sample(), { isCpu: false });
    const fakeSeconds = (performance.now() - t0) / 1000;
    p1.stop();
    ckpt.close();
    const loaderMaxRss = maxRss();
    global.gc?.();
    const rssBeforeLoad = process.memoryUsage().rss;

    // 2. the real thing
    const p2 = new Peaks().start();
    t0 = performance.now();
    const model = await LscModel.load(dir, { gpu, ctx: args.ctx, prefillChunk: 16, weights: args.weights, onProgress: () => p2.sample() });
    const loadSeconds = (performance.now() - t0) / 1000;
    p2.stop();
    const realMaxRss = maxRss();
    const rssAfterLoad = process.memoryUsage().rss;
    const adapter = model.gpu.adapterInfo.description || model.gpu.adapterInfo.device;
    const modelWeights = model.gpuBytes.weights;
    const gpuTotal = model.gpuBytes.total;
    model.dispose();
    gpu.dispose();

    const fig = {
      adapter,
      checkpointBytes: total,
      dtype: args.dtype,
      layers,
      shards,
      gpuWeightBytes: modelWeights,
      gpuTotalBytes: gpuTotal,
      drainBytes: DEFAULT_DRAIN_BYTES,
      rssStart,
      rssBeforeLoad,
      loaderOnly: !args.loaderOnly ? null : {
        seconds: +fakeSeconds.toFixed(2),
        bytesWritten: fake.written(),
        worstBytesBetweenDrains: fake.worstBetweenDrains(),
        peakRss: p1.rss,
        peakRssAboveStart: p1.rss - rssBefore,
        peakArrayBuffersPlusExternal: p1.external,
        peakArrayBuffers: p1.arrayBuffers,
        peakHeapUsed: p1.heapUsed,
        maxRss: loaderMaxRss,
      },
      load: {
        seconds: +loadSeconds.toFixed(2),
        peakRss: realMaxRss,
        peakRssSampled: p2.rss,
        rssAfterLoad,
        peakArrayBuffersPlusExternal: p2.external,
        peakArrayBuffers: p2.arrayBuffers,
        peakHeapUsed: p2.heapUsed,
        peakRssMinusGpuWeights: realMaxRss - modelWeights,
        peakRssMinusGpuWeightsMinusBaseline: realMaxRss - modelWeights - rssBeforeLoad,
        peakRssMinusGpuTotalMinusBaseline: realMaxRss - gpuTotal - rssBeforeLoad,
        samples: p2.samples,
      },
    };
    if (gpuWeights !== modelWeights) console.log(`note: loader-only plan has ${gpuWeights} weight bytes, the model ${modelWeights}`);

    const rows: [string, string][] = [
      ['adapter', adapter],
      ['checkpoint', `${(total / 1e9).toFixed(2)} GB ${args.dtype}, ${layers} layers, ${shards} shards`],
      ['GPU weight bytes', `${modelWeights} (${mib(modelWeights)}); all GPU buffers ${mib(gpuTotal)}`],
      ['RSS before load', mib(rssBeforeLoad)],
      ...(!args.loaderOnly ? [] : [
        ['loader only (counting device)', `${fakeSeconds.toFixed(1)} s, ${(fake.written() / 1e9 / fakeSeconds).toFixed(2)} GB/s; ≤ ${mib(fake.worstBetweenDrains())} between queue waits`],
        ['  peak RSS', `${mib(p1.rss)} (+${mib(p1.rss - rssBefore)} over the RSS before it)`],
        ['  peak arrayBuffers+external', mib(p1.external)],
      ] as [string, string][]),
      ['LscModel.load (real adapter)', `${loadSeconds.toFixed(1)} s, ${(modelWeights / 1e9 / loadSeconds).toFixed(2)} GB/s`],
      ['  peak RSS (maxRSS)', `${mib(realMaxRss)} (sampled ${mib(p2.rss)}); after load ${mib(rssAfterLoad)}`],
      ['  peak arrayBuffers+external', mib(p2.external)],
      ['  peak RSS − GPU weights', mib(realMaxRss - modelWeights)],
      ['  … − RSS before load', `${mib(realMaxRss - modelWeights - rssBeforeLoad)} (loader + driver overhead; ${mib(realMaxRss - gpuTotal - rssBeforeLoad)} beyond all GPU buffers)`],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
    console.log(JSON.stringify(fig));
  } finally {
    if (!args.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
