import '../../runtime/gpu-globals.js';
import { gridSize, type GridDim, type KernelSource } from '../../compiler/ir/kernel.js';
import { SEQ_ROWS_MAX } from '../../codegen/kernel.js';
import { bindGroupLayout } from '../../runtime/bind-layout.js';
import { RangeTable } from '../../runtime/range-table.js';
import { f16BitsToF32, f32ToF16Bits } from '../../runtime/dtype-convert.js';
import type { GpuContext } from '../../runtime/device.js';
import { testGpu } from './gpu.js';

/**
 * Runs single emitted kernels (codegen/*.ts) on the shared test device, the way
 * runtime/executor.ts does, with the runtime's bind-group layout (runtime/bind-layout.ts) and
 * range table: binding 0 is the Range uniform bound at its slot of the table, `params` bindings
 * get a small uniform, the rest are storage buffers matched to the kernel's bindings by name.
 * Several dispatches (of one or more kernels) go into one command encoder / compute pass, each
 * with its own range slot.
 */

export interface RowRange {
  rowStart: number;
  rowCount: number;
  posBase: number;
}

export interface Dispatch {
  src: KernelSource;
  /** Storage buffers by binding name (every 'read' and 'rw' binding of the kernel). */
  buffers: Record<string, GPUBuffer>;
  /** Values of the Params uniform (u32 each), required when the kernel has a 'params' binding. */
  params?: number[];
  range: RowRange;
}

interface Compiled {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

const U = GPUBufferUsage;

/** Workgroup counts of a launch over `rowCount` rows. */
export function gridFor(grid: KernelSource['grid'], rowCount: number): [number, number, number] {
  const g = (x: GridDim): number => gridSize(x, rowCount);
  return [g(grid[0]), g(grid[1]), g(grid[2])];
}

export class KernelHarness {
  private readonly pipelines = new Map<string, Promise<Compiled>>();
  private readonly owned: GPUBuffer[] = [];

  constructor(readonly gpu: GpuContext) {}

  static async create(): Promise<KernelHarness> {
    return new KernelHarness(await testGpu());
  }

  get device(): GPUDevice {
    return this.gpu.device;
  }

  /** Features the kernel needs that the device lacks (empty: it can run). */
  missingFeatures(src: KernelSource): string[] {
    return src.features.filter((f) => !this.gpu.features.has(f));
  }

