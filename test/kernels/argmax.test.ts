import assert from 'node:assert/strict';
import { emitArgmax } from '../../codegen/argmax.js';
import type { ArgmaxKernel } from '../../compiler/ir/kernel.js';
import { KernelHarness, Rng, type RowRange } from '../helpers/kernel-harness.js';

/**
 * codegen/argmax.ts: tokens[outBase + row] = the index of the largest logit of the row, the
 * lowest index among equal maxima, NaN larger than every number (torch.argmax; NaN cases in
 * hardening-loader.test.ts). Exact: a comparison of f32 values. Token
 * slots other than the range's must keep their content.
 */


const ROWS = 12;
const SLOTS = 24;
const SENTINEL = 0xdeadbeef;
/** The kernel's workgroup: thread t scans indices t, t + 256, ... */
const WG = 256;

function kernelOf(n: number): ArgmaxKernel {
  return { family: 'argmax', nodes: ['argmax'], x: 'logits', out: 'tokens', n };
}

/** float64 reference over the f32 values: first index of the maximum, NaN above every number (torch.argmax). */
function argmaxRef(logits: Float32Array, row: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n && !Number.isNaN(logits[row * n + best]); i++) {
    const v = logits[row * n + i];
    if (v > logits[row * n + best] || Number.isNaN(v)) best = i;
  }
  return best;
}

async function runArgmax(h: KernelHarness, n: number, logits: Float32Array, r: RowRange, outBase: number): Promise<Uint32Array> {
  const src = emitArgmax(kernelOf(n));
  const tokens = h.buffer(new Uint32Array(SLOTS).fill(SENTINEL), 'tokens');
  const [bytes] = await h.run([{ src, buffers: { logits: h.buffer(logits, 'logits'), tokens }, params: [outBase, 0, 0, 0], range: r }], [{ buffer: tokens }]);
  return new Uint32Array(bytes, 0, SLOTS);
}

function checkTokens(got: Uint32Array, logits: Float32Array, n: number, r: RowRange, outBase: number, what: string): void {
  for (let s = 0; s < SLOTS; s++) {
    const row = s - outBase;
    if (row >= r.rowStart && row < r.rowStart + r.rowCount) {
      assert.equal(got[s], argmaxRef(logits, row, n), `${what}: row ${row} (slot ${s})`);
    } else {
      assert.equal(got[s], SENTINEL, `${what}: slot ${s} outside the range was written`);
    }
  }
}

/** Rows whose maximum is shared by several indices, placed to hit every path of the reduction. */
function tieRows(n: number, rng: Rng): { logits: Float32Array; want: number[]; why: string[] } {
  const logits = rng.floats(ROWS * n);
  const want: number[] = [];
  const why: string[] = [];
  const setRow = (row: number, at: number[], value: number, text: string): void => {
    for (const i of at) logits[row * n + i] = value;
    want[row] = Math.min(...at);
    why[row] = text;
  };
  const i = 17 + rng.int(n - 2 * WG - 40);
  setRow(0, [i + 1, i], 9, 'adjacent indices (neighbouring threads)');
  setRow(1, [i + WG, i], 9, 'indices one workgroup apart (one thread)');
  setRow(2, [n - 1, 7], 9, 'last and an early index');
  setRow(3, [WG, WG - 1], 9, 'the later index held by thread 0, the earlier by thread 255');
  setRow(4, [i + 2 * WG, i + WG + 3, n - 2, i + 5], 9, 'four places');
  logits.fill(0, 5 * n, 6 * n);
  want[5] = 0;
  why[5] = 'all equal (zeros)';
  logits.fill(-1e38, 6 * n, 7 * n);
  setRow(6, [n - 3], -9e37, 'everything very negative, the maximum near the end');
  setRow(7, [0], 9, 'maximum at index 0');
  setRow(8, [n - 1], 9, 'maximum at the last index');
  logits.fill(-5, 9 * n, 10 * n);
  setRow(9, [], -5, 'all equal (negative)');
  want[9] = 0;
  // the largest of the rest, a random row
  for (let row = 10; row < ROWS; row++) {
    want[row] = argmaxRef(logits, row, n);
    why[row] = 'random';
  }
  return { logits, want, why };
}

