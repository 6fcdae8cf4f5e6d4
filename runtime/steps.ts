import type { Executor } from './executor.js';
import type { PlanEntry } from '../compiler/plan.js';
import { GreedyChain, type ChainResult } from './greedy-chain.js';

/**
 * The GPU work of generation, one method per kind of submission. Greedy paths keep the loop on
 * the GPU (argmax feeds the next step's embedding through the token buffer) and read back only
 * token ids; sampling paths read the logits rows they need.
 */
export class Steps {
  readonly vocab: number;
  readonly layers: number;
  readonly ctx: number;

  /** Profiling: split greedy rounds into timestamped draft and verify passes. */
  profile = false;

  private chainState?: GreedyChain;
  /** Greedy rounds with acceptance on the GPU (the plan's acceptance kernel). */
  private get chain(): GreedyChain {
    return (this.chainState ??= new GreedyChain(this.ex));
  }

  constructor(readonly ex: Executor) {
    this.vocab = ex.plan.dims.vocab;
    this.layers = ex.plan.dims.layers;
    this.ctx = ex.plan.dims.ctx;
  }

  private get tokens(): string { return this.ex.plan.io.tokens; }
  private get logitsBuf(): string { return this.ex.plan.io.logits; }
  private rowBytes(): number { return this.vocab * 4; }

  private readLogitRows(sub: ReturnType<Executor['begin']>, row: number, count: number): number {
    return sub.read(this.logitsBuf, row * this.rowBytes(), count * this.rowBytes());
  }

  private splitRows(buf: ArrayBuffer, count: number): Float32Array[] {
    return Array.from({ length: count }, (_, r) => new Float32Array(buf, r * this.rowBytes(), this.vocab));
  }

  /** The exit layer an entry is compiled for: undefined (the full model) for none or L. */
  private exit(exitLayer?: number): number | undefined {
    return exitLayer === undefined || exitLayer >= this.layers ? undefined : exitLayer;
  }

  /** The step entry point: decode for the full model, draft@E for exit E. */
  private stepEntry(exitLayer?: number): PlanEntry {
    const E = this.exit(exitLayer);
    return E === undefined ? this.ex.entry('decode') : this.ex.entry('draft', E);
  }

  /**
   * Runs the prompt through all layers (or layers < E for early exit: prefill@E) in chunks and
   * returns the greedy pick for the next position and, if asked, its logits.
   */
  async prefill(ids: number[], opts: { exitLayer?: number; wantLogits?: boolean }): Promise<{ next: number; logits?: Float32Array }> {
    const chunk = this.ex.plan.rows.prefillChunk;
    const E = this.exit(opts.exitLayer);
    const trunk = this.ex.stage('prefill', E, 'trunk');
    const head = this.ex.stage('prefill', E, 'head');
    let result: ArrayBuffer[] = [];
    for (let c0 = 0; c0 < ids.length; c0 += chunk) {
      const T = Math.min(chunk, ids.length - c0);
      this.ex.writeTokens(0, ids.slice(c0, c0 + T));
      const sub = this.ex.begin();
      sub.runStage(trunk, { rowStart: 0, rowCount: T, posBase: c0 });
      if (c0 + T === ids.length) {
        sub.runStage(head, { rowStart: T - 1, rowCount: 1, posBase: c0 });
        // a step's head picks into slot rowStart+1
        sub.read(this.tokens, T * 4, 4);
        if (opts.wantLogits) this.readLogitRows(sub, T - 1, 1);
      }
      result = await sub.submit();
    }
    return {
      next: new Uint32Array(result[0])[0],
      logits: opts.wantLogits ? new Float32Array(result[1]) : undefined,
    };
  }

  /** n greedy steps from token `cur` at position p in one submission (full model, or exit E). */
  async greedySteps(cur: number, p: number, n: number, exitLayer?: number): Promise<number[]> {
    const entry = this.stepEntry(exitLayer);
    this.ex.writeTokens(0, [cur]);
    const sub = this.ex.begin();
    if (this.profile) sub.section(entry.kind === 'decode' ? 'decode' : 'early-exit');
    for (let i = 0; i < n; i++) sub.run(entry, { p, i });
    sub.read(this.tokens, 4, n * 4);
    const [buf] = await sub.submit();
    return [...new Uint32Array(buf)];
  }

  /** One step's logits for token `cur` at position p + i (row i), full model or exit E. */
  async stepLogits(cur: number, p: number, i: number, exitLayer?: number): Promise<Float32Array> {
    const entry = this.stepEntry(exitLayer);
    this.ex.writeTokens(i, [cur]);
    const sub = this.ex.begin();
    sub.run(entry, { p, i });
    this.readLogitRows(sub, i, 1);
    const [buf] = await sub.submit();
    return new Float32Array(buf);
  }

  /** Most greedy rounds of exit E with k drafts that one submission can chain. */
  maxChainedRounds(E: number, k: number): number {
    // profiling takes two timestamped sections per round, of at most 16
    return Math.min(this.chain.maxRounds(E, k), this.profile ? 8 : Infinity);
  }

  /**
   * R greedy rounds in one submission, acceptance on the GPU (see greedy-chain.ts): the tokens
   * each round emits and the drafts it made (fewer than k where its drafting stopped at a draft
   * of probability below `stopBelow`; 0: never). The caller keeps R (k + 1) positions within the context.
   */
  async greedyRounds(cur: number, p: number, k: number, E: number, R: number, stopBelow = 0): Promise<ChainResult> {
    return this.chain.run(cur, p, k, E, R, this.profile, stopBelow);
  }

  /** Verify's logits for the k+1 positions whose tokens are in slots 0..k. */
  async verifyLogits(tokens: number[], p: number, E: number): Promise<Float32Array[]> {
    const k = tokens.length - 1;
    this.ex.writeTokens(0, tokens);
    const sub = this.ex.begin();
    sub.run(this.ex.entry('verify', E), { p, k });
    this.readLogitRows(sub, 0, k + 1);
    const [buf] = await sub.submit();
    return this.splitRows(buf, k + 1);
  }

  /** Logits of every position of `ids` (or the last), from the full model or through exit E. */
  async scoreAll(ids: number[], exitLayer: number | undefined, allPositions: boolean): Promise<Float32Array[]> {
    const chunk = this.ex.plan.rows.prefillChunk;
    const E = this.exit(exitLayer);
    const trunk = this.ex.stage('prefill', E, 'trunk');
    const head = this.ex.stage('prefill', E, 'head');
    const out: Float32Array[] = [];
    for (let c0 = 0; c0 < ids.length; c0 += chunk) {
      const T = Math.min(chunk, ids.length - c0);
      const lastChunk = c0 + T === ids.length;
      this.ex.writeTokens(0, ids.slice(c0, c0 + T));
      const sub = this.ex.begin();
      sub.runStage(trunk, { rowStart: 0, rowCount: T, posBase: c0 });
      if (allPositions || lastChunk) {
        const [r0, n] = allPositions ? [0, T] : [T - 1, 1];
        sub.runStage(head, { rowStart: r0, rowCount: n, posBase: c0 });
        this.readLogitRows(sub, r0, n);
        out.push(...this.splitRows((await sub.submit())[0], n));
      } else {
        await sub.submit();
      }
    }
    return out;
  }
}
