/**
 * tiny-code quantized while loading (--weights q8 / q4): the GPU logits against the float64 CPU
 * reference run on the *dequantized* weights (the same Q8_0 / Q4_0 blocks, quantized on the CPU
 * by runtime/quant/quantize.ts), so the kernels are judged, not the format; and greedy
 * self-speculative decoding equal to autoregressive decoding for several (E, k). The format's own
 * cost (perplexity, agreement with f16) is measured in bench/quant-quality.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LscModel } from '../runtime/model.js';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import { dequantizeRows, quantizeRows } from '../runtime/quant/quantize.js';
import type { QuantFormat } from '../compiler/ir/weight-formats.js';
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

/** The checkpoint as the quantized plan holds it: every matrix but the gathered embedding quantized, then dequantized. */
function dequantizedCheckpoint(format: QuantFormat): Map<string, Float64Array> {
  const ckpt = SafetensorsCheckpoint.open(modelDir);
  try {
    const tensors = new Map<string, Float64Array>();
    for (const [name, t] of ckpt.tensors) {
      const v = ckpt.readAll(name, 'f32') as Float32Array;
      if (t.shape.length !== 2 || name === 'model.embed_tokens.weight') {
        tensors.set(name, Float64Array.from(v));
        continue;
      }
      const [rows, cols] = t.shape;
      tensors.set(name, Float64Array.from(dequantizeRows(format, quantizeRows(format, v, rows, cols), rows, cols)));
    }
    return tensors;
  } finally {
    ckpt.close();
  }
}

for (const [flag, format] of [['q8', 'q8_0'], ['q4', 'q4_0']] as const) {
  describe(`tiny-code with --weights ${flag} (${format}, quantized while loading)`, function () {
    let model: LscModel;
    let cpu: CpuLlama;
    before(async function () {
      model = await LscModel.load(modelDir, { gpu: await testGpu(), weights: format });
      cpu = new CpuLlama(config, dequantizedCheckpoint(format));
    });
    after(() => model?.dispose());

    it('plans its matrices in the format and the embedding in f16', function () {
      const byHf = new Map(model.plan.weights.map((w) => [w.hf, w.gpuDtype]));
      assert.equal(byHf.get('model.embed_tokens.weight'), 'f16');
      assert.equal(byHf.get('lm_head.weight'), format);
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

    it('greedy self-speculative output equals autoregressive output for (E, k) in {1, 3, 5, 7} × {1, 4, 8}', async function () {
      for (const prompt of prompts) {
        const ar = await model.complete(prompt, { maxNewTokens: 24, stopAtEos: false, strategy: 'autoregressive' });
        for (const E of [1, 3, 5, 7]) {
          for (const k of [1, 4, 8]) {
            const ss = await model.complete(prompt, { maxNewTokens: 24, stopAtEos: false, strategy: 'self-speculative', exitLayer: E, numSpeculations: k });
            assert.deepEqual(ss.tokens, ar.tokens, `E=${E} k=${k} prompt ${JSON.stringify(prompt.slice(0, 20))}`);
            assert.ok(ss.stats.draftedTokens > 0);
          }
        }
      }
    });
  });
}
