import assert from 'node:assert/strict';
import { emitAttention } from '../../codegen/attention.js';
import { SEQ_ROWS_MAX } from '../../codegen/kernel.js';
import type { KernelSource } from '../../compiler/ir/kernel.js';
import type { AttentionKernel } from '../../compiler/ir/kernel.js';
import {
  KernelHarness, Rng, describeMismatches, mismatches, toF16,
  type Dispatch, type RowRange,
} from '../helpers/kernel-harness.js';

/**
 * codegen/attention.ts against a float64 causal GQA softmax attention over the same KV values
 * (f16-rounded for the f16 cache). The GPU works in f32 (dots over headDim ≤ 128, an online
 * softmax over ≤ 205 positions): its error is a few f32 ulps of Σ p·|v| plus the effect of
 * score errors (a few ulps of Σ|q·k|/√d). The tolerance, 1e-4 × (|out| + Σ p·|v|) +
 * 1e-5 × max Σ|q·k|/√d × Σ p·|v|, is far above that and far below what a missing or extra
 * position (≥ 1/205 of the weight), a wrong head or a wrong scale gives. KV positions after the
 * last row's position and q rows outside the range are NaN, so reading them shows; output rows
 * outside the range must be bit-unchanged.
 */


const CTX = 256;
/** Rows of the q / out buffers. */
const QROWS = 14;
const COMBOS = [
  { heads: 4, kvHeads: 4, headDim: 32 },
  { heads: 8, kvHeads: 2, headDim: 64 },
  { heads: 4, kvHeads: 1, headDim: 128 },
];
/**
 * (combo, kv dtype, block) triples: the default block for every combo and dtype, blocks 32 and
 * 128 for a few (a pipeline takes 4-17 s to compile on lavapipe). headDim > block gives a
 * thread several output dims (64/32, 128/64), headDim < block leaves threads without one.
 */
const VARIANTS: { combo: number; kvF16: boolean; block: number; lanes?: number; rows?: number }[] = [
  ...[0, 1, 2].flatMap((combo) => [true, false].map((kvF16) => ({ combo, kvF16, block: 64 }))),
  { combo: 0, kvF16: true, block: 32 },
  { combo: 1, kvF16: false, block: 32 },
  { combo: 1, kvF16: true, block: 128 },
  { combo: 2, kvF16: false, block: 128 },
  // block 1: the serial variant (one thread per head and row); lanes: per-thread softmax, one combine
  ...[0, 1, 2].map((combo) => ({ combo, kvF16: combo !== 1, block: 1 })),
  { combo: 0, kvF16: true, block: 8, lanes: 1 },
  { combo: 1, kvF16: false, block: 4, lanes: 1 },
  // several rows of a head per workgroup, sharing K/V loads
  { combo: 0, kvF16: true, block: 8, lanes: 1, rows: 4 },
  { combo: 1, kvF16: true, block: 1, rows: 3 },
];
const POSITIONS = [0, 1, 63, 64, 65, 200];
const NAN_F16 = 0x7e00;

interface Combo {
  heads: number;
  kvHeads: number;
  headDim: number;
}

interface AttnData {
  q: Float32Array;
  /** [2][CTX][kvHeads·headDim], f16-exact when kvF16. */
  kv: Float32Array;
  outInit: Float32Array;
}

function kernelOf(c: Combo): AttentionKernel {
  return { family: 'attention', nodes: ['attn'], q: 'q', out: 'o', layer: 0, ...c };
}

function makeData(c: Combo, kvF16: boolean, seed: number): AttnData {
  const rng = new Rng(seed);
  const W = c.heads * c.headDim;
  const q = rng.floats(QROWS * W);
  // keys somewhat larger than queries: softmax weights spread from flat to peaked
  const kv = rng.floats(2 * CTX * c.kvHeads * c.headDim, 1.5);
  return { q, kv: kvF16 ? toF16(kv).values : kv, outInit: rng.floats(QROWS * W) };
}

