import { blockBytes, planarLayout, quantBytesPerBlock, type QuantFormat } from '../../compiler/ir/weight-formats.js';
import type { QuantRows } from './quantize.js';

/**
 * GGUF's interleaved blocks (f16 scale, then the quants: ggml's block_q8_0 / block_q4_0) to and
 * from the split form lsc quantizes into (QuantRows: quants, scales).
 */

export function quantToBlocks(f: QuantFormat, q: QuantRows, rows: number, cols: number): Uint8Array {
  const lay = planarLayout(f, rows, cols);
  const nb = rows * lay.blocksPerRow;
  const qb = quantBytesPerBlock(f);
  const bb = blockBytes(f);
  const out = new Uint8Array(nb * bb);
  const sv = new Uint8Array(q.scales.buffer, q.scales.byteOffset, nb * 2);
  for (let b = 0; b < nb; b++) {
    out[b * bb] = sv[2 * b];
    out[b * bb + 1] = sv[2 * b + 1];
    out.set(q.quants.subarray(b * qb, (b + 1) * qb), b * bb + 2);
  }
  return out;
}

export function blocksToQuant(f: QuantFormat, blocks: Uint8Array, rows: number, cols: number): QuantRows {
  const lay = planarLayout(f, rows, cols);
  const nb = rows * lay.blocksPerRow;
  const qb = quantBytesPerBlock(f);
  const bb = blockBytes(f);
  const quants = new Uint8Array(nb * qb);
  const scales = new Uint16Array(nb);
  for (let b = 0; b < nb; b++) {
    scales[b] = blocks[b * bb] | (blocks[b * bb + 1] << 8);
    quants.set(blocks.subarray(b * bb + 2, (b + 1) * bb), b * qb);
  }
  return { quants, scales };
}
