import type { RopeConfig } from '../compiler/ir/graph.js';

/**
 * Inverse frequencies of rotate-half RoPE, with Llama 3 / linear scaling, as Hugging Face
 * computes them (`_compute_llama3_parameters`).
 */
export function ropeInvFreq(rope: RopeConfig, headDim: number): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(rope.theta, (2 * i) / headDim);
  const s = rope.scaling;
  if (s?.type === 'linear') {
    for (let i = 0; i < half; i++) inv[i] /= s.factor;
  } else if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) {
        inv[i] /= s.factor;
      } else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / s.factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/** cos/sin per (position, pair) in float64, stored as f32 pairs: [ctx][headDim/2] of (cos, sin). */
export function ropeTable(rope: RopeConfig, headDim: number, ctx: number): Float32Array<ArrayBuffer> {
  const inv = ropeInvFreq(rope, headDim);
  const half = headDim / 2;
  const out = new Float32Array(ctx * half * 2);
  for (let p = 0; p < ctx; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * inv[i];
      out[(p * half + i) * 2] = Math.cos(a);
      out[(p * half + i) * 2 + 1] = Math.sin(a);
    }
  }
  return out;
}