/** The expected out buffer after a dispatch over `r`, and a tolerance per element (0 outside the range). */
function reference(c: Combo, d: AttnData, r: RowRange): { want: Float64Array; tol: Float64Array } {
  const { heads: H, kvHeads: HKV, headDim: HD } = c;
  const KVD = HKV * HD;
  const W = H * HD;
  const want = Float64Array.from(d.outInit);
  const tol = new Float64Array(want.length);
  const scale = 1 / Math.sqrt(HD);
  for (let row = r.rowStart; row < r.rowStart + r.rowCount; row++) {
    const pos = r.posBase + row;
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / (H / HKV));
      const s = new Float64Array(pos + 1);
      let maxA = 0;
      for (let t = 0; t <= pos; t++) {
        let dot = 0;
        let a = 0;
        for (let i = 0; i < HD; i++) {
          const p = d.q[row * W + h * HD + i] * d.kv[t * KVD + kvh * HD + i];
          dot += p;
          a += Math.abs(p);
        }
        s[t] = dot * scale;
        maxA = Math.max(maxA, a * scale);
      }
      const m = Math.max(...s);
      let l = 0;
      for (let t = 0; t <= pos; t++) l += Math.exp(s[t] - m);
      for (let i = 0; i < HD; i++) {
        let o = 0;
        let mag = 0;
        for (let t = 0; t <= pos; t++) {
          const p = Math.exp(s[t] - m) / l;
          const v = d.kv[CTX * KVD + t * KVD + kvh * HD + i];
          o += p * v;
          mag += p * Math.abs(v);
        }
        const at = row * W + h * HD + i;
        want[at] = o;
        tol[at] = 1e-4 * (Math.abs(o) + mag) + 1e-5 * maxA * mag;
      }
    }
  }
  return { want, tol };
}

/** rowStart ≤ 2 and posBase ≥ 0 such that the range's first row sits at position p0. */
function rangeAt(p0: number, rowCount: number): RowRange {
  const rowStart = Math.min(p0, 2);
  return { rowStart, rowCount, posBase: p0 - rowStart };
}

/** Buffers of one run: q (NaN outside the rows), kv (NaN after the last position), out (initial content). */
function runBuffers(h: KernelHarness, c: Combo, kvF16: boolean, d: AttnData, r: RowRange): { q: GPUBuffer; kv: GPUBuffer; out: GPUBuffer } {
  const W = c.heads * c.headDim;
  const KVD = c.kvHeads * c.headDim;
  const q = Float32Array.from(d.q);
  for (let row = 0; row < QROWS; row++) {
    if (row < r.rowStart || row >= r.rowStart + r.rowCount) q.fill(NaN, row * W, (row + 1) * W);
  }
  const last = r.posBase + r.rowStart + r.rowCount - 1;
  let kvBuf: GPUBuffer;
  if (kvF16) {
    const bits = toF16(d.kv).bits;
    for (const plane of [0, 1]) bits.fill(NAN_F16, plane * CTX * KVD + (last + 1) * KVD, (plane + 1) * CTX * KVD);
    kvBuf = h.buffer(bits, 'kv');
  } else {
    const kv = Float32Array.from(d.kv);
    for (const plane of [0, 1]) kv.fill(NaN, plane * CTX * KVD + (last + 1) * KVD, (plane + 1) * CTX * KVD);
    kvBuf = h.buffer(kv, 'kv');
  }
  return { q: h.buffer(q, 'q'), kv: kvBuf, out: h.buffer(d.outInit, 'out') };
}

const comboLabel = (c: Combo): string => `${c.heads}/${c.kvHeads}/${c.headDim}`;

