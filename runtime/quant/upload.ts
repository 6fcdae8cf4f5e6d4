import type { PlanWeight } from '../../compiler/plan.js';
import { planarLayout, type QuantFormat } from '../../compiler/ir/weight-formats.js';
import type { WeightSource } from '../weight-source.js';
import { quantizeRows, type QuantRows } from './quantize.js';

/**
 * Quantizing a checkpoint's rows while loading (runtime/weights.ts streams every weight; this
 * writes the quantized ones): a block of rows is read as f32, quantized on the CPU and written to
 * the two regions of its row slice's planar buffer (compiler/ir/weight-formats.ts).
 */

/**
 * Rows per block for a quantized weight of `cols` values a row, within `budgetBytes` of f32:
 * even, so every block's scales start at a 4-byte boundary (writeBuffer's unit) also when a row
 * has an odd number of blocks.
 */
export function quantBlockRows(cols: number, budgetBytes: number): number {
  const rows = Math.max(2, Math.floor(budgetBytes / (cols * 4)));
  return rows - (rows % 2);
}

export class QuantWriter {
  private f32 = new Float32Array(0);
  private q?: QuantRows;

  constructor(private readonly device: GPUDevice) {}

  /**
   * Quantizes rows [rowInChunk, rowInChunk + rows) of a chunk of `chunkRows` rows starting at row
   * `chunkStart` of weight w, into the chunk's buffer; returns the GPU bytes written.
   */
  async write(ckpt: WeightSource, w: PlanWeight, buf: GPUBuffer, chunkStart: number, chunkRows: number, rowInChunk: number, rows: number): Promise<number> {
    const f = w.gpuDtype as QuantFormat;
    const cols = w.shape[1];
    if (this.f32.length < rows * cols) this.f32 = new Float32Array(rows * cols);
    const src = this.f32;
    await ckpt.readRows(w.hf, 'f32', chunkStart + rowInChunk, rows, (data, off) => src.set(data as Float32Array, off));
    const block = planarLayout(f, rows, cols);
    const nb = rows * block.blocksPerRow;
    // one scale more than needed: an odd count is written padded to 4 bytes
    if (!this.q || this.q.quants.length < block.scaleOffset || this.q.scales.length < nb + 1) {
      this.q = { quants: new Uint8Array(block.scaleOffset), scales: new Uint16Array(nb + 1) };
    }
    const q = quantizeRows(f, src, rows, cols, this.q);
    const chunk = planarLayout(f, chunkRows, cols);
    // plain ArrayBuffers (the DOM typing of writeBuffer wants that said)
    this.device.queue.writeBuffer(buf, rowInChunk * chunk.rowQuantBytes, new Uint8Array(q.quants.buffer as ArrayBuffer, q.quants.byteOffset, q.quants.byteLength));
    const scaleBytes = nb * 2;
    // the last block's scales may end 2 bytes short of a 4-byte unit: the buffer is padded to 4
    const scales = new Uint8Array(q.scales.buffer as ArrayBuffer, q.scales.byteOffset, Math.ceil(scaleBytes / 4) * 4);
    this.device.queue.writeBuffer(buf, chunk.scaleOffset + rowInChunk * chunk.blocksPerRow * 2, scales);
    return block.bytes;
  }
}
