/**
 * tiny-code quantized while loading (--weights q8 / q4, the LM head q8_0 in both): the GPU logits
 * against the float64 CPU reference run on the *dequantized* weights (the same Q8_0 / Q4_0 blocks,
 * quantized on the CPU by runtime/quant/quantize.ts, each tensor in the plan's format), so the kernels are judged, not the format; and greedy
 * self-speculative decoding equal to autoregressive decoding for several (E, k). The format's own
 * cost (perplexity, agreement with f16) is measured in bench/quant-quality.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LscModel } from '../runtime/model.js';
import { dequantizedCheckpoint } from './helpers/dequantized.js';
import { testGpu } from './helpers/gpu.js';
import { CpuLlama, argmax, maxAbsDiff, type LlamaRefConfig } from './helpers/cpu-llama.js';

const modelDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));
const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as LlamaRefConfig;

const prompts = [
  'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
  'import os\n\nclass Config:\n    def __init__(self, path):\n',
  'for i in range(10):\n',
];

/** The f16 runtime's tolerance against its float64 reference (test/model-reference.test.ts). */
const TOL = 0.05;

for (const [flag, format] of [['q8', 'q8_0'], ['q4', 'q4_0']] as const) {
  describe(`tiny-code with --weights ${flag} (${format}, quantized while loading)`, function () {
    let model: LscModel;
    let cpu: CpuLlama;
    before(async function () {
      model = await LscModel.load(modelDir, { gpu: await testGpu(), weights: format });
      cpu = new CpuLlama(config, dequantizedCheckpoint(modelDir, model.plan));
    });
    after(() => model?.dispose());

    it('plans its matrices in the format, the LM head in q8_0, the embedding in f16', function () {
      const byHf = new Map(model.plan.weights.map((w) => [w.hf, w.gpuDtype]));
      assert.equal(byHf.get('model.embed_tokens.weight'), 'f16');
      assert.equal(byHf.get('lm_head.weight'), 'q8_0'); // HEAD_FORMAT: q4_0 keeps the head at q8_0
      assert.equal(byHf.get('model.layers.0.mlp.down_proj.weight'), format);
      assert.equal(byHf.get('model.norm.weight'), 'f32');
    });

    it(`logits of the full model and exit 3 match the float64 reference on the dequantized weights (max |Δ| ≤ ${TOL}, same argmax)`, async function () {
      for (const prompt of prompts) {
        const ids = model.tokenizer.encode(prompt);
        for (const exitLayer of [undefined, 3]) {
          const [got] = await model.logits(ids, { exitLayer });
          const [want] = cpu.forward(ids, { exitLayer, lastOnly: true });
          const d = maxAbsDiff(got, want);
          assert.ok(d <= TOL, `${JSON.stringify(prompt.slice(0, 20))} exit ${exitLayer ?? 'none'}: max |Δ| ${d}`);
          assert.equal(argmax(got), argmax(want));
        }
      }
    });

    it('greedy self-speculative output equals autoregressive output for every E in 1..7 and k in 1..8', async function () {
      for (const prompt of prompts) {
        const ar = await model.complete(prompt, { maxNewTokens: 24, stopAtEos: false, strategy: 'autoregressive' });
        for (let E = 1; E <= 7; E++) {
          for (let k = 1; k <= 8; k++) {
            const ss = await model.complete(prompt, { maxNewTokens: 24, stopAtEos: false, strategy: 'self-speculative', exitLayer: E, numSpeculations: k });
            assert.deepEqual(ss.tokens, ar.tokens, `E=${E} k=${k} prompt ${JSON.stringify(prompt.slice(0, 20))}`);
            assert.ok(ss.stats.draftedTokens > 0);
          }
        }
      }
    });
  });
}