describe('attention kernel (codegen/attention.ts)', function () {
  let h: KernelHarness;

  before(async function () {
    h = await KernelHarness.create();
  });
  afterEach(function () {
    h?.release();
  });

  it('declares one workgroup per (head, row) and the config it was given', function () {
    const src = emitAttention(kernelOf(COMBOS[1]), { ctx: CTX, kvF16: true }, { block: 32 });
    assert.deepEqual(src.grid, [8, { perRow: 1 }, 1]);
    assert.equal(src.workgroupSize, 32);
    assert.deepEqual(src.config, { block: 32 });
    assert.deepEqual(src.features, ['shader-f16']);
    assert.deepEqual(emitAttention(kernelOf(COMBOS[1]), { ctx: CTX, kvF16: false }, { block: 64 }).features, []);
  });

  for (const { combo: ci, kvF16, block, lanes, rows } of VARIANTS) {
    const combo = COMBOS[ci];
    const label = `heads/kvHeads/headDim ${comboLabel(combo)}, kv ${kvF16 ? 'f16' : 'f32'}, block ${block}${lanes ? ' lanes' : ''}${rows ? ` ×${rows} rows` : ''}`;
    let src: KernelSource;
    const source = (): KernelSource => (src ??= emitAttention(kernelOf(combo), { ctx: CTX, kvF16 }, { block, lanes, rows }));

    it(`${label}: rows 1 and 5 at positions ${POSITIONS.join(', ')} match the reference`, async function () {
      if (kvF16 && !h.gpu.features.has('shader-f16')) this.skip();
      const d = makeData(combo, kvF16, 1000 + combo.headDim + combo.kvHeads);
      const runs = POSITIONS.flatMap((p0) => [1, 5].map((rows) => {
        const r = rangeAt(p0, rows);
        return { r, bufs: runBuffers(h, combo, kvF16, d, r) };
      }));
      const dispatches: Dispatch[] = runs.map(({ r, bufs }) => ({ src: source(), buffers: bufs, range: r }));
      const bytes = await h.run(dispatches, runs.map(({ bufs }) => ({ buffer: bufs.out })));
      const W = combo.heads * combo.headDim;
      const problems: string[] = [];
      runs.forEach(({ r }, i) => {
        const ref = reference(combo, d, r);
        const got = new Float32Array(bytes[i], 0, QROWS * W);
        const m = mismatches(got, ref.want, (j) => ref.tol[j]);
        if (m.count) {
          problems.push(describeMismatches(`rows ${r.rowStart}+${r.rowCount} at posBase ${r.posBase}`, m,
            (j) => `row ${Math.floor(j / W)} (pos ${r.posBase + Math.floor(j / W)}) head ${Math.floor((j % W) / combo.headDim)} dim ${j % combo.headDim}`));
        }
      });
      assert.equal(problems.length, 0, `${label}\n${problems.join('\n')}`);
    });

    it(`${label}: batch invariant (each of 9 rows = the row alone, bit for bit)`, async function () {
      if (kvF16 && !h.gpu.features.has('shader-f16')) this.skip();
      const d = makeData(combo, kvF16, 2000 + combo.headDim + combo.kvHeads);
      const W = combo.heads * combo.headDim;
      // positions 60..68 cross the 32- and 64-blocks' boundary at 64, 124..132 the one at 128
      for (const p0 of [60, 124]) {
        const batch = rangeAt(p0, 9);
        const singles = Array.from({ length: 9 }, (_, i): RowRange => ({ rowStart: batch.rowStart + i, rowCount: 1, posBase: batch.posBase }));
        const runs = [batch, ...singles].map((r) => ({ r, bufs: runBuffers(h, combo, kvF16, d, batch) }));
        const bytes = await h.run(runs.map(({ r, bufs }) => ({ src: source(), buffers: bufs, range: r })), runs.map(({ bufs }) => ({ buffer: bufs.out })));
        const all = new Uint32Array(bytes[0]);
        const init = new Uint32Array(d.outInit.buffer);
        singles.forEach((r, i) => {
          const row = r.rowStart;
          const a = all.subarray(row * W, (row + 1) * W);
          const one = new Uint32Array(bytes[i + 1]).subarray(row * W, (row + 1) * W);
          assert.ok(a.every((v, j) => v !== init[row * W + j] && !Number.isNaN(new Float32Array(a.buffer, a.byteOffset, W)[j])),
            `${label}: row ${row} of the 9-row dispatch was not (fully) written`);
          const j = a.findIndex((v, jj) => v !== one[jj]);
          assert.equal(j, -1, `${label}: row ${row} (pos ${r.posBase + row}) head ${Math.floor(j / combo.headDim)} dim ${j % combo.headDim}: `
            + `9-row dispatch gives bits ${a[j]?.toString(16)}, the row alone ${one[j]?.toString(16)}`);
        });
      }
    });
  }

  /**
   * Rows of several sequences in one dispatch (the batch engine, runtime/batch/): the SeqRows
   * uniform gives each row its KV slot and position. Every row must equal that row alone with
   * its sequence's cache in slot 0 at the same position, bit for bit.
   */
  for (const v of [{ combo: 0, kvF16: true, block: 8, lanes: 1, rows: 4 }, { combo: 1, kvF16: false, block: 64 }]) {
    const combo = COMBOS[v.combo];
    const label = `heads/kvHeads/headDim ${combo.heads}/${combo.kvHeads}/${combo.headDim}, kv ${v.kvF16 ? 'f16' : 'f32'}, block ${v.block}${v.lanes ? ' lanes' : ''}${v.rows ? ` ×${v.rows} rows` : ''}`;
    it(`${label}: rows of 3 sequences in their own KV slots and positions = each row alone`, async function () {
      if (v.kvF16 && !h.gpu.features.has('shader-f16')) this.skip();
      const src = emitAttention(kernelOf(combo), { ctx: CTX, kvF16: v.kvF16 }, { block: v.block, lanes: v.lanes, rows: v.rows });
      const KV = 2 * CTX * combo.kvHeads * combo.headDim;
      const seqs = [0, 1, 2].map((s) => makeData(combo, v.kvF16, 3000 + s));
      const kvOf = (s: number): Float32Array => seqs[s].kv;
      const kvBuffer = (data: Float32Array): GPUBuffer => h.buffer(v.kvF16 ? toF16(data).bits : data, 'kv');
      const all = new Float32Array(3 * KV);
      seqs.forEach((_, s) => all.set(kvOf(s), s * KV));
      // row r: sequence r % 3 at its own position (slots in a workgroup's rows differ)
      const pos = [5, 70, 130, 6, 200, 131, 64, 250];
      const R = pos.length;
      const W = combo.heads * combo.headDim;
      const q = makeData(combo, false, 3100).q;
      const table = new Uint32Array(SEQ_ROWS_MAX * 4);
      pos.forEach((p, r) => { table[r * 4] = (p - r) >>> 0; table[r * 4 + 1] = r % 3; });
      const seq = h.gpu.device.createBuffer({ size: table.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      h.gpu.device.queue.writeBuffer(seq, 0, table);
      const outInit = new Float32Array(QROWS * W);
      const batch = { q: h.buffer(q, 'q'), kv: kvBuffer(all), out: h.buffer(outInit, 'out'), seq };
      const alone = pos.map((_, r) => ({ q: h.buffer(q, 'q'), kv: kvBuffer(kvOf(r % 3)), out: h.buffer(outInit, 'out') }));
      const bytes = await h.run([
        { src, buffers: batch, range: { rowStart: 0, rowCount: R, posBase: 0 } },
        ...alone.map((bufs, r) => ({ src, buffers: bufs, range: { rowStart: r, rowCount: 1, posBase: pos[r] - r } })),
      ], [{ buffer: batch.out }, ...alone.map((b) => ({ buffer: b.out }))]);
      const got = new Uint32Array(bytes[0]);
      pos.forEach((p, r) => {
        const one = new Uint32Array(bytes[r + 1]).subarray(r * W, (r + 1) * W);
        const a = got.subarray(r * W, (r + 1) * W);
        assert.ok(one.some((x) => x !== 0), `row ${r} alone was written`);
        const j = a.findIndex((x, jj) => x !== one[jj]);
        assert.equal(j, -1, `${label}: row ${r} (slot ${r % 3}, pos ${p}) dim ${j}: batched ${a[j]?.toString(16)}, alone ${one[j]?.toString(16)}`);
      });
    });
  }
});
