import { ACCEPT_MAX_ROUNDS, ACCEPT_OUT, ACCEPT_PARAMS } from '../codegen/accept.js';
import { compileDimExpr } from '../compiler/ir/dims.js';
import type { Executor } from './executor.js';

/** What a chain of greedy rounds produced: per round, the tokens it emitted (n accepted + 1). */
export interface ChainResult {
  rounds: number[][];
}

/**
 * Greedy speculation rounds chained on the GPU: draft@E ×k, verify@E, then the plan's acceptance
 * kernel (plan.accept, codegen/accept.ts) sets the next round's position and first token, R times
 * in one submission with one readback at the end. A round's output depends only on the GPU state
 * the previous round left, so the tokens are exactly those of R separate rounds.
 */
export class GreedyChain {
  constructor(private readonly ex: Executor) {
    // the params are passed in ACCEPT_PARAMS order: the plan's kernel must declare that order
    const names = ex.plan.kernels.find((x) => x.id === ex.plan.accept.kernel)?.params;
    if (names?.join() !== ACCEPT_PARAMS.join()) {
      throw new Error(`internal: the plan's acceptance kernel ${ex.plan.accept.kernel} does not take the params ${ACCEPT_PARAMS.join(', ')}`);
    }
  }

  /** Range slots one round of exit E with k drafts takes. */
  slotsPerRound(E: number, k: number): number {
    return this.ex.entry('draft', E).stages.length * k + this.ex.entry('verify', E).stages.length;
  }

  /** Most rounds one submission can hold. */
  maxRounds(E: number, k: number): number {
    return Math.min(ACCEPT_MAX_ROUNDS, Math.floor(this.ex.plan.rows.rangeSlots / this.slotsPerRound(E, k)));
  }

  private readonly checkedExits = new Set<number>();

  /** The acceptance kernel rewrites posBase only: every stage of a round must sit at p. */
  private checkPositions(E: number): void {
    if (this.checkedExits.has(E)) return;
    for (const e of [this.ex.entry('draft', E), this.ex.entry('verify', E)]) {
      for (const st of e.stages) {
        const f = compileDimExpr(st.range.posBase);
        if (f(() => 0) !== 0 || f(() => 1000) !== 1000) throw new Error(`internal: ${e.name}/${st.name} posBase ${st.range.posBase} is not p`);
      }
    }
    this.checkedExits.add(E);
  }

  /**
   * R rounds from token `cur` at position p with k drafts each. The caller guarantees that
   * R (k + 1) positions fit in the context: ranges are bounds-checked at their furthest.
   */
  async run(cur: number, p: number, k: number, E: number, R: number, profile = false): Promise<ChainResult> {
    if (R < 1 || R > this.maxRounds(E, k)) throw new Error(`internal: ${R} chained rounds of k=${k} do not fit`);
    this.checkPositions(E);
    const ex = this.ex;
    const plan = ex.plan;
    const perRound = this.slotsPerRound(E, k);
    ex.writeTokens(0, [cur]);
    // state: position p, no tokens accepted yet
    ex.writeIo(plan.io.acceptState, 0, [p, 0]);
    const draft = ex.entry('draft', E);
    const verify = ex.entry('verify', E);
    const sub = ex.begin();
    for (let j = 0; j < R; j++) {
      // CPU-side ranges are placeholders at the furthest position this round can reach
      const far = p + j * (k + 1);
      const first = sub.slotsUsed;
      if (profile) sub.section('draft');
      for (let i = 0; i < k; i++) sub.run(draft, { p: far, i });
      if (profile) sub.section('verify');
      sub.run(verify, { p: far, k });
      if (sub.slotsUsed !== first + perRound) throw new Error('internal: a round took an unexpected number of range slots');
      const params: Record<(typeof ACCEPT_PARAMS)[number], number> = {
        k, verifyBase: plan.tokenSlots.verifyBase, nextFirst: first + perRound, nextCount: j + 1 < R ? perRound : 0, round: j, pad0: 0, pad1: 0, pad2: 0,
      };
      sub.runKernel(plan.accept, ACCEPT_PARAMS.map((name) => params[name]));
    }
    sub.read(plan.io.acceptState, 0, (ACCEPT_OUT + R * (k + 1)) * 4);
    const [buf] = await sub.submit();
    const words = new Uint32Array(buf);
    const rounds: number[][] = [];
    let at = ACCEPT_OUT;
    for (let j = 0; j < R; j++) {
      const n = words[2 + j];
      rounds.push([...words.subarray(at, at + n + 1)]);
      at += n + 1;
    }
    if (at - ACCEPT_OUT !== words[1]) throw new Error('internal: accepted token count disagrees with the rounds');
    return { rounds };
  }
}
