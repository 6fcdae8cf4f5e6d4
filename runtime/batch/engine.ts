import type { Executor } from '../executor.js';
import type { Steps } from '../steps.js';
import type { ChainResult } from '../greedy-chain.js';
import type { Decoder } from '../generate.js';
import type { ModelQueue } from './model-queue.js';
import { CancelledError, QueueFullError } from './errors.js';
import { SeqRowTable } from './seq-rows.js';
import { BatchedSteps, type SeqStep } from './batched-steps.js';

/** What the engine uses of a loaded model. */
export interface EngineModel {
  readonly executor: Executor;
  readonly steps: Steps;
  readonly queue: ModelQueue;
}

interface SlotWaiter {
  grant: (slot: number) => void;
  refuse: (e: unknown) => void;
}

interface Settle<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/** A request of one sequence for the next engine step. */
type Request =
  | { kind: 'solo'; slot: number; run: (st: Steps) => Promise<unknown>; done: Settle<unknown> }
  | { kind: 'decode'; seq: SeqStep; n: number; logits: boolean; done: Settle<unknown> }
  | { kind: 'round'; seq: SeqStep; k: number; E: number; R: number; stopBelow: number; done: Settle<unknown> };

/**
 * Continuous batching: sequences hold a KV slot each (runtime/batch/ and codegen/kernel.ts
 * SeqRows) and join or leave between steps. Generation code (generate.ts) runs unchanged per
 * sequence against a Decoder whose calls become requests; each engine step takes the requests
 * waiting and runs them:
 *  - full-model decode steps (greedy or sampled) of all sequences together, one row each;
 *  - greedy speculation rounds together, grouped by (exit E, k): a group shares the draft and
 *    verify dispatches, and each sequence accepts its own count (batched-steps.ts), on the GPU
 *    when rounds chain in one submission (codegen/batch-accept.ts);
 *  - anything else alone, in the sequence's slot: prefill (newcomers' prompts, in chunks),
 *    early exit, speculative sampling's draft and verify steps; and a batchable request that
 *    is alone in its group takes the single-sequence fast paths (chained steps and rounds).
 * Sampling happens on the CPU in each sequence's own generator with its own seed, so a
 * sequence's tokens never depend on what runs beside it.
 *
 * KV memory is fixed slots, not pages: every sequence may grow to the full context, and with
 * slots the kernels address K/V as slot·(2·ctx·kvDim) + pos·kvDim, one multiply more than the
 * single-sequence path. A paged cache (vLLM's blocks and block tables) would let short
 * sequences use a fraction of a slot, so more of them fit in the same memory, at the cost of a
 * block-table lookup per position in attention.
 *
 * The engine holds the model's queue (model-queue.ts) while any slot is taken; calls that need
 * the whole model (logits) wait for it to drain, and no new sequence starts while one waits.
 */
export class BatchEngine {
  private readonly free: number[];
  private used = 0;
  private waiters: SlotWaiter[] = [];
  private hold?: Promise<void>;
  /** A slot whose multi-submission round (speculative sampling) is under way: only its work runs. */
  private owner?: number;
  private release?: () => void;
  private pending: Request[] = [];
  private stepping = false;
  private readonly table: SeqRowTable;
  private readonly batched: BatchedSteps;
  /** Engine steps run, rows they batched, batched rounds chained on the GPU (for benchmarks and tests). */
  readonly stats = { steps: 0, batchedSubmissions: 0, batchedRows: 0, soloRequests: 0, peakActive: 0, chainedRounds: 0 };

  constructor(private readonly model: EngineModel, readonly slots: number, readonly maxQueued: number) {
    this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
    this.table = new SeqRowTable(model.executor);
    this.batched = new BatchedSteps(model.executor, this.table);
  }

  /** Sequences holding a slot now. */
  get active(): number {
    return this.used;
  }

  /** Sequences waiting for a slot. */
  get queued(): number {
    return this.waiters.length;
  }

