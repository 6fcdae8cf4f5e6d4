/**
 * The float64 Hugging Face Llama reference of test/helpers/cpu-llama.ts, for checkpoints too big
 * to hold as float64: weights are never kept. Every matrix is streamed from the checkpoint in row
 * pieces (SafetensorsCheckpoint.readRows, 16 MiB of f32 at a time) and applied to all the
 * positions being computed at once, so a pass over n new tokens reads each weight once; memory is
 * the pieces, the KV cache and the activations of those positions.
 *
 * Same math as CpuLlama (RMSNorm, rotate_half RoPE from hfRopeInvFreq, causal softmax attention
 * with repeat_kv, SiLU MLP, final norm + head); accumulation in float64 over the stored values.
 */
import type { SafetensorsCheckpoint } from '../../runtime/safetensors.js';
import { add, attendOne, rmsNorm, ropeInPlace, siluMul } from './llama-math.js';
import { argmax, headDimOf, hfRopeInvFreq, top2Gap, type GreedyTrace, type LlamaRefConfig } from './cpu-llama.js';

/** Per layer: post-RoPE K and V rows, one per position so far. */
export interface StreamingCache { k: Float64Array[][]; v: Float64Array[][] }

export class StreamingLlama {
  readonly d: number;
  readonly ffn: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocab: number;
  readonly eps: number;
  readonly invFreq: Float64Array;
  /** Bytes of f32 weights read from the checkpoint so far (for reports). */
  readBytes = 0;
  private readonly norms = new Map<string, Float64Array>();

  constructor(readonly config: LlamaRefConfig, private readonly ckpt: SafetensorsCheckpoint) {
    this.d = config.hidden_size;
    this.ffn = config.intermediate_size;
    this.layers = config.num_hidden_layers;
    this.heads = config.num_attention_heads;
    this.kvHeads = config.num_key_value_heads ?? this.heads;
    this.headDim = headDimOf(config);
    this.vocab = config.vocab_size;
    this.eps = config.rms_norm_eps ?? 1e-6;
    this.invFreq = hfRopeInvFreq(config);
    const q = this.heads * this.headDim, kv = this.kvHeads * this.headDim;
    const expect: [string, number[]][] = [['model.embed_tokens.weight', [this.vocab, this.d]], ['model.norm.weight', [this.d]], [this.headName, [this.vocab, this.d]]];
    for (let l = 0; l < this.layers; l++) {
      const p = `model.layers.${l}.`;
      expect.push([p + 'input_layernorm.weight', [this.d]], [p + 'post_attention_layernorm.weight', [this.d]],
        [p + 'self_attn.q_proj.weight', [q, this.d]], [p + 'self_attn.k_proj.weight', [kv, this.d]],
        [p + 'self_attn.v_proj.weight', [kv, this.d]], [p + 'self_attn.o_proj.weight', [this.d, q]],
        [p + 'mlp.gate_proj.weight', [this.ffn, this.d]], [p + 'mlp.up_proj.weight', [this.ffn, this.d]],
        [p + 'mlp.down_proj.weight', [this.d, this.ffn]]);
    }
    for (const [name, shape] of expect) {
      const t = ckpt.get(name);
      if (!t) throw new Error(`reference: tensor ${name} missing`);
      if (t.shape.join() !== shape.join()) throw new Error(`reference: tensor ${name} has shape [${t.shape}], expected [${shape}]`);
    }
  }

  private get headName(): string {
    return this.config.tie_word_embeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  }

  /** A 1-D tensor (norm weight), read once and kept (d floats). */
  private vector(name: string): Float64Array {
    let v = this.norms.get(name);
    if (!v) {
      v = Float64Array.from(this.ckpt.readAll(name, 'f32'));
      this.norms.set(name, v);
    }
    return v;
  }

  /** ys[t] = W·xs[t] for W [rows, cols] (nn.Linear layout), W streamed once for all t. */
  linear(name: string, xs: Float64Array[], rows: number, cols: number): Float64Array[] {
    const ys = xs.map(() => new Float64Array(rows));
    const n = xs.length;
    this.ckpt.readRows(name, 'f32', 0, rows, (data, elementOffset) => {
      const w = data as Float32Array;
      this.readBytes += w.byteLength;
      const r0 = elementOffset / cols;
      const pieceRows = w.length / cols;
      for (let r = 0; r < pieceRows; r++) {
        const o = r * cols;
        for (let t = 0; t < n; t++) {
          const x = xs[t];
          let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          let c = 0;
          for (; c + 3 < cols; c += 4) {
            s0 += w[o + c] * x[c];
            s1 += w[o + c + 1] * x[c + 1];
            s2 += w[o + c + 2] * x[c + 2];
            s3 += w[o + c + 3] * x[c + 3];
          }
          for (; c < cols; c++) s0 += w[o + c] * x[c];
          ys[t][r0 + r] = (s0 + s1) + (s2 + s3);
        }
      }
    });
    return ys;
  }

