import type { PlanBuffer, PlanWeight } from '../plan.js';
import type { TypedGraph } from './infer-shapes.js';
import { LscError, pointer } from '../errors.js';

/**
 * Weight buffers: matrices as f16, norm vectors as f32. A matrix larger than the binding limit is
 * split into row slices (each its own buffer) of a multiple of `rowAlign` rows: what the kernels
 * reading a slice need (codegen/matmul.ts sliceRowAlign: whole heads, so RoPE pairs stay in one
 * slice). Tied weights share their target's buffers.
 */
export function planWeights(g: TypedGraph, maxBinding: number, rowAlign: number, file?: string): { weights: PlanWeight[]; buffers: PlanBuffer[] } {
  const weights: PlanWeight[] = [];
  const buffers: PlanBuffer[] = [];
  const byId = new Map<string, PlanWeight>();
  const instances = [...g.weights.values()].sort((a, b) => Number(!!a.tiedTo) - Number(!!b.tiedTo));
  for (const w of instances) {
    const shape = g.weightShapes.get(w.id)!;
    const gpuDtype = shape.length === 1 ? 'f32' : 'f16';
    if (w.tiedTo) {
      const target = byId.get(w.tiedTo);
      if (!target) throw new Error(`internal: tied weight ${w.id} -> ${w.tiedTo} missing`);
      const pw = { id: w.id, hf: w.hf, shape, gpuDtype, chunks: target.chunks, tiedTo: w.tiedTo } as PlanWeight;
      weights.push(pw);
      byId.set(w.id, pw);
      continue;
    }
    const rows = shape[0];
    const rowBytes = (shape.length === 1 ? 1 : shape[1]) * (gpuDtype === 'f16' ? 2 : 4);
    const total = rows * rowBytes;
    const chunks: PlanWeight['chunks'] = [];
    if (total <= maxBinding || shape.length === 1) {
      chunks.push({ buffer: `w:${w.id}`, rowStart: 0, rowCount: rows });
    } else {
      const per = Math.floor(maxBinding / rowBytes / rowAlign) * rowAlign;
      if (per <= 0) {
        throw new LscError(`a row slice of weight '${w.decl}' (${rowAlign} rows of ${rowBytes} bytes) exceeds the binding limit ${maxBinding}`,
          { file, pointer: pointer('weights', w.decl, 'shape', 1) }, 'use a smaller inner dimension, or compile for an adapter with a larger maxStorageBufferBindingSize');
      }
      for (let r = 0, i = 0; r < rows; r += per, i++) {
        chunks.push({ buffer: `w:${w.id}#${i}`, rowStart: r, rowCount: Math.min(per, rows - r) });
      }
    }
    for (const c of chunks) {
      buffers.push({
        id: c.buffer, kind: 'weight', bytes: c.rowCount * rowBytes,
        doc: `${w.hf}${chunks.length > 1 ? ` rows ${c.rowStart}..${c.rowStart + c.rowCount - 1}` : ''} ${gpuDtype}`,
      });
    }
    const pw: PlanWeight = { id: w.id, hf: w.hf, shape, gpuDtype, chunks };
    weights.push(pw);
    byId.set(w.id, pw);
  }
  return { weights, buffers };
}
