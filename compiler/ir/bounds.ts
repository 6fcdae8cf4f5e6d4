import { LscError } from '../errors.js';

/**
 * The largest model lsc compiles, checked before anything is sized from it: a graph or
 * config.json with a dimension past these is a user error (exit 2), not an allocation that runs
 * the machine out of memory. Each bound is several times the largest released Llama
 * (Llama 3.1 405B: 126 layers, hidden 16384, 128 heads of 128, ffn 53248; Llama 3's vocab
 * 128256; 131072 positions), so every real checkpoint fits with room to spare.
 */
export const BOUNDS = {
  /** Decoder layers (dims.layers, a repeat's span, num_hidden_layers). */
  layers: 1024,
  /** Hidden size d (hidden_size). */
  hidden: 65536,
  /** Attention heads, query or key/value (num_attention_heads, num_key_value_heads). */
  heads: 1024,
  /** Dimension of one head (head_dim): attention keeps a head's query in workgroup memory. */
  headDim: 1024,
  /** MLP width (intermediate_size). */
  ffn: 262144,
  /** Vocabulary size (vocab_size). */
  vocab: 1048576,
  /** Positions the KV cache holds (dims.ctx, --ctx). */
  ctx: 1048576,
  /** Drafts per speculation round (dims.k.max). */
  k: 256,
  /** Any other dimension, and any dim expression's value: keeps sizes (dims × dims × bytes) exact in float64. */
  dim: 16777216,
  /** Characters of one dim expression ("heads*headDim"). */
  exprLength: 256,
  /**
   * Work of one compile: node copies over all entry points (prefill, decode, and prefill@E,
   * draft@E and verify@E per exit candidate), and dispatches of the plan. The 405B-class graph with 31 exit candidates
   * has about 100k node copies and 205k dispatches (compiles in 7 s on a 2-core machine); the
   * budget is about twice that, so compile time stays bounded (seconds, not the minutes and
   * gigabytes 10,000 layers took).
   */
  nodeCopies: 250_000,
  dispatches: 400_000,
} as const;

/** What each dim of the builder's graphs (compiler/builder/llama.ts) counts, with its bound. */
export const NAMED_DIM_BOUNDS: Readonly<Record<string, { what: string; max: number }>> = Object.assign(Object.create(null), {
  layers: { what: 'decoder layers', max: BOUNDS.layers },
  d: { what: 'hidden size', max: BOUNDS.hidden },
  heads: { what: 'attention heads', max: BOUNDS.heads },
  kvHeads: { what: 'key/value heads', max: BOUNDS.heads },
  headDim: { what: 'head dimension', max: BOUNDS.headDim },
  ffn: { what: 'MLP width', max: BOUNDS.ffn },
  vocab: { what: 'vocabulary size', max: BOUNDS.vocab },
  ctx: { what: 'KV-cache positions', max: BOUNDS.ctx },
  k: { what: 'drafts per round', max: BOUNDS.k },
});

/** Throws when `value` is past `max`: `what` names the quantity, `where` locates it. */
export function checkBound(what: string, value: number, max: number, where: { file?: string; pointer?: string }, hint?: string): void {
  if (value > max) {
    throw new LscError(`${what} ${value} exceeds ${max}, the largest lsc supports`, where,
      hint ?? 'check the value: lsc compiles models up to several times the size of Llama 3.1 405B');
  }
}
