/**
 * The quantized weight formats without a GPU: the CPU quantizer's blocks (GGUF's Q8_0 / Q4_0,
 * nibble order included), its error bounds, and the plan's bytes and row slices.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dequantizeRows, planarBytes, quantizeRows } from '../runtime/quant/quantize.js';
import { matrixBytes, planarLayout, QBLOCK } from '../compiler/ir/weight-formats.js';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { f16BitsToF32 } from '../runtime/dtype-convert.js';
import { Rng } from './helpers/kernel-harness.js';

const graphFile = fileURLToPath(new URL('../../graphs/llama2-7b.json', import.meta.url));

describe('quantized weight formats (compiler/ir/weight-formats.ts, runtime/quant/quantize.ts)', function () {
  it('Q4_0: weight j + 16 of a block is the high nibble of byte j; scale = the signed extreme / -8', function () {
    const x = new Float32Array(QBLOCK);
    x[17] = 1;
    const q = quantizeRows('q4_0', x, 1, QBLOCK);
    // d = -1/8; weight 17 -> trunc(1 · -8 + 8.5) = 0, every zero -> 8
    assert.deepEqual([...q.quants], [0x88, 0x08, ...Array(14).fill(0x88)]);
    assert.deepEqual([...q.scales], [0xb000]);
    assert.deepEqual([...dequantizeRows('q4_0', q, 1, QBLOCK)].map((v) => v + 0), [...x]); // + 0: -0 (q = 8 times d < 0) is 0
  });

  it('Q8_0: scale = max |x| / 127, quants rounded half away from zero', function () {
    const x = new Float32Array(QBLOCK);
    x[0] = -2.54;
    x[1] = 0.03; // 1.5 quant steps: rounds away from zero to 2
    x[2] = 1;
    const q = quantizeRows('q8_0', x, 1, QBLOCK);
    const d = f16BitsToF32(q.scales)[0];
    assert.ok(Math.abs(d - 0.02) < 1e-5, `d ${d}`);
    const qs = new Int8Array(q.quants.buffer, q.quants.byteOffset, QBLOCK);
    assert.deepEqual([qs[0], qs[1], qs[2], qs[3]], [-127, 2, 50, 0]);
  });

  // half a step (Q8_0), one step (Q4_0: the far end clamps at 7), plus |q| times the f16 rounding of the scale (2^-11 relative)
  for (const [f, bound] of [['q8_0', (0.5 + 127 / 2048) / 127], ['q4_0', (1 + 8 / 2048) / 8]] as const) {
    it(`${f}: every dequantized value is within ${f === 'q8_0' ? 'half a step' : 'one step'} (and the scale's f16 rounding) of its value`, function () {
      const rows = 7, cols = 160;
      const x = new Rng(5).floats(rows * cols, 3);
      const back = dequantizeRows(f, quantizeRows(f, x, rows, cols), rows, cols);
      for (let b = 0; b < rows * cols / QBLOCK; b++) {
        const blk = x.subarray(b * QBLOCK, (b + 1) * QBLOCK);
        const amax = Math.max(...[...blk].map(Math.abs));
        for (let j = 0; j < QBLOCK; j++) {
          const err = Math.abs(back[b * QBLOCK + j] - blk[j]);
          assert.ok(err <= bound * amax * 1.0001, `block ${b} weight ${j}: error ${err}, max |x| ${amax}`);
        }
      }
    });
  }

  it('the planar layout: quants then scales, padded to 4 bytes (Q8_0 34, Q4_0 18 bytes a block)', function () {
    assert.equal(matrixBytes('q8_0', 3, 64), 3 * 2 * 34);
    assert.equal(matrixBytes('q4_0', 3, 96), 3 * 3 * 18);
    const x = new Rng(9).floats(3 * 96, 1);
    const q = quantizeRows('q4_0', x, 3, 96);
    const bytes = planarBytes('q4_0', q, 3, 96);
    assert.equal(bytes.length, Math.ceil(3 * 3 * 18 / 4) * 4);
    const lay = planarLayout('q4_0', 3, 96);
    assert.deepEqual([...bytes.subarray(0, lay.scaleOffset)], [...q.quants]);
    assert.deepEqual([...new Uint16Array(bytes.buffer.slice(lay.scaleOffset, lay.scaleOffset + 18))], [...q.scales]);
  });

  it('lsc compile graphs/llama2-7b.json --weights q4: matrices in Q4_0, the LM head Q8_0, the embedding f16, slices of whole rows under the binding limit', function () {
    const graph = JSON.parse(fs.readFileSync(graphFile, 'utf8')) as Graph;
    const { plan } = compileGraph(graph, { file: graphFile, weights: 'q4_0' });
    assert.equal(plan.dtypes.weights, 'q4_0');
    let want = 0;
    for (const w of plan.weights) {
      if (w.tiedTo) continue;
      const cols = w.shape[1] ?? 1;
      const f = w.shape.length === 1 ? 'f32' : w.hf === 'model.embed_tokens.weight' ? 'f16' : w.hf === 'lm_head.weight' ? 'q8_0' : 'q4_0';
      assert.equal(w.gpuDtype, f, w.hf);
      want += matrixBytes(f, w.shape[0], cols);
      for (const ch of w.chunks) {
        const b = plan.buffers.find((x) => x.id === ch.buffer)!;
        assert.equal(b.bytes, matrixBytes(f, ch.rowCount, cols), ch.buffer);
        assert.ok(b.bytes <= plan.limits.maxStorageBufferBindingSize);
      }
    }
    const bytes = plan.buffers.filter((b) => b.kind === 'weight').reduce((a, b) => a + b.bytes, 0);
    assert.equal(bytes, want);
    // the 32000 × 4096 LM head in Q8_0 (139.3 MB) is two slices under the 128 MiB binding limit; the f16 embedding (262 MB) is sliced too
    assert.equal(plan.weights.find((w) => w.hf === 'lm_head.weight')!.chunks.length, 2);
    assert.ok(plan.weights.find((w) => w.hf === 'model.embed_tokens.weight')!.chunks.length > 1);
  });
});
