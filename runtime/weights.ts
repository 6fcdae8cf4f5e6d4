import './gpu-globals.js';
import * as os from 'node:os';
import { LscError } from '../compiler/errors.js';
import type { Plan, PlanWeight } from '../compiler/plan.js';
import type { WeightSource } from './weight-source.js';
import { checkNoIgnoredTensors } from './checkpoint-config.js';
import { isQuant } from '../compiler/ir/weight-formats.js';
import { QuantWriter, quantBlockRows } from './quant/upload.js';
import { Bf16Converter } from './gpu-convert.js';

const HINT_MISMATCH = 'the graph does not describe this checkpoint: build it from the model\'s config.json (omit --graph)';

/**
 * Checks every tensor the plan needs against the checkpoint (name, dtype, shape), and that the
 * checkpoint holds nothing the plan would ignore, before any upload, so a bad checkpoint fails
 * with nothing allocated.
 */
export function checkCheckpoint(plan: Plan, ckpt: WeightSource): void {
  for (const w of plan.weights) {
    if (w.tiedTo) continue;
    const t = ckpt.get(w.hf);
    if (!t) {
      const near = [...ckpt.tensors.keys()].filter((n) => n.endsWith(w.hf.split('.').slice(-2).join('.'))).slice(0, 3);
      throw new LscError(`tensor '${w.hf}' is missing from the checkpoint${near.length ? ` (similar: ${near.join(', ')})` : ''}`,
        { file: ckpt.dir, tensor: w.hf }, HINT_MISMATCH);
    }
    if (t.shape.length !== w.shape.length || t.shape.some((d, i) => d !== w.shape[i])) {
      throw new LscError(`tensor '${w.hf}' has shape [${t.shape.join(', ')}], the graph expects [${w.shape.join(', ')}]`,
        { file: t.file, tensor: w.hf }, HINT_MISMATCH);
    }
  }
  checkNoIgnoredTensors(plan, ckpt);
}

export interface UploadProgress {
  (doneBytes: number, totalBytes: number, tensor: string): void;
}

/** What uploadWeights needs to know of the adapter (GpuContext.adapterInfo has these fields). */
export interface UploadAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
}

export interface UploadOptions {
  /**
   * The adapter the device was opened on (pass GpuContext.adapterInfo). Without it, the
   * device's own adapterInfo is used where the WebGPU implementation has one.
   */
  adapterInfo?: UploadAdapterInfo;
  /** Whether the adapter is a CPU driver (GpuContext.isCpu); default: isCpuAdapter(adapterInfo). */
  isCpu?: boolean;
  /**
   * Host memory a CPU adapter (whose GPU buffers are host memory) must have free on top of the
   * plan's buffers: staging copies in flight, read chunks, driver and runtime overhead.
   * Default DEFAULT_HOST_MARGIN_BYTES.
   */
  hostMarginBytes?: number;
  /** Free host memory in bytes (default: os.freemem(), capped by a cgroup limit). For tests. */
  freeHostBytes?: () => number;
  /**
   * Convert BF16 weights to f16 in a compute pass (runtime/gpu-convert.ts) rather than in JS.
   * Default: on a real GPU only; on a CPU adapter the compute pass is slower than the JS table
   * (BENCHMARKS.md "Loading speed").
   */
  gpuConvert?: boolean;
  /** Wait for the queue after this many bytes of writeBuffer (default DEFAULT_DRAIN_BYTES). */
  drainBytes?: number;
}

/** Writes between waits for the queue: bounds Dawn's staging copies alive at a time. */
export const DEFAULT_DRAIN_BYTES = 256 << 20;
/**
 * Extra free host memory a CPU adapter needs beyond the plan's buffers (see
 * UploadOptions.hostMarginBytes): at worst DEFAULT_DRAIN_BYTES of staging copies plus one block
 * in flight, the read pieces and not yet collected ones (~400 MiB). bench/load-memory.ts measures
 * ~100 MiB over the GPU buffers for a 2 GB BF16 checkpoint on lavapipe.
 */
export const DEFAULT_HOST_MARGIN_BYTES = 512 << 20;
/** Rows are read and written in blocks of at most this many bytes (a few readRows pieces of 16 MiB). */
const BLOCK_BYTES = 64 << 20;

/** GPU bytes of the weights of a plan (tied weights counted once). */
export function weightBytes(plan: Plan): number {
  return plan.buffers.filter((b) => b.kind === 'weight').reduce((a, b) => a + b.bytes, 0);
}

