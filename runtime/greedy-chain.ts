import { ACCEPT_MAX_ROUNDS, ACCEPT_OUT, ACCEPT_PARAMS } from '../codegen/accept.js';
import { GATE_PARAMS, GATE_ROUNDS, GATE_THRESHOLD } from '../codegen/draft-gate.js';
import { compileDimExpr } from '../compiler/ir/dims.js';
import type { Executor } from './executor.js';

/** What a chain of greedy rounds produced: per round, the tokens it emitted (n accepted + 1) and the drafts it made. */
export interface ChainResult {
  rounds: number[][];
  drafts: number[];
}

/**
 * Greedy speculation rounds chained on the GPU: draft@E ×k, verify@E, then the plan's acceptance
 * kernel (plan.accept, codegen/accept.ts) sets the next round's position and first token, R times
 * in one submission with one readback at the end. A round's output depends only on the GPU state
 * the previous round left, so the tokens are exactly those of R separate rounds.
 */
export class GreedyChain {
  constructor(private readonly ex: Executor) {
    // the params are passed in ACCEPT_PARAMS / GATE_PARAMS order: the plan's kernels must declare that order
    const ds = ex.plan.draftStop;
    const expect: [string | undefined, readonly string[]][] = [[ex.plan.accept.kernel, ACCEPT_PARAMS], [ds?.accept.kernel, ACCEPT_PARAMS], [ds?.gate.kernel, GATE_PARAMS]];
    for (const [kernel, params] of expect) {
      if (kernel === undefined) continue;
      const names = ex.plan.kernels.find((x) => x.id === kernel)?.params;
      if (names?.join() !== params.join()) throw new Error(`internal: the plan's kernel ${kernel} does not take the params ${params.join(', ')}`);
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
   * `stopBelow` > 0: a round drafts on only while its last draft's probability is at least that
   * (codegen/draft-gate.ts); 0, or a plan compiled before plan.draftStop, runs every draft with
   * the plain acceptance kernel.
   */
  async run(cur: number, p: number, k: number, E: number, R: number, profile = false, stopBelow = 0): Promise<ChainResult> {
    if (R < 1 || R > this.maxRounds(E, k)) throw new Error(`internal: ${R} chained rounds of k=${k} do not fit`);
    if (!(stopBelow >= 0 && stopBelow <= 1)) throw new Error(`internal: draft stop probability ${stopBelow} is not in [0, 1]`);
    this.checkPositions(E);
    const ex = this.ex;
    const plan = ex.plan;
    const ds = plan.draftStop;
    // one draft leaves nothing to stop
    const stop = ds && stopBelow > 0 && k > 1 ? ds : undefined;
    const perRound = this.slotsPerRound(E, k);
    ex.writeTokens(0, [cur]);
    // state: position p, no tokens accepted yet
    ex.writeIo(plan.io.acceptState, 0, [p, 0]);
    const draft = ex.entry('draft', E);
    const verify = ex.entry('verify', E);
    const S = draft.stages.length;
    // the range slot of verify's 'newest' stage within a round, which a stopping gate moves to the last draft's row
    const newestAt = S * k + verify.stages.findIndex((st) => st.role === 'newest');
    if (stop) {
      if (newestAt < S * k) throw new Error(`internal: ${verify.name} has no 'newest' stage for a draft stop to move`);
      // the threshold, and the round's first draft counted as made
      ex.writeIo(stop.state, GATE_THRESHOLD, [new Uint32Array(new Float32Array([stopBelow]).buffer)[0], 1]);
    }
    const sub = ex.begin();
    for (let j = 0; j < R; j++) {
      // CPU-side ranges are placeholders at the furthest position this round can reach
      const far = p + j * (k + 1);
      const first = sub.slotsUsed;
      if (profile) sub.section('draft');
      for (let i = 0; i < k; i++) {
        if (stop && i > 0) {
          // once the round stopped, the gate empties draft step i's rows
          const gate: Record<(typeof GATE_PARAMS)[number], number> = { i, stepSlot: first + S * i, stepSlots: S, newestSlot: first + newestAt };
          sub.runKernel(stop.gate, GATE_PARAMS.map((name) => gate[name]));
        }
        sub.run(draft, { p: far, i });
      }
      if (profile) sub.section('verify');
      sub.run(verify, { p: far, k });
      if (sub.slotsUsed !== first + perRound) throw new Error('internal: a round took an unexpected number of range slots');
      const params: Record<(typeof ACCEPT_PARAMS)[number], number> = {
        k, verifyBase: plan.tokenSlots.verifyBase, nextFirst: first + perRound, nextCount: j + 1 < R ? perRound : 0, round: j, pad0: 0, pad1: 0, pad2: 0,
      };
      sub.runKernel(stop?.accept ?? plan.accept, ACCEPT_PARAMS.map((name) => params[name]));
    }
    sub.read(plan.io.acceptState, 0, (ACCEPT_OUT + R * (k + 1)) * 4);
    if (stop) sub.read(stop.state, GATE_ROUNDS * 4, R * 4);
    const [buf, made] = await sub.submit();
    // other work through the draft entries (early exit, sampled rounds, the batch engine) skips the probability
    if (stop) ex.writeIo(stop.state, GATE_THRESHOLD, [0]);
    const drafts = made ? [...new Uint32Array(made)] : Array<number>(R).fill(k);
    const words = new Uint32Array(buf);
    const rounds: number[][] = [];
    let at = ACCEPT_OUT;
    for (let j = 0; j < R; j++) {
      const n = words[2 + j];
      rounds.push([...words.subarray(at, at + n + 1)]);
      at += n + 1;
    }
    if (at - ACCEPT_OUT !== words[1]) throw new Error('internal: accepted token count disagrees with the rounds');
    if (rounds.some((r, j) => r.length - 1 > drafts[j])) throw new Error('internal: a round accepted more drafts than it made');
    return { rounds, drafts };
  }
}
