import type { Plan, PlanEntry, PlanStage } from '../compiler/plan.js';
import { entryOf } from '../compiler/ir/stages.js';
import { compileDimExpr } from '../compiler/ir/dims.js';
import { stageWeightBytes } from './speculation-bounds.js';

/**
 * The cost of a speculation round in units of one autoregressive decode step, from the plan: a
 * stage costs a share `dispatchShare` in proportion to its dispatches (a fixed cost each, whatever
 * its rows) and the rest in proportion to the weight bytes it reads, each row after the first
 * adding `extraRowCost` of that again:
 *   c(stage, r) = s · D_stage / D_decode + (1 − s) · W_stage · (1 + ρ (r − 1)) / W_decode
 *   round(E, k) = k · Σ c(draft@E stages, 1) + Σ c(verify@E stage, its rows at k) + c(accept)
 * s = 0, ρ = 0 is the bandwidth-bound GPU of speculation-bounds.ts, s = 1 its dispatch-bound
 * device, s = 0, ρ = 1 its compute-bound one.
 */
export interface CostShape {
  /** Share of a decode step's time that is fixed per dispatch, in [0, 1]. */
  dispatchShare: number;
  /** What each verify row after the first adds to the weight-bound part of a stage, in [0, 1]. */
  extraRowCost: number;
}

/**
 * Fitted to lavapipe's profile of tiny-code (BENCHMARKS.md, "Where the time goes"): a draft step at
 * E=2 is 0.32 decode steps, verify@2 with k=2 is 1.31.
 */
export const LAVAPIPE_COST_SHAPE: CostShape = { dispatchShare: 0.67, extraRowCost: 0.57 };

export class RoundCost {
  private readonly family: Map<string, string>;
  private readonly weightBytes: Map<string, number>;
  private readonly decodeDispatches: number;
  private readonly decodeBytes: number;
  private readonly cache = new Map<string, number>();

  constructor(private readonly plan: Plan, private readonly shape: CostShape = LAVAPIPE_COST_SHAPE) {
    this.family = new Map(plan.kernels.map((k) => [k.id, k.family]));
    this.weightBytes = new Map(plan.buffers.filter((b) => b.kind === 'weight').map((b) => [b.id, b.bytes]));
    const decode = entryOf(plan, 'decode');
    this.decodeDispatches = decode.stages.reduce((s, st) => s + st.dispatches.length, 0);
    this.decodeBytes = decode.stages.reduce((s, st) => s + this.bytes(st), 0);
  }

  private bytes(st: PlanStage): number { return stageWeightBytes(st, this.family, this.weightBytes); }

  private stageCost(st: PlanStage, rows: number): number {
    const { dispatchShare: s, extraRowCost: rho } = this.shape;
    return s * (st.dispatches.length / this.decodeDispatches) + (1 - s) * (this.bytes(st) * (1 + rho * (rows - 1))) / this.decodeBytes;
  }

  private entryCost(e: PlanEntry, k: number): number {
    return e.stages.reduce((sum, st) => sum + this.stageCost(st, compileDimExpr(st.range.rowCount)((n) => (n === 'k' ? k : n === 'p' ? 0 : NaN))), 0);
  }

  /** One draft step at exit E. */
  draft(E: number): number { return this.entryCost(entryOf(this.plan, 'draft', E), 0); }

  /** Verify at exit E of k drafts (k + 1 positions). */
  verify(E: number, k: number): number { return this.entryCost(entryOf(this.plan, 'verify', E), k); }

  /** A whole round: k drafts, verify and the acceptance kernel's one dispatch. */
  round(E: number, k: number): number {
    const key = `${E},${k}`;
    let c = this.cache.get(key);
    if (c === undefined) {
      c = k * this.draft(E) + this.verify(E, k) + this.shape.dispatchShare / this.decodeDispatches;
      this.cache.set(key, c);
    }
    return c;
  }
}