/** The byte size createBuffer gets for a plan buffer (writeBuffer works in 4-byte units). */
function allocSize(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

/**
 * A software rasterizer (Mesa llvmpipe/lavapipe, SwiftShader, WARP): its "GPU" buffers are host
 * memory, and allocating them does not fail when the host runs out (Linux overcommits; the
 * process is killed later, while writing), so uploadWeights checks free host memory first.
 */
export function isCpuAdapter(info: UploadAdapterInfo | undefined): boolean {
  if (!info) return false;
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  return /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|\bwarp\b/i.test(text) || /^software$/i.test(info.architecture ?? '');
}

/** os.freemem() (MemAvailable on Linux), or less when a cgroup limit leaves less. */
export function freeHostMemory(): number {
  let free = os.freemem();
  const limit = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : undefined;
  // unlimited cgroups report 2^64 (or 0 where unsupported)
  if (limit && limit > 0 && limit < 2 ** 60) free = Math.min(free, Math.max(0, limit - process.memoryUsage().rss));
  return free;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

function adapterName(info: UploadAdapterInfo | undefined): string {
  const name = info?.description || info?.device || [info?.vendor, info?.architecture].filter(Boolean).join(' ');
  return name ? `the adapter (${name})` : 'the adapter';
}

/** The device's adapterInfo (GPUDevice.adapterInfo), where the implementation has it. */
function deviceAdapterInfo(device: GPUDevice): UploadAdapterInfo | undefined {
  try {
    const info = (device as { adapterInfo?: UploadAdapterInfo }).adapterInfo;
    return info ? { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Fails before anything is allocated when a CPU adapter's host would not hold the plan's buffers:
 * allocation itself would "succeed" and the process be killed halfway through the upload.
 */
function checkHostMemory(plan: Plan, info: UploadAdapterInfo | undefined, opts: UploadOptions): void {
  if (!(opts.isCpu ?? isCpuAdapter(info))) return;
  const weights = weightBytes(plan);
  const rest = plan.buffers.filter((b) => b.kind !== 'weight').reduce((a, b) => a + b.bytes, 0);
  const margin = opts.hostMarginBytes ?? DEFAULT_HOST_MARGIN_BYTES;
  const free = (opts.freeHostBytes ?? freeHostMemory)();
  const need = weights + rest + margin;
  if (need > free) {
    throw new LscError(
      `the weights need ${weights} bytes (${gib(weights)}), plus ${gib(rest)} of KV cache and activations and a ${gib(margin)} margin: `
      + `${need} bytes (${gib(need)}) of host memory in all, but only ${free} bytes (${gib(free)}) are free; `
      + `${adapterName(info)} is a CPU driver that keeps GPU buffers in host memory`,
      {}, 'free host memory, use a machine with more memory or a real GPU, or load a smaller model (a smaller --ctx shrinks the KV cache)');
  }
}

/**
 * Creates every weight buffer inside out-of-memory and validation error scopes, before any data
 * is written, so a device that cannot hold the weights fails at once with nothing left allocated.
 */
async function createWeightBuffers(device: GPUDevice, plan: Plan, info: UploadAdapterInfo | undefined): Promise<Map<string, GPUBuffer>> {
  const sizes = new Map(plan.buffers.map((b) => [b.id, b.bytes]));
  const out = new Map<string, GPUBuffer>();
  const total = weightBytes(plan);
  let thrown: unknown;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  try {
    for (const w of plan.weights) {
      if (w.tiedTo) continue;
      for (const ch of w.chunks) {
        const bytes = sizes.get(ch.buffer);
        if (bytes === undefined) throw new Error(`internal: weight buffer ${ch.buffer} is not in the plan's buffers`);
        out.set(ch.buffer, device.createBuffer({
          // COPY_SRC: tests read the loaded weights back to compare loading paths byte for byte
          size: allocSize(bytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC, label: ch.buffer,
        }));
      }
    }
  } catch (e) {
    thrown = e;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  if (thrown || validation || oom) {
    for (const b of out.values()) b.destroy();
    if (thrown) throw thrown;
    const err = (oom ?? validation)!;
    throw new LscError(
      `the weights need ${total} bytes (${gib(total)}) in ${plan.buffers.filter((b) => b.kind === 'weight').length} GPU buffers, `
      + `and ${adapterName(info)} could not allocate them (${oom ? 'out of memory' : 'validation error'}: ${err.message})`,
      {}, 'use a GPU with more memory, or a smaller model');
  }
  return out;
}

/**
 * Streams every weight tensor into its GPU buffers (row slices as the plan splits them),
 * converting to f16 / f32 on the way (BF16 on the GPU where opts.gpuConvert: runtime/gpu-convert.ts),
 * or quantizing (runtime/quant/upload.ts). Every buffer is created first (see createWeightBuffers);
 * on a CPU adapter free host memory is checked before that. Host memory stays bounded: reads go
 * in 16 MiB pieces, and after every `drainBytes` of writes the queue is awaited so that Dawn
 * releases its staging copies.
 */
export async function uploadWeights(device: GPUDevice, plan: Plan, ckpt: WeightSource,
  onProgress?: UploadProgress, opts: UploadOptions = {}): Promise<Map<string, GPUBuffer>> {
  checkCheckpoint(plan, ckpt);
  const info = opts.adapterInfo ?? deviceAdapterInfo(device);
  checkHostMemory(plan, info, opts);
  const drainBytes = opts.drainBytes ?? DEFAULT_DRAIN_BYTES;
  const convertOnGpu = opts.gpuConvert ?? !(opts.isCpu ?? isCpuAdapter(info));
  const out = await createWeightBuffers(device, plan, info);
  const total = weightBytes(plan);
  let done = 0;
  let sinceDrain = 0;
  // errors of the writes (staging out of memory, a bad offset) surface here rather than as
  // uncaptured device errors after the model is "loaded"
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let scopes = 2;
  let gpuConvert: Bf16Converter | undefined;
  const convertedOnGpu: PlanWeight[] = [];
  try {
    const quant = new QuantWriter(device);
    for (const w of plan.weights as PlanWeight[]) {
      if (w.tiedTo) continue;
      if (isQuant(w.gpuDtype)) {
        // quantized while loading (runtime/quant/upload.ts)
        const blockRows = quantBlockRows(w.shape[1], BLOCK_BYTES);
        for (const ch of w.chunks) {
          for (let b = 0; b < ch.rowCount; b += blockRows) {
            const bytes = await quant.write(ckpt, w, out.get(ch.buffer)!, ch.rowStart, ch.rowCount, b, Math.min(blockRows, ch.rowCount - b));
            done += bytes;
            sinceDrain += bytes;
            onProgress?.(done, total, w.hf);
            if (sinceDrain >= drainBytes) {
              await device.queue.onSubmittedWorkDone();
              sinceDrain = 0;
            }
          }
        }
        continue;
      }
      const elemBytes = w.gpuDtype === 'f16' ? 2 : 4;
      const rowBytes = (w.shape.length <= 1 ? 1 : w.shape.slice(1).reduce((a, b) => a * b, 1)) * elemBytes;
      // BF16 → f16 on the GPU where the device computes and the source hands out raw rows
      // (tests' counting devices do neither; rows bigger than a block stay on the CPU path)
      const bf16 = convertOnGpu && w.gpuDtype === 'f16' && ckpt.get(w.hf)!.dtype === 'BF16' && ckpt.readRawRows !== undefined
        && typeof device.createComputePipeline === 'function' && rowBytes <= BLOCK_BYTES;
      if (bf16) {
        gpuConvert ??= new Bf16Converter(device, BLOCK_BYTES);
        convertedOnGpu.push(w);
      }
      const blockRows = Math.max(1, Math.floor(BLOCK_BYTES / rowBytes));
      for (const ch of w.chunks) {
        const buf = out.get(ch.buffer)!;
        const [r0, n] = w.shape.length <= 1 ? [0, w.shape.length === 0 ? 1 : w.shape[0]] : [ch.rowStart, ch.rowCount];
        for (let b = 0; b < n; b += blockRows) {
          const rows = Math.min(blockRows, n - b);
          const blockOffset = b * rowBytes;
          if (bf16 && blockOffset % 4 === 0) {
            // raw bf16 into the scratch buffer, converted to f16 on the GPU (runtime/gpu-convert.ts)
            const conv = gpuConvert!;
            await ckpt.readRawRows!(w.hf, r0 + b, rows, (data, byteOffset) => {
              conv.stage(data, byteOffset);
              sinceDrain += data.byteLength;
            });
            conv.convert(buf, blockOffset, rows * rowBytes / 2);
            done += rows * rowBytes;
            onProgress?.(done, total, w.hf);
            if (sinceDrain >= drainBytes) {
              await device.queue.onSubmittedWorkDone();
              sinceDrain = 0;
            }
            continue;
          }
          await ckpt.readRows(w.hf, w.gpuDtype === 'f16' ? 'f16' : 'f32', r0 + b, rows, (data, elementOffset) => {
            // the readers' pieces live in plain ArrayBuffers (the DOM typing of writeBuffer wants that said)
            let view = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
            if (view.byteLength % 4) {
              const padded = new Uint8Array(view.byteLength + 2);
              padded.set(view);
              view = padded;
            }
            device.queue.writeBuffer(buf, blockOffset + elementOffset * elemBytes, view);
            done += data.byteLength;
            sinceDrain += data.byteLength;
          });
          onProgress?.(done, total, w.hf);
          // let the queue finish its copies now and then so Dawn frees their staging memory
          if (sinceDrain >= drainBytes) {
            await device.queue.onSubmittedWorkDone();
            sinceDrain = 0;
          }
        }
      }
    }
    await device.queue.onSubmittedWorkDone();
    if (gpuConvert && await gpuConvert.sawNonFinite()) {
      // a NaN / inf / beyond-f16 value: the CPU reader names the first one (tensor, index, value)
      for (const w of convertedOnGpu) await ckpt.readRows(w.hf, 'f16', 0, w.shape.length === 0 ? 1 : w.shape[0], () => undefined);
      throw new Error('internal: the GPU conversion flagged a non-finite value the CPU reader does not find');
    }
    gpuConvert?.destroy();
    gpuConvert = undefined;
    scopes = 0;
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    const err = oom ?? validation;
    if (err) {
      throw new LscError(`uploading the weights (${gib(total)}) failed: ${oom ? 'out of memory' : 'validation error'}: ${err.message}`,
        {}, oom ? 'use a GPU with more memory, or a smaller model' : undefined);
    }
  } catch (e) {
    gpuConvert?.destroy();
    for (; scopes > 0; scopes--) await device.popErrorScope().catch(() => undefined);
    for (const b of out.values()) b.destroy();
    throw e;
  }
  return out;
}
