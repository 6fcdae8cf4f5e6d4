import type { Plan, PlanEntry, PlanStage } from '../compiler/plan.js';
import { entryOf } from '../compiler/ir/stages.js';
import { compileDimExpr } from '../compiler/ir/dims.js';

/**
 * What self-speculative decoding can gain at best on two idealized devices, from the plan's
 * weight bytes per stage and a measured number of tokens per round τ:
 *   - bandwidth-bound (a GPU decoding one sequence): a stage costs reading its weights once,
 *     however many rows it runs; AR pays W_decode per token, a round k·W_draft + W_verify;
 *   - compute-bound (a CPU driver such as lavapipe on a model that fits in cache): a stage costs
 *     its weights times its rows, so verifying k+1 positions costs k+1 times one;
 *   - dispatch-bound (fixed cost per dispatch, whatever its size): AR pays decode's dispatches per
 *     token, a round its drafts', verify's and the acceptance kernel's.
 * Attention over the context and per-dispatch overheads are left out; the embedding counts only
 * the rows it gathers.
 */
export interface SpeculationBounds {
  /** τ · W_decode / (k · W_draft + W_verify). */
  bandwidthBound: number;
  /** τ · W_decode / (k · W_draft + Σ rows · W over verify's stages). */
  computeBound: number;
  /** τ · D_decode / (k · D_draft + D_verify + 1). */
  dispatchBound: number;
}

/** Weight bytes a stage reads (each buffer once; the embedding gather's table not counted). */
export function stageWeightBytes(st: PlanStage, family: Map<string, string>, weightBytes: Map<string, number>): number {
  const seen = new Set<string>();
  let total = 0;
  for (const d of st.dispatches) {
    if (family.get(d.kernel) === 'embed') continue;
    for (const id of d.buffers) {
      const b = weightBytes.get(id);
      if (b !== undefined && !seen.has(id)) { seen.add(id); total += b; }
    }
  }
  return total;
}

export function speculationBounds(plan: Plan, E: number, k: number, tokensPerRound: number): SpeculationBounds {
  const family = new Map(plan.kernels.map((k) => [k.id, k.family]));
  const weightBytes = new Map(plan.buffers.filter((b) => b.kind === 'weight').map((b) => [b.id, b.bytes]));
  const bytes = (st: PlanStage): number => stageWeightBytes(st, family, weightBytes);
  const [decodeEntry, draftEntry, verifyEntry] = [entryOf(plan, 'decode'), entryOf(plan, 'draft', E), entryOf(plan, 'verify', E)];
  const sum = (e: PlanEntry) => e.stages.reduce((s, st) => s + bytes(st), 0);
  const decode = sum(decodeEntry);
  const draft = sum(draftEntry);
  const verify = sum(verifyEntry);
  // verify's stages run 1 (newest) or k+1 (the others) rows
  const rows = (st: PlanStage): number => compileDimExpr(st.range.rowCount)((n) => (n === 'k' ? k : n === 'p' ? 0 : NaN));
  const verifyRows = verifyEntry.stages.reduce((s, st) => s + bytes(st) * rows(st), 0);
  const dispatches = (e: PlanEntry): number => e.stages.reduce((s, st) => s + st.dispatches.length, 0);
  return {
    dispatchBound: (tokensPerRound * dispatches(decodeEntry)) / (k * dispatches(draftEntry) + dispatches(verifyEntry) + 1),
    bandwidthBound: (tokensPerRound * decode) / (k * draft + verify),
    computeBound: (tokensPerRound * decode) / (k * draft + verifyRows),
  };
}
