/**
 * An independent float64 CPU implementation of Hugging Face `LlamaForCausalLM` inference, the
 * yardstick for the GPU runtime in tests. It is written from the HF modeling code
 * (modeling_llama.py + modeling_rope_utils.py), not from lsc's compiler or runtime, and favours
 * readability over speed: small models only.
 *
 * Semantics, per decoder layer (HF LlamaDecoderLayer):
 *   h  = RMSNorm(x) · input_layernorm            RMSNorm(x) = x / sqrt(mean(x²) + eps)
 *   q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ                 weights are [out, in] (nn.Linear)
 *   q, k = rotate-half RoPE at the token's position (inv_freq from rope_theta, llama3/linear scaling)
 *   attn = causal softmax(q·kᵀ / sqrt(head_dim)) · v, query head h reads kv head h / (heads / kvHeads)
 *   x  = x + attn·Woᵀ
 *   x  = x + (silu(h2·Wgateᵀ) ⊙ h2·Wupᵀ)·Wdownᵀ   with h2 = RMSNorm(x) · post_attention_layernorm
 * then the final RMSNorm (model.norm) and the LM head (lm_head.weight, or the embedding when tied).
 * Early exit after layer E (LayerSkip) runs layers 0..E-1 and then the same final norm + head.
 */

import { add, attendOne, rmsNorm, ropeInPlace, siluMul } from './llama-math.js';
import type { LlamaShapeConfig } from '../../bench/llama-checkpoint.js';

/** The config.json fields the reference reads (HF LlamaConfig names and defaults): the shape fields plus the RoPE and norm ones. */
export interface LlamaRefConfig extends LlamaShapeConfig {
  rms_norm_eps?: number;
  rope_theta?: number;
  rope_scaling?: Record<string, unknown> | null;
}

/**
 * inv_freq as HF's ROPE_INIT_FUNCTIONS compute it: `_compute_default_rope_parameters`,
 * `_compute_linear_scaling_rope_parameters` and `_compute_llama3_parameters`, written here in the
 * same torch.where form (deliberately not sharing code with runtime/rope-table.ts).
 */
export function hfRopeInvFreq(config: LlamaRefConfig): Float64Array {
  const dim = headDimOf(config);
  const base = config.rope_theta ?? 10000;
  // inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2) / dim))
  const invFreq = new Float64Array(dim / 2);
  for (let j = 0; j < dim / 2; j++) invFreq[j] = 1.0 / base ** ((2 * j) / dim);

  const s = config.rope_scaling;
  if (!s) return invFreq;
  const ropeType = (s.rope_type ?? s.type) as string | undefined;
  const param = (key: string): number => {
    const v = s[key];
    if (typeof v !== 'number') throw new Error(`rope_scaling.${key} missing`);
    return v;
  };
  if (ropeType === undefined || ropeType === 'default') return invFreq;
  if (ropeType === 'linear') return invFreq.map((f) => f / param('factor'));
  if (ropeType !== 'llama3') throw new Error(`reference does not implement rope_type ${ropeType}`);

  const factor = param('factor');
  const lowFreqFactor = param('low_freq_factor');
  const highFreqFactor = param('high_freq_factor');
  const oldContextLen = param('original_max_position_embeddings');
  const lowFreqWavelen = oldContextLen / lowFreqFactor;
  const highFreqWavelen = oldContextLen / highFreqFactor;
  const out = new Float64Array(invFreq.length);
  for (let j = 0; j < invFreq.length; j++) {
    const wavelen = (2 * Math.PI) / invFreq[j];
    // wavelen < high_freq_wavelen: do nothing; wavelen > low_freq_wavelen: divide by factor
    let llama = wavelen > lowFreqWavelen ? invFreq[j] / factor : invFreq[j];
    // otherwise: interpolate between the two, using the smooth factor
    const smoothFactor = (oldContextLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    const smoothed = ((1 - smoothFactor) * llama) / factor + smoothFactor * llama;
    const isMediumFreq = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
    if (isMediumFreq) llama = smoothed;
    out[j] = llama;
  }
  return out;
}

export function headDimOf(c: LlamaRefConfig): number {
  return c.head_dim ?? c.hidden_size / c.num_attention_heads;
}

/** Index of the largest value (first one on ties, like torch.argmax). */
export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** Largest minus second largest value: how clear the argmax is. */
export function top2Gap(v: ArrayLike<number>): number {
  let a = -Infinity, b = -Infinity;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x > a) { b = a; a = x; } else if (x > b) b = x;
  }
  return a - b;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = d; // NaN propagates as the max
  }
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** Per-layer K and V rows (post-RoPE K), one entry per position so far. */
interface LayerCache { k: Float64Array[]; v: Float64Array[] }