describe('argmax kernel (codegen/argmax.ts)', function () {
  let h: KernelHarness;

  before(async function () {
    h = await KernelHarness.create();
  });
  afterEach(function () {
    h?.release();
  });

  for (const n of [2048, 32000, 1000]) {
    it(`vocab ${n}: random rows pick the largest logit, written at outBase + row`, async function () {
      const rng = new Rng(n);
      const logits = rng.floats(ROWS * n, 3);
      for (const [r, outBase] of [[{ rowStart: 1, rowCount: 5, posBase: 9 }, 3], [{ rowStart: 4, rowCount: 1, posBase: 0 }, 0], [{ rowStart: 0, rowCount: 12, posBase: 2 }, 11]] as const) {
        const got = await runArgmax(h, n, logits, r, outBase);
        checkTokens(got, logits, n, r, outBase, `vocab ${n}, rows ${r.rowStart}+${r.rowCount}, outBase ${outBase}`);
      }
    });

    it(`vocab ${n}: ties go to the lowest index`, async function () {
      const { logits, want, why } = tieRows(n, new Rng(n + 1));
      const r = { rowStart: 0, rowCount: ROWS, posBase: 0 };
      const got = await runArgmax(h, n, logits, r, 5);
      for (let row = 0; row < ROWS; row++) {
        assert.equal(argmaxRef(logits, row, n), want[row], `test setup, row ${row}`);
        assert.equal(got[5 + row], want[row], `vocab ${n}, ${why[row]}`);
      }
    });
  }

  it('a row of -Infinity logits (every index tied) picks index 0 like torch.argmax', async function () {
    const n = 1000;
    const logits = new Rng(3).floats(ROWS * n);
    logits.fill(-Infinity, 2 * n, 3 * n);
    logits.fill(-3.4e38, 3 * n, 4 * n); // finite, below the kernel's NEG_BIG start value
    const got = await runArgmax(h, n, logits, { rowStart: 1, rowCount: 4, posBase: 0 }, 0);
    assert.equal(got[1], argmaxRef(logits, 1, n), 'ordinary row');
    assert.equal(got[2], 0, `all -Infinity: got token ${got[2]} (0x${got[2].toString(16)})`);
    assert.equal(got[3], 0, `all -3.4e38: got token ${got[3]} (0x${got[3].toString(16)})`);
  });

  it('with the draft gate: a draft dispatch (param prob) writes its pick\'s probability while a threshold is set, others write nothing', async function () {
    const n = 2048;
    const rng = new Rng(11);
    // mild rows, and peaked ones (a large scale makes the pick's probability near 1)
    const logits = new Float32Array([...rng.floats(6 * n, 2), ...rng.floats(6 * n, 12)]);
    const gateWords = { threshold: 0, probs: 4 };
    const src = emitArgmax(kernelOf(n), { threads: 8 }, gateWords);
    const r = { rowStart: 0, rowCount: ROWS, posBase: 0 };
    for (const [prob, threshold] of [[1, 0.5], [0, 0.5], [1, 0]]) {
      const gate = new Float32Array(4 + ROWS).fill(-7);
      gate[0] = threshold;
      const tokens = h.buffer(new Uint32Array(SLOTS).fill(SENTINEL), 'tokens');
      const gateBuf = h.buffer(gate, 'gate');
      const [tb, gb] = await h.run([{ src, buffers: { logits: h.buffer(logits, 'logits'), tokens, gate: gateBuf }, params: [1, prob, 0, 0], range: r }],
        [{ buffer: tokens }, { buffer: gateBuf }]);
      checkTokens(new Uint32Array(tb, 0, SLOTS), logits, n, r, 1, `prob ${prob}, threshold ${threshold}`);
      const got = new Float32Array(gb, 0, 4 + ROWS);
      for (let row = 0; row < ROWS; row++) {
        const at = row * n + argmaxRef(logits, row, n);
        let sum = 0;
        for (let i = 0; i < n; i++) sum += Math.exp(logits[row * n + i] - logits[at]);
        const want = prob && threshold ? 1 / sum : -7;
        assert.ok(Math.abs(got[4 + row] - want) <= 1e-5 * Math.abs(want), `prob ${prob}, threshold ${threshold}, row ${row}: ${got[4 + row]} vs ${want}`);
      }
      assert.deepEqual([...got.slice(1, 4)], [-7, -7, -7], 'the gate words before the probabilities are left alone');
    }
  });
});
