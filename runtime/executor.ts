import './gpu-globals.js';
import { compileDimExpr } from '../compiler/ir/dims.js';
import type { Plan, PlanEntry, PlanStage } from '../compiler/plan.js';
import { entryOf, stageOf, type EntryKind, type StageRole } from '../compiler/ir/stages.js';
import { gridSize, type GridDim } from '../compiler/ir/kernel.js';
import { SEQ_ROW_BYTES } from '../codegen/kernel.js';
import type { GpuContext } from './device.js';
import { ropeTable } from './rope-table.js';
import { GpuWaiter } from './gpu-wait.js';
import { GpuProfiler } from './gpu-profiler.js';
import { RangeTable, type StageRange } from './range-table.js';
import { compilePipelines } from './pipelines.js';
import { BindGroups } from './bind-groups.js';
import { Submission, type RangeSymbols } from './submission.js';

export { KernelCompileError } from './pipelines.js';
export type { StageRange } from './range-table.js';
export type { RangeSymbols } from './submission.js';
export { Submission } from './submission.js';

const U = GPUBufferUsage;

/**
 * Runs plan entry points. Everything is built at load: buffers, pipelines (pipelines.ts), one
 * bind group per dispatch and range slot (bind-groups.ts). A step is one command encoder with one
 * compute pass (submission.ts); the only per-submission upload is the table of row ranges
 * (range-table.ts), one slot per encoded stage, bound at static offsets.
 */
export class Executor {
  private readonly buffers = new Map<string, GPUBuffer>();
  /** Buffers the executor made outside the plan (uniforms, runtime state); destroyed with it. */
  private readonly owned: GPUBuffer[] = [];
  /** Row ranges of a submission. */
  readonly ranges: RangeTable;
  /**
   * Each activation row's (position offset, KV slot) (codegen/kernel.ts SeqRows): zeros, the
   * single-sequence layout, unless the batch engine (runtime/batch/) writes it for a step.
   */
  readonly seqRows: GPUBuffer;
  private bindGroups!: BindGroups;
  private readonly staging: GPUBuffer[] = [];
  /** Bytes of the buffers this executor allocated (weights are counted by their loader). */
  allocatedBytes = 0;
  /** @internal */
  readonly waiter = new GpuWaiter();
  /** Cumulative time in submissions: encoding on the CPU, and submit → results on the CPU. */
  readonly timing = { submissions: 0, encodeMs: 0, waitMs: 0 };
  /** GPU time per named section (profiling submissions with timestamp queries). */
  readonly profiler: GpuProfiler;

  get gpuSections(): Map<string, { count: number; ms: number }> {
    return this.profiler.sections;
  }

  get device(): GPUDevice {
    return this.gpu.device;
  }

  get rangeSlots(): number {
    return this.plan.rows.rangeSlots;
  }

  private constructor(readonly gpu: GpuContext, readonly plan: Plan) {
    this.ranges = new RangeTable(gpu.device, plan.rows.rangeSlots);
    this.allocatedBytes += this.ranges.bytes;
    this.seqRows = gpu.device.createBuffer({ size: Math.max(16, plan.rows.max * SEQ_ROW_BYTES), usage: U.UNIFORM | U.COPY_DST, label: 'seq rows' });
    this.allocatedBytes += this.seqRows.size;
    this.profiler = new GpuProfiler(gpu.device, gpu.features);
  }

  /** Takes ownership of `weights`: they are destroyed with the executor, or if creation fails. */
  static async create(gpu: GpuContext, plan: Plan, wgsl: Map<string, string>, weights: Map<string, GPUBuffer>): Promise<Executor> {
    const ex = new Executor(gpu, plan);
    for (const [id, b] of weights) ex.buffers.set(id, b);
    try {
      ex.allocate();
      const pipelines = await compilePipelines(gpu.device, plan.kernels.map((k) => ({ id: k.id, wgsl: wgsl.get(k.id) ?? '', bindings: k.bindings })));
      ex.bindGroups = new BindGroups(gpu.device, plan, pipelines, (id) => ex.buffer(id), ex.ranges, (d) => ex.ownBuffer(d), ex.seqRows);
    } catch (e) {
      ex.destroy();
      throw e;
    }
    return ex;
  }

  private allocate(): void {
    for (const b of this.plan.buffers) {
      if (b.kind === 'weight') continue;
      const size = Math.max(16, Math.ceil(b.bytes / 4) * 4);
      this.buffers.set(b.id, this.gpu.device.createBuffer({ size, usage: U.STORAGE | U.COPY_DST | U.COPY_SRC, label: b.id }));
      this.allocatedBytes += size;
    }
    const dims = this.plan.dims;
    this.gpu.device.queue.writeBuffer(this.buffer(this.plan.io.rope), 0, ropeTable(this.plan.rope, dims.headDim, dims.ctx));
  }

  /** A buffer of the plan, by id. */
  buffer(id: string): GPUBuffer {
    const b = this.buffers.get(id);
    if (!b) throw new Error(`internal: buffer ${id} not allocated`);
    return b;
  }

