/**
 * Exact float conversions between F32, F16 and BF16 bit patterns (Node 20 has no Float16Array).
 * All loops work on integer views, allocate nothing per element, and assume a little-endian host
 * (every platform Node runs WebGPU on).
 *
 * The f32 -> f16 loops read src[i] before writing dst[i] and walk forward, so they may be run in
 * place over one buffer when dst's elements are no wider than src's (safetensors.ts relies on it).
 */

/** One f32 bit pattern (as uint32) to f16 bits, round-to-nearest-even. */
function f32BitsToF16(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a >= 0x47800000) {
    // >= 65536 (always rounds to inf), inf, or NaN. NaN stays NaN: quiet bit + top payload bits.
    return a > 0x7f800000 ? sign | 0x7e00 | ((a >>> 13) & 0x3ff) : sign | 0x7c00;
  }
  if (a >= 0x38800000) {
    // Normal f16 range: rebias exponent, then add half-ulp-minus-one plus the lsb to round to even.
    // A carry out of the mantissa bumps the exponent, reaching 0x7c00 (inf) for >= 65520.
    return sign | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
  }
  // Subnormal f16 (or zero): value = m * 2^(e-150); f16 subnormal unit is 2^-24, so shift m by 126-e.
  const e = a >>> 23;
  const shift = 126 - e;
  if (shift > 24) return sign; // below half the smallest subnormal (f32 subnormals included)
  const m = (a & 0x7fffff) | 0x800000;
  const half = 1 << (shift - 1);
  const rem = m & ((half << 1) - 1);
  let q = m >>> shift;
  if (rem > half || (rem === half && (q & 1) === 1)) q++; // may carry into the smallest normal: correct
  return sign | q;
}

function u32View(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function checkDst<T extends { length: number }>(dst: T, n: number): T {
  if (dst.length < n) throw new RangeError(`destination holds ${dst.length} elements, need ${n}`);
  return dst;
}

/** F32 -> F16 bits, round-to-nearest-even; subnormals exact, overflow to +-inf, NaN stays (quiet) NaN. */
export function f32ToF16Bits(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkDst(dst, src.length);
  const s = u32View(src);
  for (let i = 0; i < s.length; i++) dst[i] = f32BitsToF16(s[i]);
  return dst;
}

let f16Table: Float32Array | undefined;

/** All 65536 f16 values as f32 (256 KiB), built on first use. */
function f16ToF32Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  const tu = u32View(t);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0x1f) tu[h] = sign | 0x7f800000 | (m << 13); // inf / NaN, payload kept
    else if (e !== 0) tu[h] = sign | ((e + 112) << 23) | (m << 13);
    else t[h] = (sign ? -m : m) * 2 ** -24; // zero / subnormal: exact in f32
  }
  f16Table = t;
  return t;
}

/** F16 bits -> F32, exact. */
export function f16BitsToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkDst(dst, src.length);
  const t = f16ToF32Table();
  for (let i = 0; i < src.length; i++) dst[i] = t[src[i]];
  return dst;
}

/** BF16 bits -> F32, exact (bf16 is the top half of an f32). */
export function bf16BitsToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkDst(dst, src.length);
  const d = u32View(dst);
  for (let i = 0; i < src.length; i++) d[i] = src[i] << 16;
  return dst;
}

let bf16Table: Uint16Array | undefined;

/**
 * All 65536 bf16 patterns as f16 bits (128 KiB, stays in cache), built on first use: a lookup per
 * element converts a BF16 checkpoint ~3x faster than f32BitsToF16's branches per element.
 */
function bf16ToF16Table(): Uint16Array {
  if (bf16Table) return bf16Table;
  const t = new Uint16Array(65536);
  for (let b = 0; b < 65536; b++) t[b] = f32BitsToF16((b << 16) >>> 0);
  bf16Table = t;
  return t;
}

/**
 * BF16 bits -> F16 bits, round-to-nearest-even (only matters for tiny values), overflow to +-inf.
 * Reads src[i] before writing dst[i], so src and dst may be the same array.
 */
export function bf16BitsToF16Bits(src: Uint16Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkDst(dst, src.length);
  const t = bf16ToF16Table();
  let from = 0;
  if (src.byteOffset % 4 === 0 && dst.byteOffset % 4 === 0) {
    // two values per 32-bit load and store: ~2x the element loop (a load lands every weight here)
    const s = new Uint32Array(src.buffer, src.byteOffset, src.length >>> 1);
    const d = new Uint32Array(dst.buffer, dst.byteOffset, src.length >>> 1);
    for (let i = 0; i < s.length; i++) {
      const w = s[i];
      d[i] = t[w & 0xffff] | (t[w >>> 16] << 16);
    }
    from = 2 * s.length;
  }
  for (let i = from; i < src.length; i++) dst[i] = t[src[i]];
  return dst;
}

/** F32 -> BF16 bits, round-to-nearest-even; NaN stays (quiet) NaN. */
export function f32ToBf16Bits(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkDst(dst, src.length);
  const s = u32View(src);
  for (let i = 0; i < s.length; i++) {
    const u = s[i];
    if ((u & 0x7fffffff) > 0x7f800000) dst[i] = (u >>> 16) | 0x40;
    else dst[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
  return dst;
}

/**
 * f16 values per step of firstNonFiniteF16 (every weight passes through it at load, so it is
 * ~1.5x faster than a plain loop: tiny-code's 2.1M values in ~1.4 ms): the bits of a block are
 * OR-ed together without a branch per element, and only a block with a hit is searched element
 * by element. Per f16, ((bits >>> 1) & exponent mask) + one exponent unit carries into the bit
 * above the exponent exactly when every exponent bit is set (inf or NaN); the shift keeps the
 * sum below 2^31, where V8 stays in integer arithmetic.
 */
const SCAN_BLOCK = 1024;

/** Index of the first f16 NaN or ±inf (exponent bits all ones) in bits, or -1. */
export function firstNonFiniteF16(bits: Uint16Array): number {
  let from = 0;
  if (bits.byteOffset % 4 === 0) {
    // two f16 per u32: exponents at bits 10-14 and 26-30, after the shift 9-13 and 25-29
    // (two accumulators: the ORs of neighbouring words do not wait on each other, ~2x one)
    const words = new Int32Array(bits.buffer, bits.byteOffset, bits.length >>> 1);
    const even = words.length & ~1;
    let w = 0;
    for (; w < even; w += SCAN_BLOCK) {
      const end = Math.min(even, w + SCAN_BLOCK);
      let acc0 = 0;
      let acc1 = 0;
      for (let j = w; j < end; j += 2) {
        acc0 |= ((words[j] >>> 1) & 0x3e003e00) + 0x02000200;
        acc1 |= ((words[j + 1] >>> 1) & 0x3e003e00) + 0x02000200;
      }
      if ((acc0 | acc1) & 0x40004000) break;
    }
    from = 2 * Math.min(w, even);
  }
  for (let i = from; i < bits.length; i++) if ((bits[i] & 0x7c00) === 0x7c00) return i;
  return -1;
}

/** Index of the first NaN or ±inf in a, or -1 (tested on the bits: exponent all ones). */
export function firstNonFiniteF32(a: Float32Array): number {
  const u = u32View(a);
  for (let i = 0; i < u.length; i++) if ((u[i] & 0x7f800000) === 0x7f800000) return i;
  return -1;
}
