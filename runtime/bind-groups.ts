import './gpu-globals.js';
import type { Plan, PlanDispatch, PlanKernel } from '../compiler/plan.js';
import type { RangeTable } from './range-table.js';

/** What encoding a dispatch needs, resolved at load: pipeline, grid, and a bind group per range slot. */
export interface DispatchBinding {
  pipeline: GPUComputePipeline;
  grid: PlanKernel['grid'];
  /** Bind group entries; the range entry is rebound per slot. */
  entries: GPUBindGroupEntry[];
  rangeAt: number;
  bySlot: GPUBindGroup[];
}

/**
 * Bind groups of every dispatch of the plan: buffers resolved at load, one bind group per range
 * slot made on first use (a static offset into the range table), Params uniforms shared between
 * dispatches with equal values.
 */
export class BindGroups {
  private readonly bindings = new Map<PlanDispatch, DispatchBinding>();
  private readonly params = new Map<string, GPUBuffer>();

  private readonly kernels: Map<string, PlanKernel>;
  /** Bind groups of plan kernels run outside the entry points (plan.accept), by kernel, buffers and params. */
  private readonly direct = new Map<string, { pipeline: GPUComputePipeline; grid: PlanKernel['grid']; group: GPUBindGroup }>();

  /** `allocate` makes (and accounts) the Params uniforms. */
  constructor(private readonly device: GPUDevice, plan: Plan, private readonly pipelines: Map<string, GPUComputePipeline>,
    private readonly buffer: (id: string) => GPUBuffer, private readonly ranges: RangeTable,
    private readonly allocate: (desc: GPUBufferDescriptor) => GPUBuffer, private readonly seqRows: GPUBuffer) {
    this.kernels = new Map(plan.kernels.map((k) => [k.id, k]));
    for (const e of plan.entries) {
      for (const st of e.stages) {
        for (const disp of st.dispatches) {
          const k = this.kernels.get(disp.kernel)!;
          this.bindings.set(disp, {
            pipeline: pipelines.get(k.id)!, grid: k.grid, entries: this.entriesOf(k, disp.buffers, disp.params),
            rangeAt: k.bindings.findIndex((b) => b.type === 'range'), bySlot: [],
          });
        }
      }
    }
  }

  /** A uniform holding `values`, shared by every dispatch with equal values. */
  private paramsBuffer(values: readonly number[]): GPUBuffer {
    const key = values.join(',');
    let pb = this.params.get(key);
    if (!pb) {
      pb = this.allocate({ size: Math.max(16, values.length * 4), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: `params ${key}` });
      this.device.queue.writeBuffer(pb, 0, new Uint32Array(values));
      this.params.set(key, pb);
    }
    return pb;
  }

  /** Bind group entries of kernel `k`: storage buffers in binding order, the range uniform at slot 0. */
  private entriesOf(k: PlanKernel, buffers: readonly string[], params: readonly number[]): GPUBindGroupEntry[] {
    let bi = 0;
    return k.bindings.map((b, i): GPUBindGroupEntry => {
      switch (b.type) {
        case 'range': return { binding: i, resource: this.ranges.binding(0) };
        case 'ranges': return { binding: i, resource: { buffer: this.ranges.buffer } };
        case 'seq': return { binding: i, resource: { buffer: this.seqRows } };
        case 'params': return { binding: i, resource: { buffer: this.paramsBuffer(params) } };
        default: return { binding: i, resource: { buffer: this.buffer(buffers[bi++]) } };
      }
    });
  }

  /** Pipeline, grid and bind group of a plan kernel run with params chosen at run time (made once per params). */
  call(call: { kernel: string; buffers: readonly string[] }, params: readonly number[]): { pipeline: GPUComputePipeline; grid: PlanKernel['grid']; group: GPUBindGroup } {
    const key = `${call.kernel}|${call.buffers.join(',')}|${params.join(',')}`;
    let d = this.direct.get(key);
    if (!d) {
      const k = this.kernels.get(call.kernel);
      const pipeline = this.pipelines.get(call.kernel);
      if (!k || !pipeline) throw new Error(`internal: kernel ${call.kernel} is not in the plan`);
      if (k.bindings.some((b) => b.type === 'range')) throw new Error(`internal: kernel ${call.kernel} takes a row range; run it in a stage`);
      d = { pipeline, grid: k.grid, group: this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: this.entriesOf(k, call.buffers, params) }) };
      this.direct.set(key, d);
    }
    return d;
  }

  get(disp: PlanDispatch): DispatchBinding {
    const b = this.bindings.get(disp);
    if (!b) throw new Error('internal: a dispatch outside the plan');
    return b;
  }

  /** The dispatch's entries with its range bound to `slot`. */
  entries(b: DispatchBinding, slot: number): GPUBindGroupEntry[] {
    return b.entries.map((e, i) => (i === b.rangeAt ? { binding: i, resource: this.ranges.binding(slot) } : e));
  }

  /** The dispatch's bind group for range slot `slot` (made once). */
  group(b: DispatchBinding, slot: number): GPUBindGroup {
    return (b.bySlot[slot] ??= this.device.createBindGroup({ layout: b.pipeline.getBindGroupLayout(0), entries: this.entries(b, slot) }));
  }
}