  /** Compiles (once per WGSL text and binding layout) and throws with the compiler's messages on error. */
  compile(src: KernelSource): Promise<Compiled> {
    const key = `${src.bindings.map((b) => b.type).join(',')}\n${src.wgsl}`;
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.build(src);
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  private async build(src: KernelSource): Promise<Compiled> {
    const missing = this.missingFeatures(src);
    if (missing.length) throw new Error(`kernel ${src.name} needs features this device lacks: ${missing.join(', ')}`);
    const d = this.device;
    d.pushErrorScope('validation');
    const module = d.createShaderModule({ code: src.wgsl, label: src.name });
    const info = await module.getCompilationInfo();
    const moduleErr = await d.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length || moduleErr) {
      const lines = src.wgsl.split('\n');
      const msgs = errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}\n    | ${lines[m.lineNum - 1] ?? ''}`);
      if (moduleErr) msgs.push(moduleErr.message);
      throw new Error(`kernel ${src.name} (${JSON.stringify(src.config)}) failed to compile:\n${msgs.join('\n')}`);
    }
    const layout = bindGroupLayout(d, src.bindings, src.name);
    d.pushErrorScope('validation');
    const pipeline = await d.createComputePipelineAsync({
      label: src.name,
      layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    });
    const err = await d.popErrorScope();
    if (err) throw new Error(`kernel ${src.name} (${JSON.stringify(src.config)}): pipeline creation failed: ${err.message}`);
    return { pipeline, layout };
  }

  /**
   * A storage buffer (STORAGE | COPY_SRC | COPY_DST) holding `data` (or `data` zero bytes),
   * rounded up to 16 bytes. Destroyed by release().
   */
  buffer(data: ArrayBufferView | number, label = 'test'): GPUBuffer {
    const bytes = typeof data === 'number' ? data : data.byteLength;
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const buf = this.device.createBuffer({ size, usage: U.STORAGE | U.COPY_SRC | U.COPY_DST, label });
    this.owned.push(buf);
    if (typeof data !== 'number' && data.byteLength) {
      // writeBuffer wants a multiple of 4 bytes
      const padded = new Uint8Array(Math.ceil(data.byteLength / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      this.device.queue.writeBuffer(buf, 0, padded);
    }
    return buf;
  }

  private uniform(words: number[], label: string): GPUBuffer {
    const buf = this.device.createBuffer({ size: Math.max(16, Math.ceil((words.length * 4) / 16) * 16), usage: U.UNIFORM | U.COPY_DST, label });
    this.owned.push(buf);
    this.device.queue.writeBuffer(buf, 0, new Uint32Array(words));
    return buf;
  }

  /**
   * Encodes the dispatches in order into one compute pass, then copies `reads` out; resolves
   * with the bytes of each read buffer (its full size, or `bytes` when given).
   */
  async run(dispatches: Dispatch[], reads: { buffer: GPUBuffer; bytes?: number }[] = []): Promise<ArrayBuffer[]> {
    const d = this.device;
    const compiled = await Promise.all(dispatches.map((x) => this.compile(x.src)));
    const ranges = new RangeTable(d, Math.max(1, dispatches.length));
    this.owned.push(ranges.buffer);
    dispatches.forEach((x, i) => ranges.set(i, x.range));
    ranges.flush(dispatches.length);

    // resolve every binding before encoding, so a mistake in a test throws a plain error
    const entryLists = dispatches.map((x, di) => {
      const { src } = x;
      const unknown = Object.keys(x.buffers).filter((n) => !src.bindings.some((b) => b.name === n));
      if (unknown.length) throw new Error(`kernel ${src.name} has no bindings named ${unknown.join(', ')}`);
      return src.bindings.map((b, bi): GPUBindGroupEntry => {
        if (b.type === 'range') return { binding: bi, resource: ranges.binding(di) };
        // rows of one sequence at slot 0 unless a test gives the row table
        if (b.type === 'seq') return { binding: bi, resource: { buffer: x.buffers.seq ?? this.uniform(new Array(SEQ_ROWS_MAX * 4).fill(0), 'seq rows') } };
        if (b.type === 'params') {
          if (!x.params || x.params.length !== src.params.length) {
            throw new Error(`kernel ${src.name} wants params [${src.params.join(', ')}], got ${JSON.stringify(x.params)}`);
          }
          return { binding: bi, resource: { buffer: this.uniform(x.params, `${src.name} params`) } };
        }
        const buf = x.buffers[b.name];
        if (!buf) throw new Error(`kernel ${src.name}: no buffer for binding '${b.name}'`);
        return { binding: bi, resource: { buffer: buf } };
      });
    });

    d.pushErrorScope('validation');
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass();
    dispatches.forEach((x, i) => {
      const group = d.createBindGroup({ layout: compiled[i].layout, entries: entryLists[i] });
      pass.setPipeline(compiled[i].pipeline);
      pass.setBindGroup(0, group);
      const [gx, gy, gz] = gridFor(x.src.grid, x.range.rowCount);
      pass.dispatchWorkgroups(gx, gy, gz);
    });
    pass.end();

    let staging: GPUBuffer | undefined;
    const at: number[] = [];
    let total = 0;
    for (const r of reads) {
      at.push(total);
      total += Math.ceil((r.bytes ?? r.buffer.size) / 8) * 8;
    }
    if (reads.length) {
      staging = d.createBuffer({ size: Math.max(8, total), usage: U.MAP_READ | U.COPY_DST, label: 'staging' });
      this.owned.push(staging);
      reads.forEach((r, i) => enc.copyBufferToBuffer(r.buffer, 0, staging!, at[i], Math.ceil((r.bytes ?? r.buffer.size) / 4) * 4));
    }
    d.queue.submit([enc.finish()]);
    const err = await d.popErrorScope();
    if (err) throw new Error(`validation error running ${dispatches.map((x) => x.src.name).join(', ')}: ${err.message}`);
    if (!staging) {
      await d.queue.onSubmittedWorkDone();
      return [];
    }
    await staging.mapAsync(GPUMapMode.READ);
    const mapped = staging.getMappedRange();
    const out = reads.map((r, i) => mapped.slice(at[i], at[i] + (r.bytes ?? r.buffer.size)));
    staging.unmap();
    return out;
  }

  /** Destroys every buffer this harness created (pipelines stay cached). */
  release(): void {
    for (const b of this.owned.splice(0)) b.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// data helpers

/** mulberry32: a tiny seeded PRNG (tests must not use Math.random). */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u1 = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * this.next());
  }

  floats(n: number, scale = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.normal() * scale;
    return a;
  }
}

/** Rounds to f16: the bits to upload and the exact values they hold (for the CPU reference). */
export function toF16(values: Float32Array): { bits: Uint16Array; values: Float32Array } {
  const bits = f32ToF16Bits(values);
  return { bits, values: f16BitsToF32(bits) };
}

export function f16Values(bits: Uint16Array): Float32Array {
  return f16BitsToF32(bits);
}

/** One unit in the last place of an f16 near |x| (normals; 2^-24 below). */
export function f16Ulp(x: number): number {
  const a = Math.abs(x);
  if (a < 2 ** -14) return 2 ** -24;
  return 2 ** (Math.floor(Math.log2(a)) - 10);
}

export interface Mismatch {
  index: number;
  got: number;
  want: number;
  tol: number;
}

/**
 * Indices where |got - want| > tol (NaN counts as a mismatch), at most `limit` reported plus
 * the total count.
 */
export function mismatches(got: ArrayLike<number>, want: ArrayLike<number>, tol: (i: number) => number,
  indices?: Iterable<number>, limit = 8): { count: number; first: Mismatch[] } {
  const first: Mismatch[] = [];
  let count = 0;
  const check = (i: number): void => {
    const t = tol(i);
    if (!(Math.abs(got[i] - want[i]) <= t)) {
      count++;
      if (first.length < limit) first.push({ index: i, got: got[i], want: want[i], tol: t });
    }
  };
  if (indices) for (const i of indices) check(i);
  else for (let i = 0; i < want.length; i++) check(i);
  return { count, first };
}

export function describeMismatches(what: string, m: { count: number; first: Mismatch[] }, where?: (i: number) => string): string {
  return `${what}: ${m.count} mismatches, e.g.\n${m.first
    .map((x) => `  [${where ? where(x.index) : x.index}] got ${x.got} want ${x.want} (tol ${x.tol.toExponential(2)})`)
    .join('\n')}`;
}

export function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}
