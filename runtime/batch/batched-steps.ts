import '../gpu-globals.js';
import type { Executor } from '../executor.js';
import type { SeqRowTable } from './seq-rows.js';
import type { Submission } from '../submission.js';
import { SEQ_ROW_BYTES } from '../../codegen/kernel.js';
import {
  BATCH_ACCEPT_MAX_ROUNDS, BATCH_ACCEPT_MAX_SEQS, BATCH_ACCEPT_PARAMS, batchAcceptOutBase, batchAcceptSeqBase,
} from '../../codegen/batch-accept.js';

/** One sequence's row in a batched step: its KV slot, its newest token and that token's position. */
export interface SeqStep {
  slot: number;
  cur: number;
  p: number;
}

/**
 * GPU work over rows of several sequences in one submission. Every stage runs at posBase 0 and
 * the SeqRows table (seq-rows.ts) puts each row at its sequence's position and KV slot, so a
 * row's arithmetic is what it would be alone: the kernels are the ones the single-sequence path
 * runs, and none of them mixes rows.
 */
export class BatchedSteps {
  /** Draft picks of a round (or chained steps' picks) at 0, the round's first tokens at inputsAt. */
  private readonly scratch: GPUBuffer;
  private readonly inputsAt: number;

  constructor(private readonly ex: Executor, private readonly table: SeqRowTable) {
    this.inputsAt = ex.plan.rows.max * 4;
    this.scratch = ex.ownBuffer({ size: 2 * ex.plan.rows.max * 4, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label: 'batch token scratch' });
  }

  /** Rows one submission may hold (the activation rows, and positions posBase 0 + rows must be in the context). */
  get maxRows(): number {
    return Math.min(this.ex.plan.rows.max, this.ex.plan.dims.ctx);
  }

  /**
   * One full-model step per sequence (row s = sequence s): the greedy pick of each and, if
   * asked, its logits. Runs the prefill entry's layer and head stages over the rows.
   */
  async decode(seqs: SeqStep[], wantLogits: boolean): Promise<{ next: number[]; logits?: Float32Array[] }> {
    const N = seqs.length;
    if (N > this.maxRows) throw new Error(`internal: ${N} rows in one batched step`);
    const ex = this.ex;
    this.table.rows(seqs.map((s, row) => ({ row, slot: s.slot, pos: s.p })));
    ex.writeTokens(0, seqs.map((s) => s.cur));
    const sub = ex.begin();
    sub.runStage(ex.stage('prefill', undefined, 'trunk'), { rowStart: 0, rowCount: N, posBase: 0 });
    sub.runStage(ex.stage('prefill', undefined, 'head'), { rowStart: 0, rowCount: N, posBase: 0 });
    sub.read(ex.plan.io.tokens, 4, N * 4); // the full head picks row r into token slot r + 1
    const V = ex.plan.dims.vocab;
    if (wantLogits) sub.read(ex.plan.io.logits, 0, N * V * 4);
    const out = await sub.submit();
    return {
      next: [...new Uint32Array(out[0])],
      logits: wantLogits ? seqs.map((_, r) => new Float32Array(out[1], r * V * 4, V)) : undefined,
    };
  }

  /** Most greedy steps one submission chains for N sequences (the picks are kept in the scratch). */
  maxChainedSteps(N: number): number {
    return Math.max(1, Math.min(Math.floor(this.ex.plan.rows.max / N), Math.floor(this.ex.plan.rows.rangeSlots / 2)));
  }

  /**
   * C greedy full-model steps per sequence in one submission: step j runs at posBase j, so row s
   * sits at p_s + j, and each step's picks (token slots 1..N) are kept in the scratch and copied
   * back to slots 0..N-1 as the next step's input. The caller keeps p_s + C within the context.
   */
  async decodeChain(seqs: SeqStep[], C: number): Promise<number[][]> {
    const N = seqs.length;
    if (N > this.maxRows || C > this.maxChainedSteps(N)) throw new Error(`internal: ${C} chained steps of ${N} rows`);
    const ex = this.ex;
    const tokens = ex.buffer(ex.plan.io.tokens);
    this.table.rows(seqs.map((s, row) => ({ row, slot: s.slot, pos: s.p })));
    ex.writeTokens(0, seqs.map((s) => s.cur));
    const trunk = ex.stage('prefill', undefined, 'trunk');
    const head = ex.stage('prefill', undefined, 'head');
    const sub = ex.begin();
    for (let j = 0; j < C; j++) {
      sub.runStage(trunk, { rowStart: 0, rowCount: N, posBase: j });
      sub.runStage(head, { rowStart: 0, rowCount: N, posBase: j });
      sub.copy(tokens, 4, this.scratch, j * N * 4, N * 4);
      if (j + 1 < C) sub.copy(this.scratch, j * N * 4, tokens, 0, N * 4);
    }
    sub.readFrom(this.scratch, 0, C * N * 4);
    const picks = new Uint32Array((await sub.submit())[0]);
    return seqs.map((_, s) => Array.from({ length: C }, (_, j) => picks[j * N + s]));
  }

