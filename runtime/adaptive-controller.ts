/**
 * Per-sequence choice of the exit E and draft count k of self-speculative rounds (strategy
 * 'adaptive'). Pure: no GPU, no clock, deterministic; one object per generated sequence.
 *
 * Model. A draft at exit E is accepted with probability α_E, independently of its place in the
 * round, so a round of k drafts emits on average
 *     τ(α, k) = 1 + α + … + α^k = (1 − α^(k+1)) / (1 − α)
 * tokens (the accepted drafts and the verifier's own token) and costs c(E, k) decode steps
 * (runtime/round-cost.ts, from the plan). Autoregressive decoding emits one token per decode
 * step, so τ / c is the expected speedup. The controller takes the exit
 *     E = argmax_E max_k τ(α̂_E⁺, k) / c(E, k)        (optimistic α̂⁺, below)
 * among the exits it may use, and for it k = argmax_k τ(α̂_E, k) / c(E, k), k in 1..kMax, at
 * the estimate itself (optimism only decides which exit to learn about).
 *
 * Estimate. α̂_E is the mean of a Beta posterior over exit E's draft outcomes, exponentially
 * forgotten: after each round of n accepted drafts out of k, a_E ← λ a_E + n and b_E ← λ b_E +
 * [n < k] (drafts after the first rejection are unobserved), λ = 2^(−1/halfLife) per round;
 * α̂_E = (a_E + a₀) / (a_E + b_E + a₀ + b₀) with the prior (a₀, b₀), raised to the largest α̂ of
 * a shallower exit: a deeper exit's draft agrees with the full model at least about as often.
 *
 * The counts (a_E, b_E) may start from an earlier sequence's (`history`, `counts()`): the model's
 * acceptance history then carries from one sequence to the next, forgotten at the same rate.
 *
 * Exploration (optimism, UCB-style): α̂_E⁺ = α̂_E + explore · sd_E, with sd_E the posterior's
 * standard deviation, so rarely tried exits look better than their mean until tried. When the
 * optimistic exit differs from the best exit at the means, the controller is exploring and asks
 * for a quarter of `maxRounds` chained rounds (feedback soon); otherwise for `maxRounds`.
 *
 * Measured cost. The plan's c(E, k) is a shape fitted to one profile; the rounds' own wall-clock
 * times (`recordTime`, fed by the caller: the controller reads no clock) correct it. Every
 * measurement of a pair gives a scale s = ms per round / c(E, k), whose forgotten mean ŝ turns
 * the model into milliseconds; a pair's cost is then its forgotten mean time per round shrunk
 * toward ŝ · c(E, k) with a prior worth `timePrior` rounds:
 *     t̂(E, k) = (w_Ek · m_Ek + n₀ · ŝ · c(E, k)) / (w_Ek + n₀)
 * so pairs never run keep the model's ranking, and pairs that ran are ranked by what they cost.
 * Rates are τ / t̂: tokens per millisecond instead of speedups, which ranks pairs the same way.
 */
export interface ControllerOptions {
  /** The exits it may draft at (compiled exits). */
  exits: number[];
  /** Largest k. */
  kMax: number;
  /** c(E, k): cost of a round in decode steps. */
  roundCost: (E: number, k: number) => number;
  /** Rounds one choice may chain when exploiting (≥ 1). */
  maxRounds: number;
  /** Rounds after which an observation weighs half (default 16). */
  halfLife?: number;
  /** Prior acceptance mean and strength in draft outcomes (default 0.5, 2). */
  prior?: { mean: number; strength: number };
  /** Standard deviations of optimism (default 1; 0: pure exploitation). */
  explore?: number;
  /** Starting counts per exit (accepted, rejected drafts), e.g. an earlier sequence's counts(). */
  history?: ReadonlyMap<number, Counts>;
  /** Starting measured times, e.g. an earlier sequence's times(). */
  timeHistory?: RoundTimes;
  /** Rounds of measurement a pair's modelled cost is worth (default 16: one slow submission of 8 rounds moves it by a third). */
  timePrior?: number;
}

/** Forgotten wall-clock measurements of one pair's rounds. */
export interface PairTime {
  E: number;
  k: number;
  /** Forgotten weight (rounds). */
  w: number;
  /** Weighted sum of milliseconds per round. */
  ms: number;
}

/** Forgotten wall-clock measurements of rounds: per pair, and the model's scale. */
export interface RoundTimes {
  pairs: readonly PairTime[];
  /** Forgotten weight and weighted sum of the scale ms per round / c(E, k). */
  scale: { w: number; sum: number };
}

/** Forgotten counts of one exit's draft outcomes. */
export interface Counts {
  accepted: number;
  rejected: number;
}

export interface Choice {
  E: number;
  k: number;
  /** Rounds to chain with this choice. */
  rounds: number;
}

/** Expected tokens of a round with k drafts each accepted with probability α. */
export function expectedTokens(alpha: number, k: number): number {
  return alpha >= 1 ? k + 1 : (1 - alpha ** (k + 1)) / (1 - alpha);
}

const pairKey = (E: number, k: number): string => `${E},${k}`;

export class AdaptiveController {
  private readonly a = new Map<number, number>();
  private readonly b = new Map<number, number>();
  private readonly decay: number;
  private readonly a0: number;
  private readonly b0: number;
  private readonly explore: number;
  /** Rounds run at each exit and at each k. */
  readonly roundsByExit = new Map<number, number>();
  readonly roundsByK = new Map<number, number>();

  private readonly timed = new Map<string, PairTime>();
  private scaleW = 0;
  private scaleSum = 0;

