/**
 * Writes small random Llama checkpoints in the Hugging Face layout (config.json, tokenizer,
 * safetensors single file or index + shards) for comparing the runtime with the CPU reference.
 *
 * Scales keep activations O(1) whatever the size: embeddings ~N(0, 1), projections
 * ~N(0, 1/in) (so every matmul output has unit variance for a normalized input), norm weights
 * 1 ± 0.1 (uniform), and the LM head scaled so logits have a standard deviation of ~`logitStd`
 * (large enough that greedy picks are clear, small enough that f16 KV error stays far below the
 * top-2 gaps).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../runtime/dtype-convert.js';
import { writeSafetensors, writeShardedSafetensors, type WriteTensor } from './checkpoint-writer.js';
import type { LlamaRefConfig } from './cpu-llama.js';
import { copyTinyTokenizer, llamaConfigWithDefaults, llamaTensorShapes } from '../../bench/llama-checkpoint.js';

export { copyTinyTokenizer, llamaConfigWithDefaults, llamaTensorShapes };


/** A config.json for a random model: the reference's fields plus whatever else goes into the file. */
export type RandomModelConfig = LlamaRefConfig & {
  max_position_embeddings?: number;
  bos_token_id?: number;
  eos_token_id?: number | number[];
  [key: string]: unknown;
};

export interface RandomModelOptions {
  dtype: 'F16' | 'BF16' | 'F32';
  /** Write model.safetensors.index.json + shards of about this many bytes each. */
  sharded?: number;
  seed: number;
  /** Standard deviation of the logits for a normalized final hidden state (default 3). */
  logitStd?: number;
}

export interface RandomModel {
  dir: string;
  /** config.json as written. */
  config: RandomModelConfig;
  /** Every tensor by HF name, with the values as stored (after rounding to the checkpoint dtype). */
  tensors: Map<string, Float64Array>;
  /** Files written for the weights (one, or the shards). */
  weightFiles: string[];
}

/** Seeded PRNG: mulberry32 uniforms and Box–Muller normals. */
export class SeededRandom {
  private s: number;
  private spare: number | undefined;
  constructor(seed: number) { this.s = seed | 0; }

  uniform(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = Math.imul(this.s ^ (this.s >>> 15), 1 | this.s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    const u1 = 1 - this.uniform(); // (0, 1]
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }

  /** n integers in [lo, hi). */
  ints(n: number, lo: number, hi: number): number[] {
    return Array.from({ length: n }, () => lo + Math.floor(this.uniform() * (hi - lo)));
  }
}

/** The value a float32 array holds once stored as dtype and read back (what the runtime sees on disk). */
export function storedValues(data: Float32Array, dtype: 'F16' | 'BF16' | 'F32'): Float32Array {
  if (dtype === 'F16') return f16BitsToF32(f32ToF16Bits(data));
  if (dtype === 'BF16') return bf16BitsToF32(f32ToBf16Bits(data));
  return data;
}

/** Writes a random checkpoint into dir (created if needed) and returns its stored values. */
export function writeRandomModel(dir: string, config: RandomModelConfig, opts: RandomModelOptions): RandomModel {
  const rng = new SeededRandom(opts.seed);
  const logitStd = opts.logitStd ?? 3;
  const full = llamaConfigWithDefaults(config, opts.dtype);
  const d = full.hidden_size;

  const tensors = new Map<string, Float64Array>();
  const toWrite: WriteTensor[] = [];
  for (const [name, shape] of llamaTensorShapes(full)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (shape.length === 1) {
      for (let i = 0; i < n; i++) data[i] = 1 + 0.2 * (rng.uniform() - 0.5);
    } else {
      const fanIn = shape[1];
      let std = 1 / Math.sqrt(fanIn);
      // the head's input is normalized (rms 1), so std·sqrt(d) is the logit std
      if (name === 'lm_head.weight') std = logitStd / Math.sqrt(d);
      // tied: the embedding is the head, so it takes the head's scale (the first RMSNorm undoes it)
      if (name === 'model.embed_tokens.weight') std = full.tie_word_embeddings ? logitStd / Math.sqrt(d) : 1;
      for (let i = 0; i < n; i++) data[i] = std * rng.normal();
    }
    toWrite.push({ name, shape, data, dtype: opts.dtype });
    tensors.set(name, Float64Array.from(storedValues(data, opts.dtype)));
  }

  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(full, null, 2));
  copyTinyTokenizer(dir, full.vocab_size);
  let weightFiles: string[];
  if (opts.sharded !== undefined) {
    writeShardedSafetensors(dir, toWrite, opts.sharded);
    weightFiles = fs.readdirSync(dir).filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f)).sort();
  } else {
    writeSafetensors(path.join(dir, 'model.safetensors'), toWrite, { format: 'pt' });
    weightFiles = ['model.safetensors'];
  }
  return { dir, config: full, tensors, weightFiles };
}
