import './gpu-globals.js';
import { compileDimExpr } from '../compiler/ir/dims.js';
import { RANGE_SLOT_BYTES, type Plan, type PlanDispatch, type PlanEntry, type PlanKernel } from '../compiler/plan.js';
import { gridSize, type GridDim, type KernelSource } from '../codegen/kernel.js';
import type { GpuContext } from './device.js';
import { ropeTable } from './rope-table.js';
import { GpuWaiter } from './gpu-wait.js';

/** Runtime symbols of a range expression (see compiler/passes/entry-points.ts). */
export interface RangeSymbols {
  p?: number;
  i?: number;
  k?: number;
  T?: number;
  c0?: number;
}

/** A kernel that the device cannot compile (a codegen bug, or a corrupted artifact). */
export class KernelCompileError extends Error {
  constructor(readonly kernel: string, detail: string) {
    super(`kernel ${kernel} failed to compile: ${detail}`);
    this.name = 'KernelCompileError';
  }
}

export interface StageRange {
  rowStart: number;
  rowCount: number;
  posBase: number;
}

interface ReadRequest {
  buffer: string;
  /** A buffer outside the plan (query results). */
  src?: GPUBuffer;
  offset: number;
  bytes: number;
  stagingOffset: number;
}

const U = GPUBufferUsage;

/** What encoding a dispatch needs, resolved at load: pipeline, grid, and a bind group per range slot. */
interface DispatchBinding {
  pipeline: GPUComputePipeline;
  grid: PlanKernel['grid'];
  layout: GPUBindGroupLayout;
  entries: GPUBindGroupEntry[];
  /** Index of the range binding, rebound per slot. */
  rangeAt: number;
  bySlot: GPUBindGroup[];
}

/**
 * Runs plan entry points. Everything is built at load: pipelines, buffers, one bind group per
 * dispatch. A step is one command encoder with one compute pass; the only per-submission upload
 * is the table of row ranges, selected per dispatch by a dynamic uniform offset.
 */
export class Executor {
  readonly buffers = new Map<string, GPUBuffer>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Per dispatch: its bind group entries, and one bind group per range slot (made on first use). */
  private readonly bindings = new Map<PlanDispatch, DispatchBinding>();
  private readonly kernels: Map<string, PlanKernel>;
  private readonly entries: Map<string, PlanEntry>;
  /** @internal Row ranges, one RANGE_SLOT_BYTES slot per encoded stage of a submission. */
  readonly rangeBuffer: GPUBuffer;
  private readonly rangeWords: Uint32Array;
  private readonly staging: GPUBuffer[] = [];
  private readonly paramBuffers = new Map<string, GPUBuffer>();
  /** Bytes of the buffers this executor allocated (weights are counted by their loader). */
  allocatedBytes = 0;
  /** @internal */
  readonly waiter = new GpuWaiter();
  /** Cumulative time in submissions: encoding on the CPU, and submit → results on the CPU. */
  readonly timing = { submissions: 0, encodeMs: 0, waitMs: 0 };
  /** GPU time per named section (profiling submissions with timestamp queries). */
  readonly gpuSections = new Map<string, { count: number; ms: number }>();
  private querySet?: GPUQuerySet;
  private queryResolve?: GPUBuffer;

  /** Whether GPU timestamps can be taken (the adapter has timestamp-query). */
  get canTimestamp(): boolean {
    return this.gpu.features.has('timestamp-query');
  }

