/**
 * The float64 math of one Llama decoder position, shared by the CPU references (cpu-llama.ts holds
 * the weights in memory, streaming-llama.ts streams them from a checkpoint).
 */

export function rmsNorm(x: Float64Array, weight: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * inv * weight[i];
  return out;
}

/** rotate_half RoPE in place on each head of `x` ([nHeads * headDim]) at position pos. */
export function ropeInPlace(x: Float64Array, nHeads: number, headDim: number, invFreq: Float64Array, pos: number): void {
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const o = h * headDim;
    for (let j = 0; j < half; j++) {
      // cos/sin of emb = cat(freqs, freqs): element j and j + half share angle pos * inv_freq[j]
      const angle = pos * invFreq[j];
      const cos = Math.cos(angle), sin = Math.sin(angle);
      const a = x[o + j], b = x[o + j + half];
      // x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1)
      x[o + j] = a * cos - b * sin;
      x[o + j + half] = b * cos + a * sin;
    }
  }
}

/**
 * Causal attention of one query (after RoPE) over the cached keys and values of positions
 * 0..keys.length-1, with grouped-query heads: kv head j serves query heads j·g .. j·g+g-1.
 */
export function attendOne(q: Float64Array, keys: Float64Array[], values: Float64Array[],
  heads: number, kvHeads: number, headDim: number): Float64Array {
  const groups = heads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const n = keys.length;
  const out = new Float64Array(heads * headDim);
  const scores = new Float64Array(n);
  for (let hq = 0; hq < heads; hq++) {
    const qo = hq * headDim, ko = Math.floor(hq / groups) * headDim;
    let max = -Infinity;
    for (let t = 0; t < n; t++) {
      let s = 0;
      for (let i = 0; i < headDim; i++) s += q[qo + i] * keys[t][ko + i];
      scores[t] = s * scale;
      max = Math.max(max, scores[t]);
    }
    let sum = 0;
    for (let t = 0; t < n; t++) {
      scores[t] = Math.exp(scores[t] - max);
      sum += scores[t];
    }
    for (let t = 0; t < n; t++) {
      const pr = scores[t] / sum;
      for (let i = 0; i < headDim; i++) out[qo + i] += pr * values[t][ko + i];
    }
  }
  return out;
}

/** silu(gate) · up */
export function siluMul(gate: Float64Array, up: Float64Array): Float64Array {
  return gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
}

/** x + y, element-wise (the residual adds). */
export function add(x: Float64Array, y: Float64Array): Float64Array {
  return x.map((v, i) => v + y[i]);
}
