/**
 * The path of adapters without `shader-f16` (Chromium's SwiftShader, many browsers and GPUs): the
 * runtime reads the features of the device and keeps the KV cache in f32; weights stay f16 packed
 * in u32 pairs either way. Here the shared lavapipe device is presented without the feature (the
 * runtime decides from GpuContext.features alone), and tiny-code's greedy tokens through both
 * paths must equal reference.json's (float64 PyTorch): autoregressive, early exit at layer 2, and
 * self-speculative.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LscModel } from '../runtime/model.js';
import type { GpuContext } from '../runtime/device.js';
import { kvDtypeFor } from '../runtime/kv-dtype.js';
import { testGpu } from './helpers/gpu.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const modelDir = path.join(root, 'examples', 'models', 'tiny-code');
interface RefPrompt { tokens: number[]; greedy: number[]; earlyExitGreedy: Record<string, number[]> }
const prompts = (JSON.parse(fs.readFileSync(path.join(modelDir, 'reference.json'), 'utf8')) as { prompts: RefPrompt[] }).prompts;

/** The same device, as an adapter without shader-f16 looks to the runtime. */
function withoutF16(gpu: GpuContext): GpuContext {
  return { ...gpu, features: new Set([...gpu.features].filter((f) => f !== 'shader-f16')), dispose() { /* shared */ } };
}

describe('adapters without shader-f16: f32 KV cache, f16 weights unpacked in the kernels (tiny-code)', function () {
  this.timeout(600_000);
  const models: Record<'f16' | 'f32', LscModel | undefined> = { f16: undefined, f32: undefined };
  let hasF16 = false;

  before(async () => {
    const gpu = await testGpu();
    hasF16 = gpu.features.has('shader-f16');
    models.f32 = await LscModel.load(modelDir, { gpu: withoutF16(gpu) });
    if (hasF16) models.f16 = await LscModel.load(modelDir, { gpu });
  });
  after(() => { models.f16?.dispose(); models.f32?.dispose(); });

  it('picks the KV dtype from the features: no kernel of the f32 plan needs shader-f16', () => {
    assert.equal(kvDtypeFor(new Set(['subgroups'])), 'f32');
    assert.equal(kvDtypeFor(new Set(['shader-f16'])), 'f16');
    const plan = models.f32!.plan;
    assert.deepEqual(plan.features.filter((f) => f === 'shader-f16'), []);
    const kv = plan.buffers.filter((b) => b.kind === 'kv');
    assert.ok(kv.length > 0 && kv.every((b) => /\bf32$/.test(b.doc ?? '')), `KV buffers: ${kv.map((b) => b.doc).join('; ')}`);
    if (models.f16) {
      assert.ok(models.f16.plan.features.includes('shader-f16'));
      // f32 K and V take twice the bytes of f16
      const bytes = (m: LscModel): number => m.plan.buffers.filter((b) => b.kind === 'kv').reduce((a, b) => a + b.bytes, 0);
      assert.equal(bytes(models.f32!), 2 * bytes(models.f16));
    }
  });

  for (const kv of ['f32', 'f16'] as const) {
    prompts.forEach((p, i) => {
      it(`KV ${kv}: prompt ${i}: greedy autoregressive, early-exit (E=2) and self-speculative (E=2,k=3) equal reference.json`, async function () {
        const model = models[kv];
        if (!model) this.skip(); // an adapter without shader-f16 has only the f32 path
        const base = { temperature: 0, stopAtEos: false } as const;
        const ar = await model!.complete(p.tokens, { ...base, maxNewTokens: p.greedy.length, strategy: 'autoregressive' });
        assert.deepEqual(ar.tokens, p.greedy);
        const ee = await model!.complete(p.tokens, { ...base, maxNewTokens: p.earlyExitGreedy['2'].length, strategy: 'early-exit', exitLayer: 2 });
        assert.deepEqual(ee.tokens, p.earlyExitGreedy['2']);
        const ss = await model!.complete(p.tokens, { ...base, maxNewTokens: p.greedy.length, strategy: 'self-speculative', exitLayer: 2, numSpeculations: 3 });
        assert.deepEqual(ss.tokens, p.greedy);
      });
    });
  }
});
