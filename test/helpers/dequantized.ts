import type { Plan } from '../../compiler/plan.js';
import { isQuant } from '../../compiler/ir/weight-formats.js';
import { SafetensorsCheckpoint } from '../../runtime/safetensors.js';
import { dequantizeRows, quantizeRows } from '../../runtime/quant/quantize.js';

/**
 * A checkpoint's tensors as a plan holds them, in float64 for the CPU reference: each matrix the
 * plan quantizes quantized on the CPU (runtime/quant/quantize.ts) and dequantized, the rest as
 * stored. The format of each tensor is the plan's (PlanWeight.gpuDtype), so mixed plans are judged
 * on their own weights.
 */
export function dequantizedCheckpoint(dir: string, plan: Plan): Map<string, Float64Array> {
  const format = new Map(plan.weights.map((w) => [w.hf, w.gpuDtype]));
  const ckpt = SafetensorsCheckpoint.open(dir);
  try {
    const tensors = new Map<string, Float64Array>();
    for (const [name, t] of ckpt.tensors) {
      const v = ckpt.readAll(name, 'f32') as Float32Array;
      const f = format.get(name);
      if (f === undefined || !isQuant(f)) {
        tensors.set(name, Float64Array.from(v));
        continue;
      }
      const [rows, cols] = t.shape;
      tensors.set(name, Float64Array.from(dequantizeRows(f, quantizeRows(f, v, rows, cols), rows, cols)));
    }
    return tensors;
  } finally {
    ckpt.close();
  }
}
