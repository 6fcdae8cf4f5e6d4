import assert from 'node:assert/strict';
import {
  bf16BitsToF16Bits, bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits,
} from '../runtime/dtype-convert.js';

// ---- Straightforward references (slow, obviously right) ----

/** f16 bits -> value from the IEEE definition. */
function refF16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Nearest f16 by binary search over the (monotonic) positive finite patterns; ties to even bits. */
function refToF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // halfway between 65504 and the next step (2^16) rounds up to inf
  let lo = 0, hi = 0x7bff; // find largest lo with value(lo) <= a
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (refF16Value(mid) <= a) lo = mid; else hi = mid - 1;
  }
  if (lo === 0x7bff) return sign | lo;
  const dLo = a - refF16Value(lo), dHi = refF16Value(lo + 1) - a;
  const pick = dLo < dHi ? lo : dHi < dLo ? lo + 1 : (lo & 1 ? lo + 1 : lo);
  return sign | pick;
}

const dv = new DataView(new ArrayBuffer(4));
function bitsToF32(u: number): number { dv.setUint32(0, u >>> 0); return dv.getFloat32(0); }
function f32ToBits(x: number): number { dv.setFloat32(0, x); return dv.getUint32(0); }

/** Nearest bf16 to an f32 value; ties to even; past the midpoint to 2^128 goes to inf. */
function refToBf16(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  const u = f32ToBits(x);
  const t = u >>> 16;
  if (!Number.isFinite(x)) return t;
  const lo = bitsToF32(t << 16);
  const hiBits = t + 1;
  const hi = (hiBits & 0x7fff) === 0x7f80 ? Math.sign(x) * 2 ** 128 : bitsToF32(hiBits << 16);
  const dLo = Math.abs(x - lo), dHi = Math.abs(hi - x);
  return dLo < dHi ? t : dHi < dLo ? hiBits : (t & 1 ? hiBits : t);
}