export interface GreedyTrace {
  tokens: number[];
  /** The reference's top-2 logit gap at each step (how safe the greedy pick is). */
  gaps: number[];
}

export class CpuLlama {
  readonly d: number;
  readonly ffn: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocab: number;
  readonly eps: number;
  readonly invFreq: Float64Array;
  private readonly t: Map<string, Float64Array>;

  /** tensors: HF names → values exactly as stored in the checkpoint, widened to float64. */
  constructor(readonly config: LlamaRefConfig, tensors: Map<string, Float64Array>) {
    this.d = config.hidden_size;
    this.ffn = config.intermediate_size;
    this.layers = config.num_hidden_layers;
    this.heads = config.num_attention_heads;
    this.kvHeads = config.num_key_value_heads ?? this.heads;
    this.headDim = headDimOf(config);
    this.vocab = config.vocab_size;
    this.eps = config.rms_norm_eps ?? 1e-6;
    this.invFreq = hfRopeInvFreq(config);
    this.t = tensors;
    // check every tensor up front, so a wrong shape fails here and not as garbage logits
    const { d, ffn, vocab } = this;
    const q = this.heads * this.headDim, kv = this.kvHeads * this.headDim;
    this.w('model.embed_tokens.weight', vocab * d);
    for (let l = 0; l < this.layers; l++) {
      const p = `model.layers.${l}.`;
      this.w(p + 'input_layernorm.weight', d);
      this.w(p + 'self_attn.q_proj.weight', q * d);
      this.w(p + 'self_attn.k_proj.weight', kv * d);
      this.w(p + 'self_attn.v_proj.weight', kv * d);
      this.w(p + 'self_attn.o_proj.weight', d * q);
      this.w(p + 'post_attention_layernorm.weight', d);
      this.w(p + 'mlp.gate_proj.weight', ffn * d);
      this.w(p + 'mlp.up_proj.weight', ffn * d);
      this.w(p + 'mlp.down_proj.weight', d * ffn);
    }
    this.w('model.norm.weight', d);
    this.w(this.headName, vocab * d);
  }

  get tied(): boolean { return this.config.tie_word_embeddings === true; }
  private get headName(): string { return this.tied ? 'model.embed_tokens.weight' : 'lm_head.weight'; }

  private w(name: string, length?: number): Float64Array {
    const v = this.t.get(name);
    if (!v) throw new Error(`reference: tensor ${name} missing`);
    if (length !== undefined && v.length !== length) throw new Error(`reference: tensor ${name} has ${v.length} elements, expected ${length}`);
    return v;
  }

