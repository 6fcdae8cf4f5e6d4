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
import { fileURLToPath } from 'node:url';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../runtime/dtype-convert.js';
import { writeSafetensors, writeShardedSafetensors, type WriteTensor } from './checkpoint-writer.js';
import type { LlamaRefConfig } from './cpu-llama.js';

const TINY_CODE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'examples', 'models', 'tiny-code');

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

/** HF tensor names and shapes of a Llama checkpoint, in the order HF writes them. */
export function llamaTensorShapes(c: LlamaRefConfig): [string, number[]][] {
  const d = c.hidden_size, ffn = c.intermediate_size, V = c.vocab_size;
  const hd = c.head_dim ?? d / c.num_attention_heads;
  const q = c.num_attention_heads * hd, kv = (c.num_key_value_heads ?? c.num_attention_heads) * hd;
  const out: [string, number[]][] = [['model.embed_tokens.weight', [V, d]]];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [p + 'input_layernorm.weight', [d]],
      [p + 'self_attn.q_proj.weight', [q, d]],
      [p + 'self_attn.k_proj.weight', [kv, d]],
      [p + 'self_attn.v_proj.weight', [kv, d]],
      [p + 'self_attn.o_proj.weight', [d, q]],
      [p + 'post_attention_layernorm.weight', [d]],
      [p + 'mlp.gate_proj.weight', [ffn, d]],
      [p + 'mlp.up_proj.weight', [ffn, d]],
      [p + 'mlp.down_proj.weight', [d, ffn]],
    );
  }
  out.push(['model.norm.weight', [d]]);
  if (!c.tie_word_embeddings) out.push(['lm_head.weight', [V, d]]);
  return out;
}

/**
 * The bundled model's tokenizer files, so random checkpoints load like real ones; resized to
 * `vocab` ids when given (loading checks that tokenizer and vocab_size agree): truncated (merges
 * that need a dropped piece go too), or extended with pieces no merge reaches.
 */
export function copyTinyTokenizer(dir: string, vocab?: number): void {
  fs.copyFileSync(path.join(TINY_CODE, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  const tj = JSON.parse(fs.readFileSync(path.join(TINY_CODE, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
    added_tokens: { id: number }[];
  };
  const size = Object.keys(tj.model.vocab).length;
  if (vocab !== undefined && vocab !== size) {
    const kept = Object.entries(tj.model.vocab).filter(([, id]) => id < vocab);
    for (let id = size; id < vocab; id++) kept.push([`<unused_${id}>`, id]);
    tj.model.vocab = Object.fromEntries(kept);
    tj.model.merges = tj.model.merges.filter((m) => {
      const [a, b] = typeof m === 'string' ? m.split(' ') : m;
      const has = (piece: string) => Object.hasOwn(tj.model.vocab, piece);
      return has(a) && has(b) && has(a + b);
    });
    tj.added_tokens = tj.added_tokens.filter((t) => t.id < vocab);
  }
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
}

/** config.json of a Llama checkpoint: HF defaults for the fields `config` leaves out. */
export function llamaConfigWithDefaults(config: RandomModelConfig, dtype: 'F16' | 'BF16' | 'F32', maxPositions = 1024): RandomModelConfig {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: maxPositions,
    bos_token_id: 1,
    eos_token_id: 2,
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: { F16: 'float16', BF16: 'bfloat16', F32: 'float32' }[dtype],
    ...config,
  };
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
