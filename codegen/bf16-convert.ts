/**
 * WGSL of the load-time BF16 → f16 conversion (runtime/gpu-convert.ts): raw bf16 words uploaded
 * to a scratch buffer are converted into a weight buffer on the GPU instead of in JS. Integer
 * arithmetic only (no shader-f16, no pack2x16float, whose rounding and subnormals WGSL leaves to
 * the implementation), the same rounding as runtime/dtype-convert.ts: bit-identical to the CPU
 * path. Any ±inf / NaN result (a non-finite bf16 or one beyond f16's range) sets `flag`.
 */

export const BF16_CONVERT_WORKGROUP = 256;

/** Bindings: 0 src words (2 bf16 each), 1 dst words (2 f16 each), 2 flag, 3 params {words, dstWord, rowStride}. */
export function bf16ToF16Wgsl(): string {
  return `struct Params { words: u32, dstWord: u32, rowStride: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<storage, read_write> flag: atomic<u32>;
@group(0) @binding(3) var<uniform> p: Params;

// one bf16 (low 16 bits) to f16 bits, round to nearest even, overflow to inf, NaN stays NaN
fn bf16ToF16(h: u32) -> u32 {
  let sign = h & 0x8000u;
  let a = h & 0x7fffu;
  if (a >= 0x4780u) {
    if (a > 0x7f80u) { return sign | 0x7e00u | ((a << 3u) & 0x3ffu); }
    return sign | 0x7c00u;
  }
  // normal f16: bf16's 7 mantissa bits fit f16's 10, no rounding
  if (a >= 0x3880u) { return sign | ((a - 0x3800u) << 3u); }
  // subnormal f16 or zero: value = m * 2^(e-150), f16's unit 2^-24
  let e = a >> 7u;
  if (e < 102u) { return sign; }
  let shift = 126u - e;
  let m = ((a & 0x7fu) << 16u) | 0x800000u;
  let half = 1u << (shift - 1u);
  let rem = m & ((half << 1u) - 1u);
  var q = m >> shift;
  if (rem > half || (rem == half && (q & 1u) == 1u)) { q = q + 1u; }
  return sign | q;
}

@compute @workgroup_size(${BF16_CONVERT_WORKGROUP})
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.y * p.rowStride + g.x;
  if (i >= p.words) { return; }
  let w = src[i];
  let lo = bf16ToF16(w & 0xffffu);
  let hi = bf16ToF16(w >> 16u);
  if ((lo & 0x7c00u) == 0x7c00u || (hi & 0x7c00u) == 0x7c00u) { atomicOr(&flag, 1u); }
  dst[p.dstWord + i] = lo | (hi << 16u);
}
`;
}
