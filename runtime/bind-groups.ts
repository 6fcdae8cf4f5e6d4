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

  /** `allocate` makes (and accounts) the Params uniforms. */
  constructor(private readonly device: GPUDevice, plan: Plan, pipelines: Map<string, GPUComputePipeline>,
    buffer: (id: string) => GPUBuffer, private readonly ranges: RangeTable, allocate: (desc: GPUBufferDescriptor) => GPUBuffer) {
    const kernels = new Map(plan.kernels.map((k) => [k.id, k]));
    for (const e of plan.entries) {
      for (const st of e.stages) {
        for (const disp of st.dispatches) {
          const k = kernels.get(disp.kernel)!;
          let bi = 0;
          const entries: GPUBindGroupEntry[] = k.bindings.map((b, i) => {
            if (b.type === 'range') return { binding: i, resource: ranges.binding(0) };
            if (b.type === 'params') {
              const key = disp.params.join(',');
              let pb = this.params.get(key);
              if (!pb) {
                pb = allocate({ size: Math.max(16, disp.params.length * 4), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: `params ${key}` });
                device.queue.writeBuffer(pb, 0, new Uint32Array(disp.params));
                this.params.set(key, pb);
              }
              return { binding: i, resource: { buffer: pb } };
            }
            return { binding: i, resource: { buffer: buffer(disp.buffers[bi++]) } };
          });
          this.bindings.set(disp, {
            pipeline: pipelines.get(k.id)!, grid: k.grid, entries,
            rangeAt: k.bindings.findIndex((b) => b.type === 'range'), bySlot: [],
          });
        }
      }
    }
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