  /** @internal */
  timestamps(): { set: GPUQuerySet; resolve: GPUBuffer } {
    this.querySet ??= this.gpu.device.createQuerySet({ type: 'timestamp', count: 32 });
    this.queryResolve ??= this.gpu.device.createBuffer({ size: 32 * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    return { set: this.querySet, resolve: this.queryResolve };
  }

  private constructor(readonly gpu: GpuContext, readonly plan: Plan) {
    this.kernels = new Map(plan.kernels.map((k) => [k.id, k]));
    this.entries = new Map(plan.entries.map((e) => [e.name, e]));
    const slots = plan.rows.rangeSlots;
    // STORAGE too: chained speculation rounds write the next round's positions on the GPU
    this.rangeBuffer = gpu.device.createBuffer({ size: slots * RANGE_SLOT_BYTES, usage: U.UNIFORM | U.STORAGE | U.COPY_DST, label: 'ranges' });
    this.allocatedBytes += slots * RANGE_SLOT_BYTES;
    this.rangeWords = new Uint32Array((slots * RANGE_SLOT_BYTES) / 4);
  }

  /** Takes ownership of `weights`: they are destroyed with the executor, or if creation fails. */
  static async create(gpu: GpuContext, plan: Plan, wgsl: Map<string, string>, weights: Map<string, GPUBuffer>): Promise<Executor> {
    const ex = new Executor(gpu, plan);
    for (const [id, b] of weights) ex.buffers.set(id, b);
    try {
      ex.allocate();
      await ex.buildPipelines(wgsl);
      ex.buildBindGroups();
    } catch (e) {
      ex.destroy();
      throw e;
    }
    return ex;
  }

  private allocate(): void {
    const d = this.gpu.device;
    for (const b of this.plan.buffers) {
      if (b.kind === 'weight') continue;
      const size = Math.max(16, Math.ceil(b.bytes / 4) * 4);
      const buf = d.createBuffer({ size, usage: U.STORAGE | U.COPY_DST | U.COPY_SRC, label: b.id });
      this.buffers.set(b.id, buf);
      this.allocatedBytes += size;
    }
    const dims = this.plan.dims;
    const table = ropeTable(this.plan.rope, dims.headDim, dims.ctx);
    d.queue.writeBuffer(this.buffers.get(this.plan.io.rope)!, 0, table);
  }

  private async buildPipelines(wgsl: Map<string, string>): Promise<void> {
    const d = this.gpu.device;
    // modules one by one, each in its own error scope (scopes are a single stack per device)
    const modules = this.plan.kernels.map((k) => {
      const code = wgsl.get(k.id);
      if (code === undefined) throw new KernelCompileError(k.id, 'no WGSL source');
      d.pushErrorScope('validation');
      const module = d.createShaderModule({ code, label: k.id });
      return { k, module, scope: d.popErrorScope() };
    });
    for (const { k, module, scope } of modules) {
      const info = await module.getCompilationInfo();
      const errors = info.messages.filter((m) => m.type === 'error');
      const scoped = await scope;
      if (errors.length || scoped) {
        throw new KernelCompileError(k.id, errors.length ? errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ') : scoped!.message);
      }
    }
    await Promise.all(modules.map(async ({ k, module }) => {
      const layout = d.createBindGroupLayout({
        label: k.id,
        entries: k.bindings.map((b, i) => ({
          binding: i,
          visibility: GPUShaderStage.COMPUTE,
          // a static range slot per bind group: dynamic offsets cost lavapipe ~30 µs a dispatch
          buffer: b.type === 'range' ? { type: 'uniform', minBindingSize: 16 }
            : b.type === 'params' ? { type: 'uniform' }
              : { type: b.type === 'read' ? 'read-only-storage' : 'storage' },
        })),
      });
      try {
        const pipeline = await d.createComputePipelineAsync({
          label: k.id, layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }),
          compute: { module, entryPoint: 'main' },
        });
        this.pipelines.set(k.id, pipeline);
      } catch (e) {
        throw new KernelCompileError(k.id, (e as Error).message);
      }
    }));
  }

  private buildBindGroups(): void {
    const d = this.gpu.device;
    const paramBuffers = this.paramBuffers;
    for (const e of this.plan.entries) {
      for (const st of e.stages) {
        for (const disp of st.dispatches) {
          const k = this.kernels.get(disp.kernel)!;
          let bi = 0;
          const entries: GPUBindGroupEntry[] = k.bindings.map((b, i) => {
            if (b.type === 'range') return { binding: i, resource: { buffer: this.rangeBuffer, offset: 0, size: 16 } };
            if (b.type === 'params') {
              const key = disp.params.join(',');
              let pb = paramBuffers.get(key);
              if (!pb) {
                pb = d.createBuffer({ size: Math.max(16, disp.params.length * 4), usage: U.UNIFORM | U.COPY_DST, label: `params ${key}` });
                d.queue.writeBuffer(pb, 0, new Uint32Array(disp.params));
                paramBuffers.set(key, pb);
                this.allocatedBytes += pb.size;
              }
              return { binding: i, resource: { buffer: pb } };
            }
            const id = disp.buffers[bi++];
            const buf = this.buffers.get(id);
            if (!buf) throw new Error(`internal: buffer ${id} not allocated`);
            return { binding: i, resource: { buffer: buf } };
          });
          const pipeline = this.pipelines.get(k.id)!;
          this.bindings.set(disp, {
            pipeline, grid: k.grid, layout: pipeline.getBindGroupLayout(0), entries,
            rangeAt: k.bindings.findIndex((b) => b.type === 'range'), bySlot: [],
          });
        }
      }
    }
  }

  private bindGroup(b: DispatchBinding, slot: number): GPUBindGroup {
    let bg = b.bySlot[slot];
    if (!bg) {
      const entries = b.entries.map((e, i) => (i === b.rangeAt
        ? { binding: i, resource: { buffer: this.rangeBuffer, offset: slot * RANGE_SLOT_BYTES, size: 16 } } : e));
      bg = b.bySlot[slot] = this.gpu.device.createBindGroup({ layout: b.layout, entries });
    }
    return bg;
  }

  /**
   * Times `src` run with the bindings of `disp` over `rows` rows: median milliseconds per
   * dispatch over `reps` submissions of `batch` dispatches. Infinity when it fails to compile.
   */
  async timeKernel(src: KernelSource, disp: PlanDispatch, rows: number, opts: { batch?: number; reps?: number; posBase?: number } = {}): Promise<number> {
    const d = this.gpu.device;
    const batch = opts.batch ?? 20;
    const reps = opts.reps ?? 5;
    d.pushErrorScope('validation');
    const module = d.createShaderModule({ code: src.wgsl });
    const info = await module.getCompilationInfo();
    if (info.messages.some((m) => m.type === 'error')) { await d.popErrorScope(); return Infinity; }
    const layout = d.createBindGroupLayout({
      entries: src.bindings.map((b, i) => ({
        binding: i, visibility: GPUShaderStage.COMPUTE,
        buffer: b.type === 'range' || b.type === 'params' ? { type: 'uniform' as const }
          : { type: b.type === 'read' ? 'read-only-storage' as const : 'storage' as const },
      })),
    });
    const pipeline = await d.createComputePipelineAsync({ layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } })
      .catch(() => undefined);
    const template = this.bindings.get(disp)!;
    const slot = this.plan.rows.rangeSlots - 1;
    const bg = pipeline && d.createBindGroup({
      layout, entries: template.entries.map((e, i) => (i === template.rangeAt
        ? { binding: i, resource: { buffer: this.rangeBuffer, offset: slot * RANGE_SLOT_BYTES, size: 16 } } : e)),
    });
    if (await d.popErrorScope() || !pipeline || !bg) return Infinity;
    d.queue.writeBuffer(this.rangeBuffer, slot * RANGE_SLOT_BYTES, new Uint32Array([0, rows, opts.posBase ?? 0, 0]));
    const g = (x: GridDim): number => gridSize(x, rows);
    const run = async (): Promise<number> => {
      const enc = d.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      for (let i = 0; i < batch; i++) pass.dispatchWorkgroups(g(src.grid[0]), g(src.grid[1]), g(src.grid[2]));
      pass.end();
      const t0 = performance.now();
      d.queue.submit([enc.finish()]);
      await d.queue.onSubmittedWorkDone();
      return (performance.now() - t0) / batch;
    };
    await run(); // first use compiles on some drivers
    const times: number[] = [];
    for (let r = 0; r < reps; r++) times.push(await run());
    times.sort((a, b) => a - b);
    return times[times.length >> 1];
  }