  /**
   * One greedy speculation round of exit E with k drafts for every sequence: row i·N + s holds
   * sequence s's token i of the round (its current token, then its drafts), so each draft step
   * is one dispatch range over all sequences and verify covers all (k + 1)·N rows. Returns, per
   * sequence, the tokens the round emits: the accepted drafts and verify's next token.
   */
  async speculate(seqs: SeqStep[], k: number, E: number): Promise<number[][]> {
    const N = seqs.length;
    const rows = (k + 1) * N;
    if (rows > this.maxRows) throw new Error(`internal: ${rows} rows in one batched round`);
    const ex = this.ex;
    this.roundTable(seqs, k);
    ex.writeTokens(0, seqs.map((s) => s.cur));
    const sub = ex.begin();
    this.encodeRound(sub, N, k, E);
    sub.readFrom(this.scratch, 0, k * N * 4);
    sub.read(ex.plan.io.tokens, ex.plan.tokenSlots.verifyBase * 4, rows * 4);
    const [draftBuf, pickBuf] = await sub.submit();
    const drafts = new Uint32Array(draftBuf);
    const picks = new Uint32Array(pickBuf);
    return seqs.map((_, s) => {
      // draft i sits at position p + i + 1; verify's pick at row i is the token after position p + i
      const out: number[] = [];
      for (let i = 0; i < k && drafts[i * N + s] === picks[i * N + s]; i++) out.push(drafts[i * N + s]);
      out.push(picks[out.length * N + s]);
      return out;
    });
  }

  /** Most batched rounds of N sequences (exit E, k drafts) one submission chains: 1 without the plan's batched acceptance kernel. */
  maxChainedRounds(N: number, k: number, E: number): number {
    const plan = this.ex.plan;
    if (!plan.batchAccept || N > BATCH_ACCEPT_MAX_SEQS) return 1;
    // the params go in BATCH_ACCEPT_PARAMS order: the plan's kernel must declare that order
    const names = plan.kernels.find((x) => x.id === plan.batchAccept!.kernel)?.params;
    if (names?.join() !== BATCH_ACCEPT_PARAMS.join()) throw new Error(`internal: the plan's batched acceptance kernel does not take the params ${BATCH_ACCEPT_PARAMS.join(', ')}`);
    // a stage run takes one range slot: k draft steps and verify's stages
    const perRound = k + this.ex.entry('verify', E).stages.length;
    return Math.max(1, Math.min(BATCH_ACCEPT_MAX_ROUNDS, Math.floor(plan.rows.rangeSlots / perRound)));
  }

