/**
 * Seeded sampling on the CPU: temperature, top-k, top-p over one row of logits. The same
 * warping is applied to draft and target distributions in speculative sampling.
 */
export interface SamplingOptions {
  /** 0 means greedy. */
  temperature: number;
  topK?: number;
  topP?: number;
}

/** xoshiro128** seeded through splitmix32: small, fast, reproducible across platforms. */
export class Rng {
  private s = new Uint32Array(4);
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Uniform in [0, 1) with 32 random bits. */
  next(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return r / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Sparse distribution: token ids and their probabilities (summing to 1). */
export interface Distribution {
  ids: Int32Array;
  probs: Float64Array;
}

/**
 * The greedy token: torch.argmax's order, as the GPU argmax kernel (codegen/argmax.ts): NaN
 * above every number, the first index among equal maxima.
 */
export function greedyPick(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) {
    if (Number.isNaN(logits[best])) break;
    if (logits[i] > logits[best] || Number.isNaN(logits[i])) best = i;
  }
  return best;
}

/** Applies temperature, top-k and top-p and normalizes; greedy (temperature 0) is a point mass. */
export function distribution(logits: Float32Array, o: SamplingOptions): Distribution {
  const n = logits.length;
  if (!(o.temperature > 0)) return { ids: Int32Array.of(greedyPick(logits)), probs: Float64Array.of(1) };
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  const k = o.topK && o.topK > 0 ? Math.min(o.topK, n) : n;
  const truncate = k < n || (o.topP !== undefined && o.topP < 1);
  // candidates in descending logit order (ties by id) when a truncation needs an order;
  // tokens whose weight underflows to 0 can never be drawn, so they are dropped first
  let keep = Array.from({ length: n }, (_, i) => i);
  if (truncate) {
    keep = keep.filter((i) => (logits[i] - max) / o.temperature > -745);
    keep.sort((a, b) => logits[b] - logits[a] || a - b);
    keep = keep.slice(0, k);
  }
  const w = keep.map((i) => Math.exp((logits[i] - max) / o.temperature));
  let sum = w.reduce((a, b) => a + b, 0);
  let m = keep.length;
  if (o.topP !== undefined && o.topP < 1) {
    // smallest prefix whose mass reaches topP (HF keeps at least one token)
    let acc = 0;
    for (m = 0; m < keep.length; ) {
      acc += w[m] / sum;
      m++;
      if (acc >= o.topP) break;
    }
    sum = w.slice(0, m).reduce((a, b) => a + b, 0);
  }
  const ids = new Int32Array(m);
  const probs = new Float64Array(m);
  for (let j = 0; j < m; j++) { ids[j] = keep[j]; probs[j] = w[j] / sum; }
  return { ids, probs };
}

export function probabilityOf(d: Distribution, id: number): number {
  for (let j = 0; j < d.ids.length; j++) if (d.ids[j] === id) return d.probs[j];
  return 0;
}

export function sample(d: Distribution, rng: Rng): number {
  const r = rng.next();
  let acc = 0;
  for (let j = 0; j < d.ids.length; j++) {
    acc += d.probs[j];
    if (r < acc) return d.ids[j];
  }
  return d.ids[d.ids.length - 1];
}

/** normalize(max(p − q, 0)): where speculative sampling draws after a rejection. */
export function residual(p: Distribution, q: Distribution): Distribution {
  const ids: number[] = [];
  const probs: number[] = [];
  let sum = 0;
  for (let j = 0; j < p.ids.length; j++) {
    const v = p.probs[j] - probabilityOf(q, p.ids[j]);
    if (v > 0) { ids.push(p.ids[j]); probs.push(v); sum += v; }
  }
  if (sum <= 0) return p; // p == q: any draw from p is exact
  return { ids: Int32Array.from(ids), probs: Float64Array.from(probs.map((v) => v / sum)) };
}
