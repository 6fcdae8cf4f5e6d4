/**
 * Writes big random Llama checkpoints (7B dimensions, GB-sized) without ever holding a tensor in
 * memory: every tensor is generated piece by piece (1 Mi elements) from its own seeded PRNG,
 * converted to the checkpoint dtype and written, so the writer's memory is a few MiB whatever the
 * model size. The values are not kept: readers (the runtime, test/helpers/streaming-llama.ts)
 * read them back from the files.
 *
 * Scales follow test/helpers/random-model.ts, with uniform instead of normal draws (same standard
 * deviation, ~5x cheaper to generate): embeddings std 1, projections std 1/sqrt(in), norm weights
 * 1 ± 0.1, LM head std logitStd/sqrt(d) so logits of a normalized hidden state have std ~logitStd.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { f32ToBf16Bits, f32ToF16Bits } from '../runtime/dtype-convert.js';
import { copyTinyTokenizer, groupIntoShards, llamaConfigWithDefaults, llamaTensorShapes, type LlamaConfigJson } from './llama-checkpoint.js';

const ITEM_SIZE = { F32: 4, F16: 2, BF16: 2 } as const;
/** Elements generated, converted and written at a time. */
const PIECE = 1 << 20;

export type StreamDType = keyof typeof ITEM_SIZE;

export interface StreamTensor {
  name: string;
  shape: number[];
  dtype: StreamDType;
  /** Fills out with the elements starting at elementOffset (called in order, offsets increasing). */
  fill(out: Float32Array, elementOffset: number): void;
}

function elements(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function streamTensorBytes(t: StreamTensor): number {
  return elements(t.shape) * ITEM_SIZE[t.dtype];
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += fs.writeSync(fd, bytes, done);
}

/** One .safetensors file, tensor by tensor, piece by piece. */
export function writeStreamedSafetensors(file: string, tensors: StreamTensor[], metadata: Record<string, string> = { format: 'pt' }): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const n = streamTensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  const raw = Buffer.from(JSON.stringify(header), 'utf8');
  const hdr = Buffer.alloc(Math.ceil(raw.length / 8) * 8, 0x20);
  raw.copy(hdr);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hdr.length));
  const f32 = new Float32Array(PIECE);
  const u16 = new Uint16Array(PIECE);
  const fd = fs.openSync(file, 'w');
  try {
    writeAll(fd, len);
    writeAll(fd, hdr);
    for (const t of tensors) {
      const n = elements(t.shape);
      for (let off = 0; off < n; off += PIECE) {
        const m = Math.min(PIECE, n - off);
        const src = f32.subarray(0, m);
        t.fill(src, off);
        const out = t.dtype === 'F32' ? src : t.dtype === 'F16' ? f32ToF16Bits(src, u16.subarray(0, m)) : f32ToBf16Bits(src, u16.subarray(0, m));
        writeAll(fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Shards of about shardBytes each (a new shard starts when the next tensor would overflow a
 * non-empty one) + model.safetensors.index.json; returns the shard file names.
 */
export function writeStreamedShards(dir: string, tensors: StreamTensor[], shardBytes: number): string[] {
  const shards = groupIntoShards(tensors, streamTensorBytes, shardBytes);
  const pad = (i: number) => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  const names: string[] = [];
  let total = 0;
  shards.forEach((shard, i) => {
    const name = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    writeStreamedSafetensors(path.join(dir, name), shard);
    names.push(name);
    for (const t of shard) {
      weightMap[t.name] = name;
      total += streamTensorBytes(t);
    }
  });
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return names;
}

/** Uniform values in [center - halfWidth, center + halfWidth), from a mulberry32 stream seeded per tensor. */
function uniformFill(seed: number, center: number, halfWidth: number): StreamTensor['fill'] {
  let s = seed | 0;
  let next = 0;
  return (out, elementOffset) => {
    if (elementOffset !== next) throw new Error(`fill: pieces must come in order (asked ${elementOffset}, next ${next})`);
    const scale = (2 * halfWidth) / 4294967296;
    const lo = center - halfWidth;
    for (let i = 0; i < out.length; i++) {
      s = (s + 0x6d2b79f5) | 0;
      let t = Math.imul(s ^ (s >>> 15), 1 | s);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      out[i] = lo + ((t ^ (t >>> 14)) >>> 0) * scale;
    }
    next += out.length;
  };
}

export interface StreamedModelOptions {
  dtype: StreamDType;
  seed: number;
  /** Write model.safetensors.index.json + shards of about this many bytes each (default: one file). */
  shardBytes?: number;
  /** Standard deviation of the logits for a normalized final hidden state (default 3). */
  logitStd?: number;
}

export interface StreamedModel {
  dir: string;
  config: LlamaConfigJson;
  /** Weight files written (model.safetensors, or the shards). */
  weightFiles: string[];
  /** Bytes of tensor data over all files. */
  tensorBytes: number;
}

/** The tensors of a random Llama checkpoint, each with a generator (nothing is computed yet). */
export function randomLlamaTensors(config: LlamaConfigJson, opts: StreamedModelOptions): StreamTensor[] {
  const d = config.hidden_size;
  const logitStd = opts.logitStd ?? 3;
  const sqrt3 = Math.sqrt(3); // uniform on [-a, a] has std a/sqrt(3)
  return llamaTensorShapes(config).map(([name, shape], i) => {
    const seed = Math.imul(opts.seed + 1, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b);
    let fill: StreamTensor['fill'];
    if (shape.length === 1) {
      fill = uniformFill(seed, 1, 0.1);
    } else {
      let std = 1 / Math.sqrt(shape[1]);
      if (name === 'lm_head.weight') std = logitStd / Math.sqrt(d);
      if (name === 'model.embed_tokens.weight') std = config.tie_word_embeddings ? logitStd / Math.sqrt(d) : 1;
      fill = uniformFill(seed, 0, std * sqrt3);
    }
    return { name, shape, dtype: opts.dtype, fill };
  });
}

/** Writes config.json, the tiny-code tokenizer and random weights into dir (created if needed). */
export function writeStreamedRandomModel(dir: string, config: LlamaConfigJson, opts: StreamedModelOptions): StreamedModel {
  const full = llamaConfigWithDefaults(config, opts.dtype, 4096);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(full, null, 2));
  copyTinyTokenizer(dir, full.vocab_size);
  const tensors = randomLlamaTensors(full, opts);
  const tensorBytes = tensors.reduce((a, t) => a + streamTensorBytes(t), 0);
  let weightFiles: string[];
  if (opts.shardBytes !== undefined) {
    weightFiles = writeStreamedShards(dir, tensors, opts.shardBytes);
  } else {
    writeStreamedSafetensors(path.join(dir, 'model.safetensors'), tensors);
    weightFiles = ['model.safetensors'];
  }
  return { dir, config: full, weightFiles, tensorBytes };
}
