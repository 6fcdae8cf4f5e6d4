import type { PlanBuffer } from '../plan.js';
import type { FusedKernel } from '../ir/kernel.js';
import { familyOf } from '../../codegen/registry.js';
import type { TypedGraph } from './infer-shapes.js';

/**
 * Activation memory planning. Three kinds of values get buffers:
 *   - the trunk (embedding and residual stream): one persistent buffer updated in place; its
 *     rows are also the exit query cache that verify reads,
 *   - logits and picked tokens: persistent, the CPU reads them,
 *   - temporaries between kernels: assigned by liveness to reusable buffers, each its own
 *     GPUBuffer (WebGPU cannot bind two ranges of one buffer read and read-write at once).
 * Values computed inside a fused kernel get nothing. Liveness is taken over the decode order;
 * every other entry point runs a subsequence of it, so the assignment holds for all of them.
 */
export interface BufferAssignment {
  valueBuffer: Map<string, string>;
  buffers: PlanBuffer[];
}

export const kernelReads = (k: FusedKernel): string[] => familyOf(k).reads(k);
export const kernelWrites = (k: FusedKernel): string[] => familyOf(k).writes(k);

export function planBuffers(order: FusedKernel[], all: FusedKernel[], g: TypedGraph, rows: number,
  tokenSlots: number): BufferAssignment {
  const valueBuffer = new Map<string, string>();
  const buffers: PlanBuffer[] = [];
  const width = (id: string): number => {
    const s = g.values.get(id)!.shape;
    return (s.length > 1 ? s[1] : 1) as number;
  };
  const trunkValues = new Set<string>();
  let logits: string | undefined;
  const picks = new Set<string>();
  for (const k of all) {
    const p = familyOf(k).persistent?.(k) ?? {};
    for (const v of p.trunk ?? []) trunkValues.add(v);
    for (const v of p.picks ?? []) picks.add(v);
    if (p.logits) logits = p.logits;
  }
  const d = Math.max(...[...trunkValues].map(width));
  buffers.push({ id: 'act:trunk', kind: 'activation', bytes: rows * d * 4, doc: `trunk state [${rows}, ${d}] f32; rows 0..k are the exit query cache` });
  for (const v of trunkValues) valueBuffer.set(v, 'act:trunk');
  if (logits) {
    buffers.push({ id: 'io:logits', kind: 'io', bytes: rows * width(logits) * 4, doc: `logits [${rows}, ${width(logits)}] f32` });
    valueBuffer.set(logits, 'io:logits');
  }
  buffers.push({ id: 'io:tokens', kind: 'io', bytes: tokenSlots * 4, doc: `token ids [${tokenSlots}] u32: step inputs, picks, verify picks` });
  for (const p of picks) valueBuffer.set(p, 'io:tokens');

  // liveness of temporaries over the decode order
  const lastUse = new Map<string, number>();
  order.forEach((k, i) => { for (const r of kernelReads(k)) lastUse.set(r, i); });
  const temps: { id: string; width: number; values: string[]; busyUntil: number }[] = [];
  order.forEach((k, i) => {
    for (const v of kernelWrites(k)) {
      if (valueBuffer.has(v)) continue;
      const w = width(v);
      const free = temps.filter((t) => t.busyUntil < i);
      // best fit: the smallest free buffer that holds it, else the largest free one (it grows)
      const fit = free.filter((t) => t.width >= w).sort((a, b) => a.width - b.width)[0]
        ?? free.sort((a, b) => b.width - a.width)[0];
      const slot = fit ?? { id: `act:t${temps.length}`, width: 0, values: [], busyUntil: -1 };
      if (!fit) temps.push(slot);
      slot.width = Math.max(slot.width, w);
      slot.values.push(v);
      slot.busyUntil = lastUse.get(v) ?? i;
      valueBuffer.set(v, slot.id);
    }
  });
  for (const t of temps) {
    const sample = t.values.slice(0, 3).join(', ') + (t.values.length > 3 ? `, … (${t.values.length} values)` : '');
    buffers.push({ id: t.id, kind: 'activation', bytes: rows * t.width * 4, doc: `temporary [${rows}, ${t.width}] f32: ${sample}` });
  }
  // values of other entry points (e.g. the exit head) that decode does not produce
  for (const k of all) {
    for (const v of [...kernelWrites(k), ...kernelReads(k)]) {
      if (!valueBuffer.has(v)) throw new Error(`internal: value ${v} has no buffer`);
    }
  }
  return { valueBuffer, buffers };
}
