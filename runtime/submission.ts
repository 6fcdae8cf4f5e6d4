import './gpu-globals.js';
import type { GpuWaiter } from './gpu-wait.js';
import { MAX_SECTIONS, type GpuProfiler } from './gpu-profiler.js';
import type { StageRange } from './range-table.js';
import type { PlanEntry, PlanStage } from '../compiler/plan.js';

/** Runtime symbols of a range expression (see compiler/passes/entry-points.ts). */
export interface RangeSymbols {
  p?: number;
  i?: number;
  k?: number;
  T?: number;
  c0?: number;
}

/** What a submission needs from the executor that runs it. */
export interface SubmissionHost {
  readonly device: GPUDevice;
  readonly rangeSlots: number;
  readonly profiler: GpuProfiler;
  readonly waiter: GpuWaiter;
  readonly timing: { submissions: number; encodeMs: number; waitMs: number };
  encodeEntry(pass: GPUComputePassEncoder, entry: PlanEntry, sym: RangeSymbols, slot: () => number): void;
  encodeStage(pass: GPUComputePassEncoder, stage: PlanStage, r: StageRange, slot: () => number): void;
  encodeKernel(pass: GPUComputePassEncoder, call: { kernel: string; buffers: readonly string[] }, params: readonly number[]): void;
  flushRanges(slots: number): void;
  buffer(id: string): GPUBuffer;
  stagingBuffer(bytes: number): GPUBuffer;
}

/** A short key per plan stage, for submission signatures (stage names repeat across entries). */
const stageKeys = new WeakMap<PlanStage, string>();
let stagesKeyed = 0;
const stageKey = (st: PlanStage): string => {
  let k = stageKeys.get(st);
  if (!k) stageKeys.set(st, (k = `${st.role}#${stagesKeyed++}`));
  return k;
};

interface ReadRequest {
  src: GPUBuffer;
  offset: number;
  bytes: number;
  stagingOffset: number;
}

/** One submission: entry points encoded in order into one pass, then reads of named buffers. */
export class Submission {
  private readonly encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | null;
  private slots = 0;
  /** The shape of this submission (entries and rows), for the expected-duration sleep. */
  private signature = '';
  private readonly reads: ReadRequest[] = [];
  private readBytes = 0;
  private readonly t0 = performance.now();
  /** Named compute passes with GPU timestamps (profiling only). */
  private readonly sections: string[] = [];

  constructor(private readonly ex: SubmissionHost) {
    this.encoder = ex.device.createCommandEncoder();
    this.pass = this.encoder.beginComputePass();
  }

  /**
   * Profiling: what follows runs in its own compute pass whose GPU time is added to
   * `executor.gpuSections[name]` (needs timestamp-query; otherwise a no-op).
   */
  section(name: string): this {
    if (!this.ex.profiler.enabled || !this.pass) return this;
    const i = this.sections.length;
    if (i >= MAX_SECTIONS) throw new Error('internal: too many profiled sections');
    this.pass.end();
    this.sections.push(name);
    const { set } = this.ex.profiler.queries();
    this.pass = this.encoder.beginComputePass({ timestampWrites: { querySet: set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    return this;
  }

  private nextSlot = (): number => {
    if (this.slots >= this.ex.rangeSlots) throw new Error('internal: too many ranges in one submission');
    return this.slots++;
  };

  /** Range slots used so far (a stage takes the next one). */
  get slotsUsed(): number {
    return this.slots;
  }

  private open(): GPUComputePassEncoder {
    if (!this.pass) throw new Error('internal: run after submit');
    return this.pass;
  }

  /** Encodes a plan kernel that runs outside the entry points, with its params (the acceptance kernel: plan.accept). */
  runKernel(call: { kernel: string; buffers: readonly string[] }, params: readonly number[]): this {
    this.ex.encodeKernel(this.open(), call, params);
    this.signature += `${call.kernel};`;
    return this;
  }

  /** Encodes an entry point with its ranges evaluated at `sym`. */
  run(entry: PlanEntry, sym: RangeSymbols): this {
    this.ex.encodeEntry(this.open(), entry, sym, this.nextSlot);
    this.signature += `${entry.name}:${sym.k ?? ''}:${sym.T ?? ''};`;
    return this;
  }

  /** Encodes one stage of an entry point over explicit rows. */
  runStage(stage: PlanStage, range: StageRange): this {
    this.ex.encodeStage(this.open(), stage, range, this.nextSlot);
    this.signature += `${stageKey(stage)}:${range.rowCount};`;
    return this;
  }

  /**
   * Copies bytes between buffers between two dispatches (the batch engine moves draft picks to
   * the next draft step's input rows): ends the compute pass, copies, opens another.
   */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): this {
    this.open().end();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.pass = this.encoder.beginComputePass();
    this.signature += 'copy;';
    return this;
  }

  /** Reads `bytes` at `offset` of a plan buffer once the work is done; returns the read's index. */
  read(buffer: string, offset: number, bytes: number): number {
    return this.readFrom(this.ex.buffer(buffer), offset, bytes);
  }

  /** Reads `bytes` at `offset` of any buffer (one outside the plan too); returns the read's index. */
  readFrom(src: GPUBuffer, offset: number, bytes: number): number {
    this.reads.push({ src, offset, bytes, stagingOffset: this.readBytes });
    this.readBytes += Math.ceil(bytes / 8) * 8;
    return this.reads.length - 1;
  }

  /** Submits and waits for the reads. */
  async submit(): Promise<ArrayBuffer[]> {
    this.pass?.end();
    this.pass = null;
    this.ex.flushRanges(this.slots);
    if (this.sections.length) {
      const { set, resolve } = this.ex.profiler.queries();
      this.encoder.resolveQuerySet(set, 0, 2 * this.sections.length, resolve, 0);
      this.reads.push({ src: resolve, offset: 0, bytes: 16 * this.sections.length, stagingOffset: this.readBytes });
      this.readBytes += 16 * this.sections.length;
    }
    let staging: GPUBuffer | undefined;
    if (this.reads.length) {
      staging = this.ex.stagingBuffer(this.readBytes);
      for (const r of this.reads) this.encoder.copyBufferToBuffer(r.src, r.offset, staging, r.stagingOffset, r.bytes);
    }
    const t0 = performance.now();
    const timing = this.ex.timing;
    timing.submissions++;
    timing.encodeMs += t0 - this.t0;
    this.ex.device.queue.submit([this.encoder.finish()]);
    if (!staging) {
      await this.ex.waiter.wait(this.signature, this.ex.device.queue.onSubmittedWorkDone());
      timing.waitMs += performance.now() - t0;
      return [];
    }
    await this.ex.waiter.wait(this.signature, staging.mapAsync(GPUMapMode.READ, 0, Math.ceil(this.readBytes / 8) * 8));
    timing.waitMs += performance.now() - t0;
    const mapped = staging.getMappedRange(0, Math.ceil(this.readBytes / 8) * 8);
    const out = this.reads.map((r) => mapped.slice(r.stagingOffset, r.stagingOffset + r.bytes));
    staging.unmap();
    if (this.sections.length) this.ex.profiler.record(this.sections, new BigUint64Array(out.pop()!));
    return out;
  }
}
