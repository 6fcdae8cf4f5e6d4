import assert from 'node:assert/strict';
import { emitEmbed } from '../../codegen/embed.js';
import type { EmbedKernel } from '../../compiler/ir/kernel.js';
import { KernelHarness, Rng, toF16, type Dispatch, type RowRange } from '../helpers/kernel-harness.js';

/**
 * codegen/embed.ts: row r of the trunk becomes row tokens[r] of the f16 table, converted to f32
 * (exactly, so results are compared bit for bit). Rows outside the dispatch's range, and in
 * the chunked form rows whose token lies in another slice, must stay untouched.
 */


const ROWS = 24;
const VOCAB = 1000;

function kernelOf(d: number, vocab = VOCAB): EmbedKernel {
  return { family: 'embed', nodes: ['embed'], out: 'x', table: 'table', vocab, d };
}

interface EmbedData {
  table: { bits: Uint16Array; values: Float32Array };
  tokens: Uint32Array;
  xInit: Float32Array;
}

function makeData(d: number, seed: number, tokens: number[]): EmbedData {
  const rng = new Rng(seed);
  const t = new Uint32Array(ROWS);
  for (let i = 0; i < ROWS; i++) t[i] = i < tokens.length ? tokens[i] : rng.int(VOCAB);
  return { table: toF16(rng.floats(VOCAB * d)), tokens: t, xInit: rng.floats(ROWS * d) };
}

/** Expected x: rows in `r` whose token passes `inSlice` get the table row, the rest keep xInit. */
function expected(d: number, data: EmbedData, r: RowRange, inSlice: (tok: number) => boolean = () => true): Float32Array {
  const want = Float32Array.from(data.xInit);
  for (let row = r.rowStart; row < r.rowStart + r.rowCount; row++) {
    const tok = data.tokens[row];
    if (inSlice(tok)) want.set(data.table.values.subarray(tok * d, (tok + 1) * d), row * d);
  }
  return want;
}

function assertBitsEqual(got: ArrayBuffer, want: Float32Array, d: number, what: string): void {
  const g = new Uint32Array(got, 0, want.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  const i = g.findIndex((v, j) => v !== w[j]);
  assert.equal(i, -1, `${what}: row ${Math.floor(i / d)} col ${i % d}: got ${new Float32Array(got)[i]} want ${want[i]}`);
}

/** Boundary tokens first (so the ranges below cover them), then random ones. */
const TOKENS = [7, 0, 999, 383, 384, 767, 768, 1, 998, 500, 385, 766];
const RANGES: RowRange[] = [
  { rowStart: 0, rowCount: 1, posBase: 0 },
  { rowStart: 1, rowCount: 9, posBase: 4 },
  { rowStart: 3, rowCount: 17, posBase: 40 },
];

describe('embed kernel (codegen/embed.ts)', function () {
  let h: KernelHarness;

  before(async function () {
    h = await KernelHarness.create();
  });
  afterEach(function () {
    h?.release();
  });

  for (const d of [200, 300, 68, 1028]) {
    it(`d=${d}: rows 1, 9, 17 get their tokens' table rows, other rows untouched`, async function () {
      const src = emitEmbed(kernelOf(d), false);
      assert.deepEqual(src.params, []);
      const data = makeData(d, 10 + d, TOKENS);
      const tokens = h.buffer(data.tokens, 'tokens');
      const table = h.buffer(data.table.bits, 'table');
      const xs = RANGES.map(() => h.buffer(data.xInit, 'x'));
      const bytes = await h.run(RANGES.map((r, i) => ({ src, buffers: { tokens, table, x: xs[i] }, range: r })), xs.map((buffer) => ({ buffer })));
      RANGES.forEach((r, i) => assertBitsEqual(bytes[i], expected(d, data, r), d, `d=${d} rows ${r.rowStart}+${r.rowCount}`));
    });
  }

  for (const d of [300, 68]) {
    it(`d=${d}, table in vocab slices 384/384/232: every row gets its token's row from the right slice`, async function () {
      const src = emitEmbed(kernelOf(d), true);
      assert.deepEqual(src.params, ['vocabBase', 'vocabCount', 'pad0', 'pad1']);
      const data = makeData(d, 20 + d, TOKENS);
      const slices = [[0, 384], [384, 384], [768, 232]];
      const tokens = h.buffer(data.tokens, 'tokens');
      const tables = slices.map(([base, count]) => h.buffer(data.table.bits.subarray(base * d, (base + count) * d), `table#${base}`));
      // whole lookup: every slice's dispatch over the same rows
      const full = RANGES.map(() => h.buffer(data.xInit, 'x'));
      const dispatches: Dispatch[] = RANGES.flatMap((r, i) => slices.map(([base, count], si) => ({
        src, buffers: { tokens, table: tables[si], x: full[i] }, params: [base, count, 0, 0], range: r,
      })));
      // one slice alone: only rows whose token it holds
      const r = RANGES[2];
      const alone = slices.map(() => h.buffer(data.xInit, 'x'));
      slices.forEach(([base, count], si) => dispatches.push({
        src, buffers: { tokens, table: tables[si], x: alone[si] }, params: [base, count, 0, 0], range: r,
      }));
      const bytes = await h.run(dispatches, [...full, ...alone].map((buffer) => ({ buffer })));
      RANGES.forEach((rr, i) => assertBitsEqual(bytes[i], expected(d, data, rr), d, `all slices, rows ${rr.rowStart}+${rr.rowCount}`));
      slices.forEach(([base, count], si) => {
        const inSlice = (tok: number): boolean => tok >= base && tok < base + count;
        const rows = Array.from({ length: r.rowCount }, (_, j) => r.rowStart + j);
        assert.ok(rows.some((row) => inSlice(data.tokens[row])) && rows.some((row) => !inSlice(data.tokens[row])), 'test covers both kinds of rows');
        assertBitsEqual(bytes[RANGES.length + si], expected(d, data, r, inSlice), d, `slice ${base}+${count} alone`);
      });
    });
  }
});