  constructor(private readonly o: ControllerOptions) {
    if (!o.exits.length) throw new Error('internal: the adaptive controller needs at least one exit');
    if (!(o.kMax >= 1) || !(o.maxRounds >= 1)) throw new Error('internal: kMax and maxRounds must be ≥ 1');
    this.decay = 2 ** (-1 / (o.halfLife ?? 16));
    const prior = o.prior ?? { mean: 0.5, strength: 2 };
    this.a0 = prior.mean * prior.strength;
    this.b0 = (1 - prior.mean) * prior.strength;
    this.explore = o.explore ?? 1;
    for (const E of o.exits) {
      const h = o.history?.get(E);
      this.a.set(E, h?.accepted ?? 0);
      this.b.set(E, h?.rejected ?? 0);
    }
    if (o.timeHistory) {
      for (const v of o.timeHistory.pairs) this.timed.set(pairKey(v.E, v.k), { ...v });
      this.scaleW = o.timeHistory.scale.w;
      this.scaleSum = o.timeHistory.scale.sum;
    }
  }

  /** The measured times so far, to start another sequence's controller from. */
  times(): RoundTimes {
    return { pairs: [...this.timed.values()].map((v) => ({ ...v })), scale: { w: this.scaleW, sum: this.scaleSum } };
  }

  /**
   * Wall-clock time of `rounds` rounds of (E, k) run together (one chained submission): ms per
   * round. Forgotten at the acceptance's rate per round.
   */
  recordTime(E: number, k: number, msPerRound: number, rounds: number): void {
    if (!(msPerRound > 0) || !Number.isFinite(msPerRound) || !(rounds >= 1)) throw new Error(`internal: a round time of ${msPerRound} ms over ${rounds} rounds`);
    const d = this.decay ** rounds;
    const t = this.timed.get(pairKey(E, k)) ?? { E, k, w: 0, ms: 0 };
    this.timed.set(pairKey(E, k), { E, k, w: d * t.w + rounds, ms: d * t.ms + rounds * msPerRound });
    this.scaleW = d * this.scaleW + rounds;
    this.scaleSum = d * this.scaleSum + rounds * (msPerRound / this.o.roundCost(E, k));
  }

  /** The cost of a round of (E, k): the model's c(E, k) until a time is measured, then milliseconds (see Measured cost). */
  cost(E: number, k: number): number {
    const model = this.o.roundCost(E, k);
    if (this.scaleW <= 0) return model;
    const prior = (this.scaleSum / this.scaleW) * model;
    const n0 = this.o.timePrior ?? 16;
    const t = this.timed.get(pairKey(E, k));
    return t ? (t.ms + n0 * prior) / (t.w + n0) : prior;
  }

  /** The current counts per exit, to start another sequence's controller from. */
  counts(): Map<number, Counts> {
    return new Map(this.o.exits.map((E) => [E, { accepted: this.a.get(E)!, rejected: this.b.get(E)! }]));
  }

  /** Exit E's own posterior: mean and standard deviation. */
  private posterior(E: number): { mean: number; sd: number } {
    const a = this.a.get(E)! + this.a0;
    const b = this.b.get(E)! + this.b0;
    const n = a + b;
    return { mean: a / n, sd: Math.sqrt((a * b) / (n * n * (n + 1))) };
  }

  /** The acceptance estimate of exit E: its mean raised to shallower exits' means, its own sd. */
  acceptance(E: number): { mean: number; sd: number } {
    const own = this.posterior(E);
    const below = this.o.exits.filter((x) => x < E).map((x) => this.posterior(x).mean);
    return { mean: Math.max(own.mean, ...below), sd: own.sd };
  }

  /** Expected tokens per unit of cost of (E, k) at acceptance α (before any time is measured: the speedup over autoregressive decoding). */
  rate(E: number, k: number, alpha: number): number {
    return expectedTokens(alpha, k) / this.cost(E, k);
  }

  /** The best k at exit E for acceptance α, and its rate. */
  bestK(E: number, alpha: number): { k: number; v: number } {
    let best = { k: 1, v: -Infinity };
    for (let k = 1; k <= this.o.kMax; k++) {
      const v = this.rate(E, k, alpha);
      if (v > best.v) best = { k, v };
    }
    return best;
  }

  private bestExit(optimism: number): number {
    let best = { E: this.o.exits[0], v: -Infinity };
    for (const E of this.o.exits) {
      const { mean, sd } = this.acceptance(E);
      const { v } = this.bestK(E, Math.min(1, mean + optimism * sd));
      if (v > best.v) best = { E, v };
    }
    return best.E;
  }

  /** The next choice of exit, draft count and chained rounds. */
  next(): Choice {
    const E = this.bestExit(this.explore);
    const exploring = E !== this.bestExit(0);
    return { E, k: this.bestK(E, this.acceptance(E).mean).k, rounds: exploring ? Math.ceil(this.o.maxRounds / 4) : this.o.maxRounds };
  }

  /** One round's outcome: n of its k drafts accepted at exit E. */
  record(E: number, k: number, n: number): void {
    if (!this.a.has(E) || !(n >= 0 && n <= k)) throw new Error(`internal: round E=${E} k=${k} n=${n} is not one the controller can record`);
    this.a.set(E, this.decay * this.a.get(E)! + n);
    this.b.set(E, this.decay * this.b.get(E)! + (n < k ? 1 : 0));
    this.roundsByExit.set(E, (this.roundsByExit.get(E) ?? 0) + 1);
    this.roundsByK.set(k, (this.roundsByK.get(k) ?? 0) + 1);
  }
}