  entry(name: string): PlanEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`internal: the plan has no entry point ${name}`);
    return e;
  }

  /** Starts a submission: one encoder, one compute pass. */
  begin(): Submission {
    return new Submission(this);
  }

  /** Range expressions of every stage, parsed once. */
  private readonly rangeFns = new Map<PlanEntry['stages'][number], ((look: (n: string) => number) => number)[]>();

  /** @internal Encodes every stage of an entry point, ranges from the plan's expressions. */
  encodeEntry(pass: GPUComputePassEncoder, name: string, sym: RangeSymbols, slot: () => number): void {
    const e = this.entry(name);
    const look = (n: string): number => {
      const v = sym[n as keyof RangeSymbols];
      if (v === undefined) throw new Error(`internal: ${name} needs symbol ${n}`);
      return v;
    };
    for (const st of e.stages) {
      let fns = this.rangeFns.get(st);
      if (!fns) this.rangeFns.set(st, (fns = [st.range.rowStart, st.range.rowCount, st.range.posBase].map(compileDimExpr)));
      this.encodeStage(pass, name, st, { rowStart: fns[0](look), rowCount: fns[1](look), posBase: fns[2](look) }, slot);
    }
  }

  /** @internal Encodes one stage over explicit rows (prefill chunks, scoring). */
  encodeStage(pass: GPUComputePassEncoder, name: string, stage: PlanEntry['stages'][number] | string,
    r: StageRange, slot: () => number): void {
    const st = typeof stage === 'string' ? this.entry(name).stages.find((x) => x.name === stage) : stage;
    if (!st) throw new Error(`internal: ${name} has no stage ${String(stage)}`);
    if (r.rowCount <= 0) return;
    if (r.rowStart + r.rowCount > this.plan.rows.max || r.posBase + r.rowStart + r.rowCount > this.plan.dims.ctx) {
      throw new Error(`internal: ${name}/${st.name} rows ${r.rowStart}+${r.rowCount} at ${r.posBase} out of bounds`);
    }
    const s = slot();
    this.rangeWords[s * 64] = r.rowStart;
    this.rangeWords[s * 64 + 1] = r.rowCount;
    this.rangeWords[s * 64 + 2] = r.posBase;
    const g = (x: GridDim): number => gridSize(x, r.rowCount);
    for (const disp of st.dispatches) {
      const b = this.bindings.get(disp)!;
      pass.setPipeline(b.pipeline);
      pass.setBindGroup(0, this.bindGroup(b, s));
      pass.dispatchWorkgroups(g(b.grid[0]), g(b.grid[1]), g(b.grid[2]));
    }
  }

  /**
   * Profiling: runs an entry point once with each dispatch in its own timestamped compute pass
   * and returns its dispatches with their GPU milliseconds (needs timestamp-query).
   */
  async timeDispatches(name: string, sym: RangeSymbols): Promise<{ dispatch: PlanDispatch; ms: number }[]> {
    const d = this.gpu.device;
    const e = this.entry(name);
    const look = (n: string): number => sym[n as keyof RangeSymbols] ?? NaN;
    const runs: { dispatch: PlanDispatch; slot: number; rows: number }[] = [];
    e.stages.forEach((st, s) => {
      const [rowStart, rowCount, posBase] = [st.range.rowStart, st.range.rowCount, st.range.posBase].map((x) => compileDimExpr(x)(look));
      this.rangeWords.set([rowStart, rowCount, posBase], s * 64);
      if (rowCount > 0) for (const dispatch of st.dispatches) runs.push({ dispatch, slot: s, rows: rowCount });
    });
    this.flushRanges(e.stages.length);
    const set = d.createQuerySet({ type: 'timestamp', count: 2 * runs.length });
    const resolve = d.createBuffer({ size: 16 * runs.length, usage: U.QUERY_RESOLVE | U.COPY_SRC });
    const staging = d.createBuffer({ size: 16 * runs.length, usage: U.MAP_READ | U.COPY_DST });
    try {
      const enc = d.createCommandEncoder();
      runs.forEach((r, j) => {
        const b = this.bindings.get(r.dispatch)!;
        const pass = enc.beginComputePass({ timestampWrites: { querySet: set, beginningOfPassWriteIndex: 2 * j, endOfPassWriteIndex: 2 * j + 1 } });
        pass.setPipeline(b.pipeline);
        pass.setBindGroup(0, this.bindGroup(b, r.slot));
        pass.dispatchWorkgroups(gridSize(b.grid[0], r.rows), gridSize(b.grid[1], r.rows), gridSize(b.grid[2], r.rows));
        pass.end();
      });
      enc.resolveQuerySet(set, 0, 2 * runs.length, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * runs.length);
      d.queue.submit([enc.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      const ts = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return runs.map((r, j) => ({ dispatch: r.dispatch, ms: Number(ts[2 * j + 1] - ts[2 * j]) / 1e6 }));
    } finally {
      set.destroy(); resolve.destroy(); staging.destroy();
    }
  }

  /** @internal */
  flushRanges(slots: number): void {
    if (slots) this.gpu.device.queue.writeBuffer(this.rangeBuffer, 0, this.rangeWords, 0, slots * 64);
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
    this.gpu.device.queue.writeBuffer(this.buffers.get(this.plan.io.tokens)!, offset * 4, new Uint32Array(ids));
  }

  destroy(): void {
    for (const b of this.buffers.values()) b.destroy();
    for (const b of this.staging) b.destroy();
    for (const b of this.paramBuffers.values()) b.destroy();
    this.querySet?.destroy();
    this.queryResolve?.destroy();
    this.rangeBuffer.destroy();
  }
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

  constructor(private readonly ex: Executor) {
    this.encoder = ex.gpu.device.createCommandEncoder();
    this.pass = this.encoder.beginComputePass();
  }

  /**
   * Profiling: what follows runs in its own compute pass whose GPU time is added to
   * `executor.gpuSections[name]` (needs timestamp-query; otherwise a no-op).
   */
  section(name: string): this {
    if (!this.ex.canTimestamp || !this.pass) return this;
    const i = this.sections.length;
    if (i >= 16) throw new Error('internal: too many profiled sections');
    this.pass.end();
    this.sections.push(name);
    const { set } = this.ex.timestamps();
    this.pass = this.encoder.beginComputePass({ timestampWrites: { querySet: set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    return this;
  }

  private nextSlot = (): number => {
    if (this.slots >= this.ex.plan.rows.rangeSlots) throw new Error('internal: too many ranges in one submission');
    return this.slots++;
  };

  /** Range slots used so far (a stage takes the next one). */
  get slotsUsed(): number {
    return this.slots;
  }

  /** Encodes a kernel outside the plan (runtime-internal kernels such as GPU acceptance). */
  dispatch(pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, groups = 1): this {
    if (!this.pass) throw new Error('internal: run after submit');
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(groups);
    this.signature += 'raw;';
    return this;
  }

  /** Encodes an entry point with its ranges evaluated at `sym`. */
  run(entry: string, sym: RangeSymbols): this {
    if (!this.pass) throw new Error('internal: run after submit');
    this.ex.encodeEntry(this.pass, entry, sym, this.nextSlot);
    this.signature += `${entry}:${sym.k ?? ''}:${sym.T ?? ''};`;
    return this;
  }

  /** Encodes one stage of an entry point over explicit rows. */
  runStage(entry: string, stage: string, range: StageRange): this {
    if (!this.pass) throw new Error('internal: run after submit');
    this.ex.encodeStage(this.pass, entry, stage, range, this.nextSlot);
    this.signature += `${entry}/${stage}:${range.rowCount};`;
    return this;
  }

  /** Reads `bytes` at `offset` of a buffer once the work is done; returns the read's index. */
  read(buffer: string, offset: number, bytes: number): number {
    this.reads.push({ buffer, offset, bytes, stagingOffset: this.readBytes });
    this.readBytes += Math.ceil(bytes / 8) * 8;
    return this.reads.length - 1;
  }

  /** Reads `bytes` at `offset` of a buffer outside the plan; returns the read's index. */
  readFrom(src: GPUBuffer, offset: number, bytes: number): number {
    this.reads.push({ buffer: src.label, src, offset, bytes, stagingOffset: this.readBytes });
    this.readBytes += Math.ceil(bytes / 8) * 8;
    return this.reads.length - 1;
  }

  /** Submits and waits for the reads. */
  async submit(): Promise<ArrayBuffer[]> {
    this.pass?.end();
    this.pass = null;
    this.ex.flushRanges(this.slots);
    if (this.sections.length) {
      const { set, resolve } = this.ex.timestamps();
      this.encoder.resolveQuerySet(set, 0, 2 * this.sections.length, resolve, 0);
      this.reads.push({ buffer: '', offset: 0, bytes: 16 * this.sections.length, stagingOffset: this.readBytes, src: resolve });
      this.readBytes += 16 * this.sections.length;
    }
    let staging: GPUBuffer | undefined;
    if (this.reads.length) {
      staging = this.ex.stagingBuffer(this.readBytes);
      for (const r of this.reads) {
        this.encoder.copyBufferToBuffer(r.src ?? this.ex.buffers.get(r.buffer)!, r.offset, staging, r.stagingOffset, r.bytes);
      }
    }
    const t0 = performance.now();
    const timing = this.ex.timing;
    timing.submissions++;
    timing.encodeMs += t0 - this.t0;
    this.ex.gpu.device.queue.submit([this.encoder.finish()]);
    this.ex.waiter.sleep(this.signature);
    if (!staging) {
      await this.ex.gpu.device.queue.onSubmittedWorkDone();
      this.ex.waiter.record(this.signature, performance.now() - t0);
      timing.waitMs += performance.now() - t0;
      return [];
    }
    await staging.mapAsync(GPUMapMode.READ, 0, Math.ceil(this.readBytes / 8) * 8);
    this.ex.waiter.record(this.signature, performance.now() - t0);
    timing.waitMs += performance.now() - t0;
    const mapped = staging.getMappedRange(0, Math.ceil(this.readBytes / 8) * 8);
    const out = this.reads.map((r) => mapped.slice(r.stagingOffset, r.stagingOffset + r.bytes));
    staging.unmap();
    if (this.sections.length) {
      const ts = new BigUint64Array(out.pop()!);
      this.sections.forEach((name, i) => {
        const e = this.ex.gpuSections.get(name) ?? { count: 0, ms: 0 };
        e.count++;
        e.ms += Number(ts[2 * i + 1] - ts[2 * i]) / 1e6;
        this.ex.gpuSections.set(name, e);
      });
    }
    return out;
  }
}
