/**
 * Interop with llama.cpp (node-llama-cpp, CPU): GGUF files written by `lsc quantize` (F16, Q8_0,
 * Q4_0) load in llama.cpp, which tokenizes like lsc's tokenizer rebuilt from the file's metadata
 * (no tokenizer.json beside it) and decodes the same greedy tokens as lsc on the same file (F16:
 * all of them; quantized: up to a near-tie, if any), with
 * next-token log-probabilities close (llama.cpp's CPU kernels quantize activations to 8 bits for
 * Q8_0/Q4_0 dot products, so those differ more than F16). Skipped, saying why, only where
 * node-llama-cpp cannot load llama.cpp.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Llama } from 'node-llama-cpp';
import { quantizeToGguf } from '../runtime/quant/to-gguf.js';
import { LscModel } from '../runtime/model.js';
import { testGpu } from './helpers/gpu.js';
import { llamaGreedy, llamaLogProbs, loadLlamaCpp, logSoftmax } from './helpers/llamacpp.js';

const modelDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));
const PROMPTS = ['def fibonacci(n):\n', 'class Stack:\n    def __init__(self):\n', 'import os\nfor name in os.listdir(path):\n\t', 'x = [i * i for i in range(10)]  # ünïcode 😀'];
const NEW_TOKENS = 32;

describe('llama.cpp reads lsc quantize GGUF files (node-llama-cpp, CPU)', function () {
  this.timeout(600_000);
  let llama: Llama;
  let dir: string;
  before(async function () {
    const l = await loadLlamaCpp();
    if (typeof l === 'string') {
      console.log(`      skipped: ${l}`);
      this.skip();
    }
    llama = l as Llama;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-llamacpp-'));
  });
  after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  // the largest next-token log-probability difference allowed over tokens lsc gives p > 1e-4 (measured: see the printed figures)
  const LOGPROB_TOL = { f16: 0.01, q8_0: 0.1, q4_0: 0.15 } as const;
  for (const f of ['f16', 'q8_0', 'q4_0'] as const) {
    it(`${f}: same tokenization, same greedy tokens, close log-probabilities`, async function () {
      const file = path.join(dir, `tiny-code-${f}.gguf`);
      quantizeToGguf(modelDir, file, f);
      const lm = await llama.loadModel({ modelPath: file });
      const model = await LscModel.load(file, { gpu: await testGpu() });
      try {
        let worst = 0;
        for (const prompt of PROMPTS) {
          const ids = model.tokenizer.encode(prompt);
          assert.equal(ids[0], model.tokenizer.bosId);
          assert.deepEqual(Array.from(lm.tokenize(prompt)), ids.slice(1), `llama.cpp tokenizes ${JSON.stringify(prompt)} differently`);
          assert.equal(lm.detokenize(lm.tokenize(prompt)), prompt);
          const ours = (await model.complete(ids, { maxNewTokens: NEW_TOKENS, stopAtEos: false, strategy: 'autoregressive' })).tokens;
          const theirs = await llamaGreedy(lm, ids, NEW_TOKENS);
          const lp = logSoftmax((await model.logits(ids))[0]);
          const ref = await llamaLogProbs(lm, ids, lp.length);
          let d = 0;
          for (let t = 0; t < lp.length; t++) if (lp[t] > Math.log(1e-4)) d = Math.max(d, Math.abs(lp[t] - ref[t]));
          worst = Math.max(worst, d);
          // the two agree up to the end, or up to a near-tie: where lsc's own log-probabilities of the
          // two choices are closer than the tolerance (the formats' rounding may pick either)
          const split = ours.findIndex((t, i) => t !== theirs[i]);
          let note = '';
          if (split >= 0) {
            const at = logSoftmax((await model.logits([...ids, ...ours.slice(0, split)]))[0]);
            const gap = at[ours[split]] - at[theirs[split]];
            note = `, then a near-tie at token ${split} (lsc's log p gap ${gap.toFixed(5)})`;
            assert.ok(gap <= LOGPROB_TOL[f], `greedy tokens after ${JSON.stringify(prompt)} differ at ${split}: ${ours[split]} vs llama.cpp ${theirs[split]}, lsc's log p gap ${gap} is no near-tie`);
          }
          console.log(`      ${f} ${JSON.stringify(prompt).slice(0, 28).padEnd(28)} greedy ${split < 0 ? NEW_TOKENS : split}/${NEW_TOKENS} equal${note}; next-token max |Δ log p| ${d.toFixed(5)}`);
        }
        assert.ok(worst <= LOGPROB_TOL[f], `max |Δ log p| ${worst} > ${LOGPROB_TOL[f]}`);
      } finally {
        model.dispose();
        await lm.dispose();
      }
    });
  }
});
