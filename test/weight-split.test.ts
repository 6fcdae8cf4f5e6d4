/**
 * Weights split across buffers by a small binding limit, on a model whose head_dim (96) does not
 * divide 128: the row slices of q/k/v must keep each RoPE pair (rows j and j + headDim/2 of a head)
 * inside one slice, or the kernels read the partner row from the wrong buffer. Logits at every
 * position (full model and an early exit) are compared with the float64 CPU reference
 * (test/helpers/cpu-llama.ts) within the tolerance model-features.test.ts justifies (0.03);
 * a RoPE pair read across a split moves logits by O(1).
 *
 * Geometry: hidden 192 = 2 heads × 96, 2 kv heads, ffn 256, vocab 300, 2 layers. With a 64 KiB
 * binding limit every matrix is split: q, k, v (192 rows of 384 bytes), o, gate, up, down
 * (256-long rows of 512 bytes), the embedding and the LM head.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Plan } from '../compiler/plan.js';
import { LscModel } from '../runtime/model.js';
import { testGpu } from './helpers/gpu.js';
import { CpuLlama, argmax, maxAbs, maxAbsDiff, top2Gap } from './helpers/cpu-llama.js';
import { SeededRandom, writeRandomModel, type RandomModel } from './helpers/random-model.js';

const LOGIT_TOL = 0.03;
const BINDING_LIMIT = 64 * 1024;
const HEAD_DIM = 96;
const CONFIG = {
  hidden_size: 2 * HEAD_DIM, intermediate_size: 256, num_hidden_layers: 2, num_attention_heads: 2,
  num_key_value_heads: 2, vocab_size: 300,
};

function expectRows(actual: Float32Array[], expected: Float64Array[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} rows, expected ${expected.length}`);
  let worst = 0;
  actual.forEach((row, t) => {
    const d = maxAbsDiff(row, expected[t]);
    worst = Math.max(worst, d);
    assert.ok(d <= LOGIT_TOL, `${what}, position ${t}: max |Δlogit| = ${d} > ${LOGIT_TOL} (|logits| up to ${maxAbs(expected[t]).toFixed(2)})`);
    if (top2Gap(expected[t]) > 2 * LOGIT_TOL) assert.equal(argmax(row), argmax(expected[t]), `${what}, position ${t}: argmax differs`);
  });
  if (process.env.LSC_TEST_VERBOSE) console.log(`      ${what}: max |Δlogit| ${worst.toExponential(2)}`);
}

describe('weights split across buffers with head_dim 96 (RoPE pairs stay in one slice)', function () {
  this.timeout(600_000);
  let tmp: string;
  let m: RandomModel;
  let model: LscModel;
  let ref: CpuLlama;
  const prompt = new SeededRandom(5).ints(10, 3, CONFIG.vocab_size);

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-split96-'));
    m = writeRandomModel(path.join(tmp, 'm'), CONFIG, { dtype: 'F16', seed: 96 });
    ref = new CpuLlama(m.config, m.tensors);
    model = await LscModel.load(m.dir, {
      gpu: await testGpu(), ctx: 64, prefillChunk: 16, limits: { maxStorageBufferBindingSize: BINDING_LIMIT },
    });
  });
  after(() => {
    model?.dispose();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('splits q, k, v and the other matrices into several slices, each a whole number of heads', () => {
    const plan: Plan = model.plan;
    assert.equal(plan.limits.maxStorageBufferBindingSize, BINDING_LIMIT);
    for (const id of ['wq.0', 'wk.0', 'wv.0', 'wo.0', 'w_gate.0', 'w_up.0', 'w_down.0']) {
      const w = plan.weights.find((x) => x.id === id);
      assert.ok(w, `no weight ${id} in ${plan.weights.map((x) => x.id).join(', ')}`);
      assert.ok(w.chunks.length >= 2, `${id} is not split: ${JSON.stringify(w.chunks)}`);
      for (const c of w.chunks) assert.ok(c.rowCount * w.shape[1] * 2 <= BINDING_LIMIT, `${id} slice ${JSON.stringify(c)} exceeds the limit`);
      if (/^w[qkv]\./.test(id)) {
        for (const c of w.chunks) assert.equal(c.rowStart % HEAD_DIM, 0, `${id} slice at row ${c.rowStart} cuts a head`);
      }
    }
  });

  it('logits at every position match the float64 reference (full model)', async () => {
    expectRows(await model.logits(prompt, { allPositions: true }), ref.forward(prompt), 'full model');
  });

  it('logits at every position through exit 1 match the reference', async () => {
    expectRows(await model.logits(prompt, { allPositions: true, exitLayer: 1 }), ref.forward(prompt, { exitLayer: 1 }), 'exit 1');
  });
});
