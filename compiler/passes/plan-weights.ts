import type { PlanBuffer, PlanWeight } from '../plan.js';
import type { TypedGraph } from './infer-shapes.js';
import { LscError, pointer } from '../errors.js';
import { isQuant, matrixBytes, QBLOCK, type WeightFormat } from '../ir/weight-formats.js';

/**
 * Weight buffers, each weight in its format (passes/choose-formats.ts: f32 norm vectors, f16 or a
 * block format of compiler/ir/weight-formats.ts for matrices). Quantized rows are whole blocks, so row slices cut at block boundaries. A matrix larger than the binding limit is
 * split into row slices (each its own buffer) of a multiple of `rowAlign` rows: what the kernels
 * reading a slice need (codegen/matmul.ts sliceRowAlign: whole heads, so RoPE pairs stay in one
 * slice). Tied weights share their target's buffers.
 */
export function planWeights(g: TypedGraph, formats: Map<string, WeightFormat>, maxBinding: number, rowAlign: number,
  file?: string): { weights: PlanWeight[]; buffers: PlanBuffer[] } {
  const weights: PlanWeight[] = [];
  const buffers: PlanBuffer[] = [];
  const byId = new Map<string, PlanWeight>();
  const instances = [...g.weights.values()].sort((a, b) => Number(!!a.tiedTo) - Number(!!b.tiedTo));
  for (const w of instances) {
    const shape = g.weightShapes.get(w.id)!;
    const gpuDtype = formats.get(w.id)!;
    if (isQuant(gpuDtype) && shape[1] % QBLOCK !== 0) {
      throw new LscError(`weight '${w.decl}' has rows of ${shape[1]} values, not whole ${gpuDtype} blocks of ${QBLOCK}`,
        { file, pointer: pointer('weights', w.decl, 'shape', 1) }, 'use --weights f16 for this model (or f16 for this weight), or dims that are multiples of 32');
    }
    if (w.tiedTo) {
      const target = byId.get(w.tiedTo);
      if (!target) throw new Error(`internal: tied weight ${w.id} -> ${w.tiedTo} missing`);
      const pw: PlanWeight = { id: w.id, hf: w.hf, shape, gpuDtype: target.gpuDtype, chunks: target.chunks, tiedTo: w.tiedTo };
      weights.push(pw);
      byId.set(w.id, pw);
      continue;
    }
    const rows = shape[0];
    const cols = shape.length === 1 ? 1 : shape[1];
    // bytes per row (a quantized row: its quants and scales)
    const rowBytes = matrixBytes(gpuDtype, 1, cols);
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
        id: c.buffer, kind: 'weight', bytes: matrixBytes(gpuDtype, c.rowCount, cols),
        doc: `${w.hf}${chunks.length > 1 ? ` rows ${c.rowStart}..${c.rowStart + c.rowCount - 1}` : ''} ${gpuDtype}`,
      });
    }
    const pw: PlanWeight = { id: w.id, hf: w.hf, shape, gpuDtype, chunks };
    weights.push(pw);
    byId.set(w.id, pw);
  }
  return { weights, buffers };
}
