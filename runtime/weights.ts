import './gpu-globals.js';
import { LscError } from '../compiler/errors.js';
import type { Plan, PlanWeight } from '../compiler/plan.js';
import type { SafetensorsCheckpoint } from './safetensors.js';

const HINT_MISMATCH = 'the graph does not describe this checkpoint: build it from the model\'s config.json (omit --graph)';

/**
 * Checks every tensor the plan needs against the checkpoint (name, dtype, shape) before any
 * upload, so a bad checkpoint fails with nothing allocated.
 */
export function checkCheckpoint(plan: Plan, ckpt: SafetensorsCheckpoint): void {
  for (const w of plan.weights) {
    if (w.tiedTo) continue;
    const t = ckpt.get(w.hf);
    if (!t) {
      const near = [...ckpt.tensors.keys()].filter((n) => n.endsWith(w.hf.split('.').slice(-2).join('.'))).slice(0, 3);
      throw new LscError(`tensor '${w.hf}' is missing from the checkpoint${near.length ? ` (similar: ${near.join(', ')})` : ''}`,
        { file: ckpt.dir, tensor: w.hf }, HINT_MISMATCH);
    }
    if (t.shape.length !== w.shape.length || t.shape.some((d, i) => d !== w.shape[i])) {
      throw new LscError(`tensor '${w.hf}' has shape [${t.shape.join(', ')}], the graph expects [${w.shape.join(', ')}]`,
        { file: t.file, tensor: w.hf }, HINT_MISMATCH);
    }
  }
}

export interface UploadProgress {
  (doneBytes: number, totalBytes: number, tensor: string): void;
}

/** GPU bytes of the weights of a plan (tied weights counted once). */
export function weightBytes(plan: Plan): number {
  return plan.buffers.filter((b) => b.kind === 'weight').reduce((a, b) => a + b.bytes, 0);
}

/**
 * Streams every weight tensor into its GPU buffers (row slices as the plan splits them),
 * converting to f16 / f32 on the way; host memory stays at a few chunk sizes.
 */
export async function uploadWeights(device: GPUDevice, plan: Plan, ckpt: SafetensorsCheckpoint,
  onProgress?: UploadProgress): Promise<Map<string, GPUBuffer>> {
  checkCheckpoint(plan, ckpt);
  const sizes = new Map(plan.buffers.map((b) => [b.id, b.bytes]));
  const out = new Map<string, GPUBuffer>();
  const total = weightBytes(plan);
  let done = 0;
  let sinceYield = 0;
  try {
    for (const w of plan.weights as PlanWeight[]) {
      if (w.tiedTo) continue;
      const rows = w.shape[0];
      for (const ch of w.chunks) {
        const bytes = sizes.get(ch.buffer)!;
        const buf = device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: ch.buffer });
        out.set(ch.buffer, buf);
        const elemBytes = w.gpuDtype === 'f16' ? 2 : 4;
        const [r0, n] = w.shape.length === 1 ? [0, rows] : [ch.rowStart, ch.rowCount];
        ckpt.readRows(w.hf, w.gpuDtype, r0, n, (data, elementOffset) => {
          let view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
          if (view.byteLength % 4) {
            const padded = new Uint8Array(view.byteLength + 2);
            padded.set(view);
            view = padded;
          }
          device.queue.writeBuffer(buf, elementOffset * elemBytes, view);
          done += data.byteLength;
          sinceYield += data.byteLength;
        });
        onProgress?.(done, total, w.hf);
        // let the queue drain its staging copies now and then so host memory stays bounded
        if (sinceYield > 256 << 20) {
          await device.queue.onSubmittedWorkDone();
          sinceYield = 0;
        }
      }
    }
    await device.queue.onSubmittedWorkDone();
  } catch (e) {
    for (const b of out.values()) b.destroy();
    throw e;
  }
  return out;
}
