import { f16BitsToF32, f32ToF16Bits } from '../dtype-convert.js';
import { planarLayout, QBLOCK, type QuantFormat } from '../../compiler/ir/weight-formats.js';

/**
 * Q8_0 / Q4_0 quantization on the CPU, as ggml's reference quantizers do it (quantize_row_q8_0_ref,
 * quantize_row_q4_0_ref, in f32 arithmetic), so lsc and llama.cpp make the same blocks of the same
 * weights. Output is the planar layout of compiler/ir/weight-formats.ts: quants, then f16 scales.
 */

export interface QuantRows {
  /** Quant bytes of every row, rows in order. */
  quants: Uint8Array;
  /** f16 scale bits of every block, rows in order. */
  scales: Uint16Array;
}

const f32 = Math.fround;

/** Quantizes `rows` rows of `cols` values (src row-major) into `out` (fresh when absent). */
export function quantizeRows(f: QuantFormat, src: Float32Array, rows: number, cols: number, out?: QuantRows): QuantRows {
  const lay = planarLayout(f, rows, cols);
  const nb = rows * lay.blocksPerRow;
  if (src.length < rows * cols) throw new RangeError(`quantizeRows: ${src.length} values for ${rows} rows of ${cols}`);
  const quants = out?.quants.subarray(0, lay.scaleOffset) ?? new Uint8Array(lay.scaleOffset);
  const d = new Float32Array(nb);
  if (f === 'q8_0') {
    const q = new Int8Array(quants.buffer, quants.byteOffset, quants.length);
    for (let b = 0; b < nb; b++) {
      const o = b * QBLOCK;
      let amax = 0;
      for (let j = 0; j < QBLOCK; j++) amax = Math.max(amax, Math.abs(src[o + j]));
      const db = f32(amax / 127);
      const id = db ? f32(1 / db) : 0;
      d[b] = db;
      // roundf: halves away from zero
      for (let j = 0; j < QBLOCK; j++) {
        const v = f32(src[o + j] * id);
        q[o + j] = Math.sign(v) * Math.round(Math.abs(v));
      }
    }
  } else {
    for (let b = 0; b < nb; b++) {
      const o = b * QBLOCK;
      let amax = 0;
      let max = 0;
      for (let j = 0; j < QBLOCK; j++) {
        const v = src[o + j];
        if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
      }
      const db = f32(max / -8);
      const id = db ? f32(1 / db) : 0;
      d[b] = db;
      const qo = b * (QBLOCK / 2);
      for (let j = 0; j < QBLOCK / 2; j++) {
        const x0 = Math.min(15, Math.trunc(f32(f32(src[o + j] * id) + 8.5)));
        const x1 = Math.min(15, Math.trunc(f32(f32(src[o + j + QBLOCK / 2] * id) + 8.5)));
        quants[qo + j] = x0 | (x1 << 4);
      }
    }
  }
  const scales = f32ToF16Bits(d, out?.scales.subarray(0, nb));
  return { quants, scales };
}

/** The planar bytes of a quantized matrix (as a GPU buffer holds them, padded to 4 bytes). */
export function planarBytes(f: QuantFormat, q: QuantRows, rows: number, cols: number): Uint8Array {
  const lay = planarLayout(f, rows, cols);
  const out = new Uint8Array(Math.ceil(lay.bytes / 4) * 4);
  out.set(q.quants.subarray(0, lay.scaleOffset));
  out.set(new Uint8Array(q.scales.buffer, q.scales.byteOffset, rows * lay.blocksPerRow * 2), lay.scaleOffset);
  return out;
}

/** The values a quantized matrix stands for: quant × f16 scale (exact in f32). */
export function dequantizeRows(f: QuantFormat, q: QuantRows, rows: number, cols: number): Float32Array {
  const lay = planarLayout(f, rows, cols);
  const nb = rows * lay.blocksPerRow;
  const d = f16BitsToF32(q.scales.subarray(0, nb));
  const out = new Float32Array(rows * cols);
  for (let b = 0; b < nb; b++) {
    const o = b * QBLOCK;
    if (f === 'q8_0') {
      const s = new Int8Array(q.quants.buffer, q.quants.byteOffset + o, QBLOCK);
      for (let j = 0; j < QBLOCK; j++) out[o + j] = s[j] * d[b];
    } else {
      const qo = b * (QBLOCK / 2);
      for (let j = 0; j < QBLOCK / 2; j++) {
        const byte = q.quants[qo + j];
        out[o + j] = ((byte & 15) - 8) * d[b];
        out[o + j + QBLOCK / 2] = ((byte >> 4) - 8) * d[b];
      }
    }
  }
  return out;
}
