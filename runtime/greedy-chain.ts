import { ACCEPT_BINDINGS, ACCEPT_MAX_ROUNDS, ACCEPT_OUT, ACCEPT_PARAMS, acceptStateBytes, emitAccept } from '../codegen/accept.js';
import { compileDimExpr } from '../compiler/ir/dims.js';
import type { Executor } from './executor.js';
import { compilePipelines } from './pipelines.js';

const U = GPUBufferUsage;

/** What a chain of greedy rounds produced: per round, the tokens it emitted (n accepted + 1). */
export interface ChainResult {
  rounds: number[][];
}

/**
 * Greedy speculation rounds chained on the GPU: draft@E ×k, verify@E, then the acceptance kernel
 * (codegen/accept.ts) sets the next round's position and first token, R times in one submission
 * with one readback at the end. A round's output depends only on the GPU state the previous
 * round left, so the tokens are exactly those of R separate rounds.
 */
export class GreedyChain {
  private pipeline?: GPUComputePipeline;
  private readonly state: GPUBuffer;
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly params = new Map<string, GPUBuffer>();

  constructor(private readonly ex: Executor) {
    this.state = ex.ownBuffer({ size: acceptStateBytes(ex.plan.rows.kMax), usage: U.STORAGE | U.COPY_DST | U.COPY_SRC, label: 'accept state' });
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

  private async ensurePipeline(E: number): Promise<GPUComputePipeline> {
    // the acceptance kernel rewrites posBase only: every stage of a round must sit at p
    for (const e of this.checkedExits.has(E) ? [] : [this.ex.entry('draft', E), this.ex.entry('verify', E)]) {
      for (const st of e.stages) {
        const f = compileDimExpr(st.range.posBase);
        if (f(() => 0) !== 0 || f(() => 1000) !== 1000) throw new Error(`internal: ${e.name}/${st.name} posBase ${st.range.posBase} is not p`);
      }
    }
    this.checkedExits.add(E);
    if (this.pipeline) return this.pipeline;
    const pipelines = await compilePipelines(this.ex.device, [{ id: 'accept', wgsl: emitAccept(), bindings: ACCEPT_BINDINGS }]);
    this.pipeline = pipelines.get('accept')!;
    return this.pipeline;
  }

  private bindGroup(pipeline: GPUComputePipeline, values: number[]): GPUBindGroup {
    const key = values.join(',');
    let bg = this.groups.get(key);
    if (bg) return bg;
    const d = this.ex.device;
    let pb = this.params.get(key);
    if (!pb) {
      pb = this.ex.ownBuffer({ size: ACCEPT_PARAMS.length * 4, usage: U.UNIFORM | U.COPY_DST, label: `accept ${key}` });
      d.queue.writeBuffer(pb, 0, new Uint32Array(values));
      this.params.set(key, pb);
    }
    // in ACCEPT_BINDINGS order
    const buffers = [pb, this.ex.buffer(this.ex.plan.io.tokens), this.state, this.ex.ranges.buffer];
    bg = d.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    this.groups.set(key, bg);
    return bg;
  }

  /**
   * R rounds from token `cur` at position p with k drafts each. The caller guarantees that
   * R (k + 1) positions fit in the context: ranges are bounds-checked at their furthest.
   */
  async run(cur: number, p: number, k: number, E: number, R: number, profile = false): Promise<ChainResult> {
    if (R < 1 || R > this.maxRounds(E, k)) throw new Error(`internal: ${R} chained rounds of k=${k} do not fit`);
    const pipeline = await this.ensurePipeline(E);
    const ex = this.ex;
    const perRound = this.slotsPerRound(E, k);
    ex.writeTokens(0, [cur]);
    ex.device.queue.writeBuffer(this.state, 0, new Uint32Array([p, 0]));
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
      const next = j + 1 < R ? perRound : 0;
      sub.dispatch(pipeline, this.bindGroup(pipeline, [k, ex.plan.tokenSlots.verifyBase, first + perRound, next, j, 0, 0, 0]));
    }
    sub.readFrom(this.state, 0, (ACCEPT_OUT + R * (k + 1)) * 4);
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