  /**
   * R greedy speculation rounds of every sequence in one submission: after each round's verify,
   * the plan's batched acceptance kernel (codegen/batch-accept.ts) accepts per sequence, puts
   * each sequence's next token in its input slot and writes the next round's row positions into
   * an image of the SeqRows table, copied into the uniform before the next round. A round's
   * output depends only on what the previous round left on the GPU, so the tokens are those of
   * R separate rounds. Returns, per sequence, the tokens each round emitted. The caller keeps
   * every sequence's p + R (k + 1) within the context.
   */
  async speculateChain(seqs: SeqStep[], k: number, E: number, R: number): Promise<number[][][]> {
    const N = seqs.length;
    const rows = (k + 1) * N;
    if (rows > this.maxRows || R < 1 || R > this.maxChainedRounds(N, k, E)) throw new Error(`internal: ${R} chained rounds of ${N} sequences with k=${k}`);
    const ex = this.ex;
    const plan = ex.plan;
    const call = plan.batchAccept!;
    const kMax = plan.rows.kMax;
    const words = this.roundTable(seqs, k);
    // the state: the SeqRows image, each sequence at its position with nothing accepted yet
    const state = new Uint32Array(batchAcceptSeqBase(plan.rows.max, kMax, N));
    state.set(words.subarray(0, plan.rows.max * 4));
    seqs.forEach((q, s) => state.set([q.p, 0], batchAcceptSeqBase(plan.rows.max, kMax, s)));
    ex.writeIo(call.buffers[1], 0, state);
    ex.writeTokens(0, seqs.map((s) => s.cur));
    const stateBuf = ex.buffer(call.buffers[1]);
    const sub = ex.begin();
    for (let j = 0; j < R; j++) {
      this.encodeRound(sub, N, k, E);
      const params: Record<(typeof BATCH_ACCEPT_PARAMS)[number], number> = {
        k, n: N, verifyBase: plan.tokenSlots.verifyBase, round: j, pad0: 0, pad1: 0, pad2: 0, pad3: 0,
      };
      sub.runKernel(call, BATCH_ACCEPT_PARAMS.map((name) => params[name]));
      if (j + 1 < R) sub.copy(stateBuf, 0, ex.seqRows, 0, rows * SEQ_ROW_BYTES);
    }
    const first = batchAcceptSeqBase(plan.rows.max, kMax, 0);
    sub.readFrom(stateBuf, first * 4, (batchAcceptSeqBase(plan.rows.max, kMax, N) - first) * 4);
    const out = new Uint32Array((await sub.submit())[0]);
    return seqs.map((_, s) => {
      const at = batchAcceptSeqBase(plan.rows.max, kMax, s) - first;
      const rounds: number[][] = [];
      let o = batchAcceptOutBase(plan.rows.max, kMax, s) - first;
      for (let j = 0; j < R; j++) {
        const n = out[at + 2 + j];
        rounds.push([...out.subarray(o, o + n + 1)]);
        o += n + 1;
      }
      if (o - (batchAcceptOutBase(plan.rows.max, kMax, s) - first) !== out[at + 1]) throw new Error('internal: batched accepted token count disagrees with the rounds');
      return rounds;
    });
  }

  /** Row i·N + s holds sequence s's token i of a round, at position p_s + i, in its slot. */
  private roundTable(seqs: SeqStep[], k: number): Uint32Array {
    const N = seqs.length;
    const table = [];
    for (let i = 0; i <= k; i++) for (const [s, q] of seqs.entries()) table.push({ row: i * N + s, slot: q.slot, pos: q.p + i });
    return this.table.rows(table);
  }

  /**
   * One round's draft and verify work, from the sequences' first tokens in token slots 0..N-1;
   * leaves the drafts in the scratch (draft i of sequence s at i·N + s) and in token slots
   * N..(k+1)·N-1, and verify's picks at verifyBase + row.
   */
  private encodeRound(sub: Submission, N: number, k: number, E: number): void {
    const ex = this.ex;
    const tokens = ex.buffer(ex.plan.io.tokens);
    const draft = ex.stage('draft', E, 'step');
    const rows = (k + 1) * N;
    // the round's first tokens, kept: draft picks overwrite token slots 1..N
    sub.copy(tokens, 0, this.scratch, this.inputsAt, N * 4);
    for (let i = 0; i < k; i++) {
      sub.runStage(draft, { rowStart: i * N, rowCount: N, posBase: 0 });
      // the exit head picks row r into token slot r + 1, over the inputs of the next rows: the
      // picks are kept in the scratch (drafts i of every sequence) and copied to the input
      // slots of draft step i + 1, rows (i+1)·N + s
      sub.copy(tokens, (i * N + 1) * 4, this.scratch, i * N * 4, N * 4);
      sub.copy(this.scratch, i * N * 4, tokens, (i + 1) * N * 4, N * 4);
    }
    // every row's input token back in its slot, for a verify that embeds the round's tokens again
    sub.copy(this.scratch, this.inputsAt, tokens, 0, N * 4);
    if (k > 0) sub.copy(this.scratch, 0, tokens, N * 4, k * N * 4);
    // verify's stages in order: 'newest' covers the newest draft of each sequence, the others all rows
    for (const st of ex.entry('verify', E).stages) {
      sub.runStage(st, st.role === 'newest' ? { rowStart: k * N, rowCount: N, posBase: 0 } : { rowStart: 0, rowCount: rows, posBase: 0 });
    }
  }
}