  /** A buffer outside the plan (runtime state, uniforms), counted in allocatedBytes and destroyed with the executor. */
  ownBuffer(desc: GPUBufferDescriptor): GPUBuffer {
    const b = this.gpu.device.createBuffer(desc);
    this.owned.push(b);
    this.allocatedBytes += b.size;
    return b;
  }

  /** The entry point of `kind` for exit layer E (undefined: the full model). */
  entry(kind: EntryKind, exitLayer?: number): PlanEntry {
    return entryOf(this.plan, kind, exitLayer);
  }

  /** The stage of `role` of that entry point. */
  stage(kind: EntryKind, exitLayer: number | undefined, role: StageRole): PlanStage {
    return stageOf(this.plan, kind, exitLayer, role);
  }

  /** @internal The bind groups of the plan's dispatches (the tuner times kernels with them). */
  get dispatchBindings(): BindGroups {
    return this.bindGroups;
  }

  /** Starts a submission: one encoder, one compute pass. */
  begin(): Submission {
    return new Submission(this);
  }

  /** Range expressions of every stage, parsed once. */
  private readonly rangeFns = new Map<PlanStage, ((look: (n: string) => number) => number)[]>();

  /** @internal Encodes every stage of an entry point, ranges from the plan's expressions. */
  encodeEntry(pass: GPUComputePassEncoder, e: PlanEntry, sym: RangeSymbols, slot: () => number): void {
    const look = (n: string): number => {
      const v = sym[n as keyof RangeSymbols];
      if (v === undefined) throw new Error(`internal: ${e.name} needs symbol ${n}`);
      return v;
    };
    for (const st of e.stages) {
      let fns = this.rangeFns.get(st);
      if (!fns) this.rangeFns.set(st, (fns = [st.range.rowStart, st.range.rowCount, st.range.posBase].map(compileDimExpr)));
      this.encodeStage(pass, st, { rowStart: fns[0](look), rowCount: fns[1](look), posBase: fns[2](look) }, slot);
    }
  }

  /** @internal Encodes one stage over explicit rows (prefill chunks, scoring). */
  encodeStage(pass: GPUComputePassEncoder, st: PlanStage, r: StageRange, slot: () => number): void {
    if (r.rowCount <= 0) return;
    if (r.rowStart + r.rowCount > this.plan.rows.max || r.posBase + r.rowStart + r.rowCount > this.plan.dims.ctx) {
      throw new Error(`internal: stage ${st.name} (${st.role}) rows ${r.rowStart}+${r.rowCount} at ${r.posBase} out of bounds`);
    }
    const s = slot();
    this.ranges.set(s, r);
    const g = (x: GridDim): number => gridSize(x, r.rowCount);
    for (const disp of st.dispatches) {
      const b = this.bindGroups.get(disp);
      pass.setPipeline(b.pipeline);
      pass.setBindGroup(0, this.bindGroups.group(b, s));
      pass.dispatchWorkgroups(g(b.grid[0]), g(b.grid[1]), g(b.grid[2]));
    }
  }

  /** @internal Encodes a plan kernel outside the entry points with params chosen at run time (plan.accept). */
  encodeKernel(pass: GPUComputePassEncoder, call: { kernel: string; buffers: readonly string[] }, params: readonly number[]): void {
    const d = this.bindGroups.call(call, params);
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.group);
    pass.dispatchWorkgroups(gridSize(d.grid[0], 1), gridSize(d.grid[1], 1), gridSize(d.grid[2], 1));
  }

  /** @internal */
  flushRanges(slots: number): void {
    this.ranges.flush(slots);
  }

  /** @internal a MAP_READ buffer of at least `bytes`, reused between submissions. */
  stagingBuffer(bytes: number): GPUBuffer {
    const free = this.staging.find((b) => b.size >= bytes && b.mapState === 'unmapped');
    if (free) return free;
    const b = this.gpu.device.createBuffer({ size: Math.ceil(bytes / 256) * 256, usage: U.MAP_READ | U.COPY_DST, label: 'staging' });
    this.staging.push(b);
    return b;
  }

  writeTokens(offset: number, ids: ArrayLike<number>): void {
    this.writeIo(this.plan.io.tokens, offset, ids);
  }

  /** Writes u32 words at word `offset` of one of the plan's io buffers (token ids, the acceptance states). */
  writeIo(id: string, offset: number, words: ArrayLike<number>): void {
    const io = Object.values(this.plan.io).includes(id) || this.plan.batchAccept?.buffers.includes(id) || id === this.plan.draftStop?.state;
    if (!io || this.plan.buffers.find((b) => b.id === id)?.kind !== 'io') {
      throw new Error(`internal: ${id} is not an io buffer of the plan`);
    }
    this.gpu.device.queue.writeBuffer(this.buffer(id), offset * 4, new Uint32Array(words));
  }

  destroy(): void {
    for (const b of this.buffers.values()) b.destroy();
    for (const b of this.owned) b.destroy();
    for (const b of this.staging) b.destroy();
    this.profiler.destroy();
    this.ranges.destroy();
    this.seqRows.destroy();
  }
}