  private rmsNorm(x: Float64Array, weight: Float64Array): Float64Array {
    return rmsNorm(x, weight, this.eps);
  }

  newCache(): StreamingCache {
    return { k: Array.from({ length: this.layers }, () => []), v: Array.from({ length: this.layers }, () => []) };
  }

  /** Embedding rows of the tokens (one row read each). */
  private embed(tokens: number[]): Float64Array[] {
    return tokens.map((tok) => {
      if (!Number.isInteger(tok) || tok < 0 || tok >= this.vocab) throw new Error(`reference: token ${tok} outside the vocabulary`);
      const x = new Float64Array(this.d);
      this.ckpt.readRows('model.embed_tokens.weight', 'f32', tok, 1, (data, off) => x.set(data, off));
      return x;
    });
  }

  /**
   * Appends tokens at positions cache length.. and runs them through layers 0..nLayers-1 (default
   * all). Returns the residual stream after every layer run: out[l][t] is token t after layer l
   * (so out[E - 1] feeds exit E, out[L - 1] the full model).
   */
  extend(cache: StreamingCache, tokens: number[], nLayers = this.layers): Float64Array[][] {
    const { d, ffn, headDim, heads, kvHeads } = this;
    const qDim = heads * headDim, kvDim = kvHeads * headDim;
    const pos0 = cache.k[0].length;
    if (cache.k.some((k, l) => l < nLayers && k.length !== pos0)) throw new Error('reference: cache layers out of step');
    let xs = this.embed(tokens);
    const out: Float64Array[][] = [];
    for (let l = 0; l < nLayers; l++) {
      const p = `model.layers.${l}.`;
      const hs = xs.map((x) => this.rmsNorm(x, this.vector(p + 'input_layernorm.weight')));
      const qs = this.linear(p + 'self_attn.q_proj.weight', hs, qDim, d);
      const ks = this.linear(p + 'self_attn.k_proj.weight', hs, kvDim, d);
      const vs = this.linear(p + 'self_attn.v_proj.weight', hs, kvDim, d);
      const attns: Float64Array[] = [];
      tokens.forEach((_, t) => {
        const pos = pos0 + t;
        ropeInPlace(qs[t], heads, headDim, this.invFreq, pos);
        ropeInPlace(ks[t], kvHeads, headDim, this.invFreq, pos);
        cache.k[l].push(ks[t]);
        cache.v[l].push(vs[t]);
        // causal: the cache now holds positions 0..pos
        attns.push(attendOne(qs[t], cache.k[l], cache.v[l], heads, kvHeads, headDim));
      });
      const os = this.linear(p + 'self_attn.o_proj.weight', attns, d, qDim);
      xs = xs.map((x, t) => add(x, os[t]));
      const h2s = xs.map((x) => this.rmsNorm(x, this.vector(p + 'post_attention_layernorm.weight')));
      const gates = this.linear(p + 'mlp.gate_proj.weight', h2s, ffn, d);
      const ups = this.linear(p + 'mlp.up_proj.weight', h2s, ffn, d);
      const acts = gates.map((g, t) => siluMul(g, ups[t]));
      const downs = this.linear(p + 'mlp.down_proj.weight', acts, d, ffn);
      xs = xs.map((x, t) => add(x, downs[t]));
      out.push(xs);
    }
    return out;
  }

  /** Final norm + LM head of each hidden state (the head streamed once for all of them). */
  head(xs: Float64Array[]): Float64Array[] {
    const hs = xs.map((x) => this.rmsNorm(x, this.vector('model.norm.weight')));
    return this.linear(this.headName, hs, this.vocab, this.d);
  }

  /**
   * n greedy tokens after a prompt whose cache and last hidden state (full depth) are given;
   * extends the cache with the generated tokens but the last.
   */
  greedyFrom(cache: StreamingCache, lastHidden: Float64Array, n: number): GreedyTrace {
    const tokens: number[] = [];
    const gaps: number[] = [];
    let x = lastHidden;
    for (let i = 0; i < n; i++) {
      const [logits] = this.head([x]);
      const next = argmax(logits);
      tokens.push(next);
      gaps.push(top2Gap(logits));
      if (i + 1 < n) x = this.extend(cache, [next])[this.layers - 1][0];
    }
    return { tokens, gaps };
  }
}