  /**
   * Waits for a free KV slot (at most maxQueued wait; more fail with QueueFullError at once;
   * an aborted signal leaves the line with CancelledError), then for the engine to hold the model.
   */
  async takeSlot(signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) throw new CancelledError();
    let slot: number;
    if (this.free.length && this.waiters.length === 0 && !this.draining) {
      slot = this.free.pop()!;
      this.used++;
      this.stats.peakActive = Math.max(this.stats.peakActive, this.used);
    } else {
      if (this.waiters.length >= this.maxQueued) throw new QueueFullError(this.maxQueued);
      slot = await new Promise<number>((grant, refuse) => {
        const w: SlotWaiter = { grant, refuse };
        this.waiters.push(w);
        signal?.addEventListener('abort', () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) {
            this.waiters.splice(i, 1);
            refuse(new CancelledError());
          }
        }, { once: true });
      });
    }
    try {
      await this.holdModel();
    } catch (e) {
      this.freeSlot(slot);
      throw e;
    }
    return slot;
  }

  /** A call waits for the whole model (logits): sequences finish, no new one starts, then it runs. */
  private get draining(): boolean {
    return this.release !== undefined && this.model.queue.queued > 0;
  }

  private async holdModel(): Promise<void> {
    while (!this.release) {
      this.hold ??= this.model.queue.acquire().then((release) => { this.release = release; });
      await this.hold;
    }
  }

  /** Gives a slot back (its KV is simply overwritten by the next owner): to the next waiter, or free. */
  freeSlot(slot: number): void {
    if (this.owner === slot) this.owner = undefined;
    if (!this.draining && this.waiters.length) {
      this.waiters.shift()!.grant(slot);
      return;
    }
    this.free.push(slot);
    this.free.sort((a, b) => b - a); // lowest slot next
    this.used--;
    if (this.used === 0 && this.release) {
      this.table.reset();
      const release = this.release;
      this.release = undefined;
      this.hold = undefined;
      release();
      // waiters now queue for the model behind whoever was waiting for it
      while (this.waiters.length && this.free.length) {
        this.used++;
        this.stats.peakActive = Math.max(this.stats.peakActive, this.used);
        this.waiters.shift()!.grant(this.free.pop()!);
      }
    }
    if (this.pending.length) this.schedule();
  }

  /** The Decoder of the sequence in `slot`: its GPU calls, as requests of the next step. */
  decoder(slot: number): Decoder {
    const steps = this.model.steps;
    const solo = <T>(run: (st: Steps) => Promise<T>): Promise<T> => this.request<T>((done) => ({ kind: 'solo', slot, run, done }));
    return {
      prefill: (ids, o) => solo((st) => st.prefill(ids, o)),
      greedySteps: (cur, p, n, E) => (E === undefined
        ? this.request<number[]>((done) => ({ kind: 'decode', seq: { slot, cur, p }, n, logits: false, done }))
        : solo((st) => st.greedySteps(cur, p, n, E))),
      stepLogits: (cur, p, i, E) => (E === undefined && i === 0
        ? this.request<Float32Array>((done) => ({ kind: 'decode', seq: { slot, cur, p }, n: 1, logits: true, done }))
        : solo((st) => st.stepLogits(cur, p, i, E))),
      maxChainedRounds: (E, k) => steps.maxChainedRounds(E, k),
      activeSequences: () => this.used,
      // a round alone may stop drafting early (greedy-chain.ts); batched rounds draft all k
      greedyRounds: async (cur, p, k, E, R, stopBelow = 0) => {
        const out = await this.request<number[][] | ChainResult>((done) => ({ kind: 'round', seq: { slot, cur, p }, k, E, R, stopBelow, done }));
        return Array.isArray(out) ? { rounds: out, drafts: out.map(() => k) } : out;
      },
      verifyLogits: (tokens, p, E) => solo((st) => st.verifyLogits(tokens, p, E)),
      // the drafts' trunk rows (the exit query cache) must survive until verify reads them
      round: async <T>(body: () => Promise<T>): Promise<T> => {
        while (this.owner !== undefined) await new Promise<void>((r) => setImmediate(r));
        this.owner = slot;
        try {
          return await body();
        } finally {
          if (this.owner === slot) this.owner = undefined;
          if (this.pending.length) this.schedule();
        }
      },
    };
  }

  private request<T>(make: (done: Settle<unknown>) => Request): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push(make({ resolve: resolve as (v: unknown) => void, reject }));
      this.schedule();
    });
  }

  /** Runs a step once the sequences woken by the last one have asked for their next work. */
  private schedule(): void {
    if (this.stepping) return;
    this.stepping = true;
    setImmediate(() => {
      this.step().finally(() => {
        this.stepping = false;
        const owner = this.owner;
        if (this.pending.some((r) => owner === undefined || (r.kind === 'solo' ? r.slot : r.seq.slot) === owner)) this.schedule();
      });
    });
  }

  private async step(): Promise<void> {
    const owner = this.owner;
    const mine = (r: Request): boolean => owner === undefined || (r.kind === 'solo' ? r.slot : r.seq.slot) === owner;
    const reqs = this.pending.filter(mine);
    this.pending = this.pending.filter((r) => !mine(r));
    this.stats.steps++;
    const decodes = reqs.filter((r) => r.kind === 'decode');
    const rounds = new Map<string, Extract<Request, { kind: 'round' }>[]>();
    for (const r of reqs) {
      if (r.kind === 'round') {
        const key = `${r.E}:${r.k}`;
        rounds.set(key, [...(rounds.get(key) ?? []), r]);
      }
    }
    for (const r of reqs) if (r.kind === 'solo') await this.solo(r.slot, r.done, r.run);
    if (decodes.length === 1) {
      const [r] = decodes;
      await this.solo(r.seq.slot, r.done, (st) => (r.logits ? st.stepLogits(r.seq.cur, r.seq.p, 0) : st.greedySteps(r.seq.cur, r.seq.p, r.n)));
    } else {
      // sampled steps need their logits each step; greedy ones chain on the GPU as far as the
      // sequence that wants fewest tokens allows
      const sampled = decodes.filter((r) => r.logits);
      const greedy = decodes.filter((r) => !r.logits);
      for (const group of chunks(sampled, this.batched.maxRows)) {
        await this.batch(group, async () => (await this.batched.decode(group.map((r) => r.seq), true)).logits!);
      }
      for (const group of chunks(greedy, this.batched.maxRows)) {
        const C = Math.min(this.batched.maxChainedSteps(group.length), ...group.map((r) => r.n));
        await this.batch(group, () => this.batched.decodeChain(group.map((r) => r.seq), C));
      }
    }
    for (const group of rounds.values()) {
      const { k, E } = group[0];
      if (group.length === 1) {
        const [r] = group;
        await this.solo(r.seq.slot, r.done, (st) => st.greedyRounds(r.seq.cur, r.seq.p, k, E, r.R, r.stopBelow));
        continue;
      }
      for (const part of chunks(group, Math.floor(this.batched.maxRows / (k + 1)))) {
        // chained as far as the sequence allowed fewest rounds (its tokens left, the context) goes
        const R = Math.min(this.batched.maxChainedRounds(part.length, k, E), ...part.map((r) => r.R));
        if (R > 1) this.stats.chainedRounds += R;
        await this.batch(part, async () => (R > 1
          ? this.batched.speculateChain(part.map((r) => r.seq), k, E, R)
          : (await this.batched.speculate(part.map((r) => r.seq), k, E)).map((round) => [round])));
      }
    }
  }

  /** One request alone, in its slot, through the single-sequence paths. */
  private async solo(slot: number, done: Settle<unknown>, run: (st: Steps) => Promise<unknown>): Promise<void> {
    this.stats.soloRequests++;
    try {
      this.table.solo(slot);
      done.resolve(await run(this.model.steps));
    } catch (e) {
      done.reject(e);
    }
  }

  /** One batched submission; its results go to the requests in order (a failure to all of them). */
  private async batch(reqs: { done: Settle<unknown> }[], run: () => Promise<unknown[]>): Promise<void> {
    this.stats.batchedSubmissions++;
    this.stats.batchedRows += reqs.length;
    try {
      const out = await run();
      reqs.forEach((r, i) => r.done.resolve(out[i]));
    } catch (e) {
      for (const r of reqs) r.done.reject(e);
    }
  }
}

function chunks<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += Math.max(1, size)) out.push(xs.slice(i, i + Math.max(1, size)));
  return out;
}
