import { planarLayout, QBLOCK, type MatrixFormat } from '../compiler/ir/weight-formats.js';
import { u } from './kernel.js';

/**
 * How a matmul kernel reads four consecutive weights of a row (k4: their index / 4) as a vec4<f32>,
 * per matrix format: f16 pairs, or a planar Q8_0 / Q4_0 matrix (compiler/ir/weight-formats.ts)
 * dequantized in the load, quant × f16 scale, which is exact in f32, so a quantized kernel
 * computes exactly what the f16 one does on the dequantized weights.
 */
export interface WeightReader {
  /** WGSL type of the binding's array. */
  array: string;
  /** Expression for the vec4 of weights 4·k4..4·k4+3 of row `row` (a WGSL u32 expression) of binding `name`. */
  load(name: string, row: string): string;
}

/** Helper functions the readers call (emitted once per kernel that reads a quantized weight). */
export const DEQUANT_WGSL = `fn q8x4(v: u32) -> vec4<f32> {
  return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(v << 24u, v << 16u, v << 8u, v)) >> vec4<u32>(24u));
}
fn q4x4(v: u32, shift: u32) -> vec4<f32> {
  let m = (v >> shift) & 0x0f0f0f0fu;
  return vec4<f32>(vec4<u32>(m & 0xffu, (m >> 8u) & 0xffu, (m >> 16u) & 0xffu, m >> 24u)) - vec4<f32>(8.0);
}
fn qscale(v: u32, odd: u32) -> f32 {
  let s = unpack2x16float(v);
  return select(s.x, s.y, odd == 1u);
}`;

/**
 * The reader of a `rows` × `k` matrix (or row slice) in format f. Q4_0: weights 4·k4.. lie in
 * word k4 % 4 of their block's four quant words, in the low nibbles for the block's first 16
 * weights and the high ones for the last 16.
 */
export function weightReader(f: MatrixFormat, rows: number, k: number): WeightReader {
  if (f === 'f16') return { array: 'array<vec2<u32>>', load: (w, r) => `unpack4(${w}[${r} * ${u(k / 4)} + k4])` };
  const lay = planarLayout(f, rows, k);
  const perBlock = QBLOCK / 4;
  const scale = (w: string, r: string): string =>
    `qscale(${w}[${u(lay.scaleOffset / 4)} + (${r} * ${u(lay.blocksPerRow)} + k4 / ${u(perBlock)}) / 2u], (${r} * ${u(lay.blocksPerRow)} + k4 / ${u(perBlock)}) % 2u)`;
  if (f === 'q8_0') {
    return { array: 'array<u32>', load: (w, r) => `q8x4(${w}[${r} * ${u(lay.rowQuantBytes / 4)} + k4]) * ${scale(w, r)}` };
  }
  return {
    array: 'array<u32>',
    load: (w, r) => `q4x4(${w}[${r} * ${u(lay.rowQuantBytes / 4)} + (k4 / 8u) * 4u + k4 % 4u], ((k4 / 4u) % 2u) * 4u) * ${scale(w, r)}`,
  };
}