  /** y = W·x for W [rows, cols] row-major (nn.Linear weight layout). */
  private static linear(W: Float64Array, x: Float64Array, rows: number, cols: number): Float64Array {
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      const o = r * cols;
      for (let c = 0; c < cols; c++) s += W[o + c] * x[c];
      y[r] = s;
    }
    return y;
  }

  private rmsNorm(x: Float64Array, weight: Float64Array): Float64Array {
    return rmsNorm(x, weight, this.eps);
  }

  /**
   * One token at position pos = cache length: runs layers 0..nLayers-1, appending this position's
   * K/V to the cache; returns the residual stream after the last layer run (before the final norm).
   */
  private step(token: number, cache: LayerCache[], nLayers: number): Float64Array {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocab) throw new Error(`reference: token ${token} outside the vocabulary`);
    const { d, ffn, headDim, heads, kvHeads } = this;
    const qDim = heads * headDim, kvDim = kvHeads * headDim;
    const pos = cache[0].k.length;
    let x: Float64Array = this.w('model.embed_tokens.weight').slice(token * d, (token + 1) * d);

    for (let l = 0; l < nLayers; l++) {
      const p = `model.layers.${l}.`;
      const h = this.rmsNorm(x, this.w(p + 'input_layernorm.weight'));
      const q = CpuLlama.linear(this.w(p + 'self_attn.q_proj.weight'), h, qDim, d);
      const k = CpuLlama.linear(this.w(p + 'self_attn.k_proj.weight'), h, kvDim, d);
      const v = CpuLlama.linear(this.w(p + 'self_attn.v_proj.weight'), h, kvDim, d);
      ropeInPlace(q, heads, headDim, this.invFreq, pos);
      ropeInPlace(k, kvHeads, headDim, this.invFreq, pos);
      cache[l].k.push(k);
      cache[l].v.push(v);
      // causal: the cache now holds positions 0..pos
      const attn = attendOne(q, cache[l].k, cache[l].v, heads, kvHeads, headDim);
      const o = CpuLlama.linear(this.w(p + 'self_attn.o_proj.weight'), attn, d, qDim);
      x = add(x, o);

      const h2 = this.rmsNorm(x, this.w(p + 'post_attention_layernorm.weight'));
      const gate = CpuLlama.linear(this.w(p + 'mlp.gate_proj.weight'), h2, ffn, d);
      const up = CpuLlama.linear(this.w(p + 'mlp.up_proj.weight'), h2, ffn, d);
      const act = siluMul(gate, up);
      const down = CpuLlama.linear(this.w(p + 'mlp.down_proj.weight'), act, d, ffn);
      x = add(x, down);
    }
    return x;
  }

  /** Final norm + LM head (shared by the full model and every early exit). */
  private head(x: Float64Array): Float64Array {
    const h = this.rmsNorm(x, this.w('model.norm.weight'));
    return CpuLlama.linear(this.w(this.headName), h, this.vocab, this.d);
  }

  private depth(exitLayer: number | undefined): number {
    const E = exitLayer ?? this.layers;
    if (!Number.isInteger(E) || E < 1 || E > this.layers) throw new Error(`reference: exit layer ${E} outside 1..${this.layers}`);
    return E;
  }

  private newCache(): LayerCache[] {
    return Array.from({ length: this.layers }, () => ({ k: [], v: [] }));
  }

  /**
   * Logits at every position of `tokens` (positions 0..n-1), through the full model or, with
   * exitLayer E, through layers 0..E-1 and then the final norm + head. lastOnly skips the head
   * for all but the last position.
   */
  forward(tokens: number[], opts: { exitLayer?: number; lastOnly?: boolean } = {}): Float64Array[] {
    const E = this.depth(opts.exitLayer);
    const cache = this.newCache();
    const out: Float64Array[] = [];
    tokens.forEach((tok, i) => {
      const x = this.step(tok, cache, E);
      if (!opts.lastOnly || i === tokens.length - 1) out.push(this.head(x));
    });
    return out;
  }

  /**
   * Last-position logits of every exit 1..L from one pass: result[E - 1] is exit E (result[L - 1]
   * the full model). Valid because layer l's output at a position never depends on later layers.
   */
  allExitsLast(tokens: number[]): Float64Array[] {
    const cache = this.newCache();
    const out: Float64Array[] = [];
    for (let i = 0; i < tokens.length - 1; i++) this.step(tokens[i], cache, this.layers);
    const last = tokens[tokens.length - 1];
    for (let E = 1; E <= this.layers; E++) {
      // each depth runs the last token on its own copy of the prompt's cache
      const c = cache.map((lc) => ({ k: lc.k.slice(), v: lc.v.slice() }));
      out.push(this.head(this.step(last, c, E)));
    }
    return out;
  }

  /** n greedy tokens after `tokens` (full model, or every step through exit E), with the top-2 gaps. */
  greedyTrace(tokens: number[], n: number, opts: { exitLayer?: number } = {}): GreedyTrace {
    const E = this.depth(opts.exitLayer);
    const cache = this.newCache();
    let x: Float64Array | undefined;
    for (const tok of tokens) x = this.step(tok, cache, E);
    if (!x) throw new Error('reference: no tokens');
    const out: number[] = [];
    const gaps: number[] = [];
    for (let i = 0; i < n; i++) {
      const logits = this.head(x);
      const next = argmax(logits);
      out.push(next);
      gaps.push(top2Gap(logits));
      if (i + 1 < n) x = this.step(next, cache, E);
    }
    return { tokens: out, gaps };
  }

  greedy(tokens: number[], n: number, opts: { exitLayer?: number } = {}): number[] {
    return this.greedyTrace(tokens, n, opts).tokens;
  }
}