/** Tiny seeded PRNG (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function allU16(): Uint16Array {
  const a = new Uint16Array(65536);
  for (let i = 0; i < a.length; i++) a[i] = i;
  return a;
}

function sameF32(got: number, want: number, what: string): void {
  if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `${what}: expected NaN, got ${got}`);
  else assert.ok(Object.is(got, want), `${what}: expected ${want}, got ${got}`);
}

const hex = (n: number) => '0x' + n.toString(16);

describe('dtype-convert', () => {
  it('f16 -> f32 is exact for all 65536 patterns', () => {
    const out = f16BitsToF32(allU16());
    for (let h = 0; h < 65536; h++) sameF32(out[h], refF16Value(h), `f16 ${hex(h)}`);
  });

  it('f16 -> f32 -> f16 round trips all 65536 patterns (NaN stays quiet NaN)', () => {
    const src = allU16();
    const back = f32ToF16Bits(f16BitsToF32(src));
    for (let h = 0; h < 65536; h++) {
      const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
      if (isNaN) assert.equal(back[h], h | 0x200, `NaN ${hex(h)}`);
      else assert.equal(back[h], h, `f16 ${hex(h)}`);
    }
  });

  it('f32 -> f16 rounds edge cases to nearest even', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000],
      [65504, 0x7bff], [65519.996, 0x7bff], [65520, 0x7c00], [-65520, 0xfc00], [1e10, 0x7c00],
      [Infinity, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -24, 0x0001], [2 ** -25, 0x0000], [-(2 ** -25), 0x8000], [2 ** -25 * (1 + 2 ** -23), 0x0001],
      [3 * 2 ** -25, 0x0002], [5 * 2 ** -25, 0x0002], [2 ** -14, 0x0400], [2 ** -14 - 2 ** -25, 0x0400],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01],
      [1e-45, 0x0000], [-1e-45, 0x8000], [3.4028234663852886e38, 0x7c00],
    ];
    const out = f32ToF16Bits(new Float32Array(cases.map((c) => c[0])));
    cases.forEach(([x, want], i) => assert.equal(out[i], want, `f32 ${x}: got ${hex(out[i])}`));
    cases.forEach(([x], i) => assert.equal(out[i], refToF16(Math.fround(x)), `reference disagrees at ${x}`));
  });

  it('f32 -> f16 keeps NaN a NaN', () => {
    const src = new Float32Array(new Uint32Array([0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff]).buffer);
    for (const h of f32ToF16Bits(src)) {
      assert.equal(h & 0x7c00, 0x7c00);
      assert.ok((h & 0x3ff) !== 0 && (h & 0x200) !== 0, `quiet NaN, got ${hex(h)}`);
    }
  });

  it('f32 -> f16 matches the reference on random bit patterns and random f16-range values', () => {
    const r = rng(1234);
    const n = 100_000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = (r() * 2 ** 32) >>> 0;
    const src = new Float32Array(bits.buffer);
    // Half of them concentrated where f16 is interesting (|x| in 2^-26 .. 2^17).
    for (let i = 0; i < n; i += 2) src[i] = (r() < 0.5 ? -1 : 1) * 2 ** (r() * 43 - 26);
    const out = f32ToF16Bits(src);
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(src[i])) assert.equal(out[i] & 0x7e00, 0x7e00);
      else assert.equal(out[i], refToF16(src[i]), `f32 ${src[i]} (${hex(bits[i])})`);
    }
  });

  it('bf16 -> f32 is exact for all 65536 patterns', () => {
    const out = bf16BitsToF32(allU16());
    for (let b = 0; b < 65536; b++) sameF32(out[b], bitsToF32(b << 16), `bf16 ${hex(b)}`);
  });

  it('bf16 -> f16 matches rounding the exact value, for all 65536 patterns', () => {
    const out = bf16BitsToF16Bits(allU16());
    for (let b = 0; b < 65536; b++) {
      const x = bitsToF32(b << 16);
      if (Number.isNaN(x)) assert.equal(out[b] & 0x7e00, 0x7e00, `bf16 NaN ${hex(b)}`);
      else assert.equal(out[b], refToF16(x), `bf16 ${hex(b)} = ${x}`);
    }
  });

  it('bf16 -> f16 in place (src and dst one array, as safetensors.ts converts) equals the copying conversion', () => {
    const r = rng(7);
    const src = new Uint16Array(100_000);
    for (let i = 0; i < src.length; i++) src[i] = (r() * 65536) >>> 0;
    const want = bf16BitsToF16Bits(src);
    const inPlace = src.slice();
    bf16BitsToF16Bits(inPlace, inPlace);
    assert.deepEqual(inPlace, want);
  });

  it('bf16 -> f16 is the same in unaligned views and odd lengths (two values per 32-bit word where aligned)', () => {
    const r = rng(11);
    const buf = new ArrayBuffer(2 * 1001);
    const all = new Uint16Array(buf);
    for (let i = 0; i < all.length; i++) all[i] = (r() * 65536) >>> 0;
    const want = bf16BitsToF16Bits(all);
    for (const [start, length] of [[0, 1001], [1, 1000], [1, 999], [2, 7], [3, 1], [0, 0]]) {
      const src = new Uint16Array(buf, 2 * start, length);
      const copied = bf16BitsToF16Bits(src);
      assert.deepEqual(copied, want.subarray(start, start + length), `copying, start ${start} length ${length}`);
      const unaligned = new Uint16Array(new ArrayBuffer(2 * (length + 1)), 2, length);
      assert.deepEqual(bf16BitsToF16Bits(src, unaligned), want.subarray(start, start + length), `into an unaligned view, start ${start}`);
    }
  });

  it('f32 -> bf16 rounds to nearest even (edge cases + random)', () => {
    const edge = [0, -0, 1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, 3.4028234663852886e38,
      -3.4028234663852886e38, 3.3961775292304e38, Infinity, -Infinity, 1e-45, 1.1754942e-38];
    const r = rng(99);
    const bits = new Uint32Array(50_000);
    for (let i = 0; i < bits.length; i++) bits[i] = (r() * 2 ** 32) >>> 0;
    const src = new Float32Array([...edge, ...new Float32Array(bits.buffer)]);
    const out = f32ToBf16Bits(src);
    for (let i = 0; i < src.length; i++) {
      if (Number.isNaN(src[i])) assert.equal(out[i] & 0x7fc0, 0x7fc0, 'NaN stays quiet NaN');
      else assert.equal(out[i], refToBf16(src[i]), `f32 ${src[i]}`);
    }
    assert.equal(out[3], 0x3f80, '1 + 2^-8 ties to even (down)');
    assert.equal(out[4], 0x3f82, '1 + 3*2^-8 ties to even (up)');
    assert.equal(out[6], 0x7f80, 'f32 max rounds to inf');
  });

  it('writes into a given destination and rejects a short one', () => {
    const dst = new Uint16Array(4);
    assert.equal(f32ToF16Bits(new Float32Array([1, 2]), dst), dst);
    assert.deepEqual([...dst], [0x3c00, 0x4000, 0, 0]);
    assert.throws(() => f16BitsToF32(new Uint16Array(3), new Float32Array(2)), RangeError);
  });

  it('converts 64 MiB of f32 to f16 well under a second', () => {
    const src = new Float32Array(16 << 20);
    for (let i = 0; i < src.length; i++) src[i] = (i % 1000) * 0.37 - 100;
    const dst = new Uint16Array(src.length);
    f32ToF16Bits(src.subarray(0, 1 << 16), dst); // warm up the JIT
    const t0 = performance.now();
    f32ToF16Bits(src, dst);
    const ms = performance.now() - t0;
    assert.ok(ms < 1000, `took ${ms.toFixed(0)} ms`);
  });
});
