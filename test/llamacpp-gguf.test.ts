/**
 * Interop with llama.cpp (node-llama-cpp, CPU): GGUF files written by `lsc quantize` (F16, Q8_0,
 * Q4_0) load in llama.cpp, which tokenizes like lsc's tokenizer rebuilt from the file's metadata
 * (no tokenizer.json beside it) and decodes the same greedy tokens as lsc on the same file (F16:
 * all of them; quantized: up to a near-tie, if any), with
 * next-token log-probabilities close (llama.cpp's CPU kernels quantize activations to 8 bits for
 * Q8_0/Q4_0 dot products, so those differ more than F16). And the other way: a file llama.cpp's
 * own quantizer wrote loads in lsc. Skipped, saying why, only where node-llama-cpp cannot load
 * llama.cpp (or, for the last, where python3 or the prebuilt libllama is missing).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Llama } from 'node-llama-cpp';
import { quantizeToGguf } from '../runtime/quant/to-gguf.js';
import { GgufFile } from '../runtime/gguf.js';
import { LscModel } from '../runtime/model.js';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { testGpu } from './helpers/gpu.js';
import { byteBpeModelDir, trainingText } from './helpers/byte-bpe.js';
import { ggufTokenizer } from '../runtime/gguf-tokenizer.js';
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

  it('a byte-level BPE vocabulary ("gpt2", llama-bpe): llama.cpp tokenizes like lsc\'s tokenizer rebuilt from the file', async function () {
    const bpeDir = path.join(dir, 'byte-bpe');
    byteBpeModelDir(modelDir, bpeDir, trainingText(fileURLToPath(new URL('../../', import.meta.url))), 2048);
    const file = path.join(dir, 'byte-bpe.gguf');
    quantizeToGguf(bpeDir, file, 'f16');
    const g = GgufFile.open(file);
    const tok = ggufTokenizer(g);
    g.close();
    const lm = await llama.loadModel({ modelPath: file });
    try {
      for (const p of [...PROMPTS, "It's 12345 they're  \n\n  x", '  λ→ 中文\t\r\n end']) {
        const ids = tok.encode(p);
        assert.equal(ids[0], 1);
        assert.deepEqual(Array.from(lm.tokenize(p)), ids.slice(1), JSON.stringify(p));
        assert.equal(lm.detokenize(lm.tokenize(p)), tok.decode(ids));
      }
    } finally {
      await lm.dispose();
    }
  });

  /** node-llama-cpp's prebuilt libllama for this platform, or why there is none. */
  function libllama(): string {
    const pkg = `@node-llama-cpp/${process.platform}-${process.arch}`;
    try {
      const bins = path.join(path.dirname(createRequire(import.meta.url).resolve(pkg)), '..', 'bins', `${process.platform}-${process.arch}`);
      const lib = fs.readdirSync(bins).find((f) => /^libllama[.\w]*\.so$/.test(f) && !f.includes('common'));
      return lib ? path.join(bins, lib) : `no libllama in ${bins}`;
    } catch (e) {
      return `${pkg} is not installed: ${(e as Error).message.split('\n')[0]}`;
    }
  }

  for (const [f, ftype] of [['q8_0', 7], ['q4_0', 2]] as const) {
    it(`a ${f} GGUF written by llama.cpp's quantizer (its writer, its embedding format) loads in lsc and decodes llama.cpp's greedy tokens`, async function () {
      const lib = libllama();
      const script = fileURLToPath(new URL('../../test/helpers/llamacpp-quantize.py', import.meta.url));
      if (!lib.startsWith('/')) { console.log(`      skipped: ${lib}`); this.skip(); }
      const src = path.join(dir, 'source-f16.gguf');
      if (!fs.existsSync(src)) quantizeToGguf(modelDir, src, 'f16');
      const file = path.join(dir, `llamacpp-${f}.gguf`);
      const run = spawnSync('python3', [script, lib, src, file, String(ftype), 'pure'], { encoding: 'utf8' });
      if (run.error) { console.log(`      skipped: python3 cannot run: ${run.error.message}`); this.skip(); }
      assert.equal(run.status, 0, run.stderr.slice(-2000));
      // llama.cpp's writer, every matrix in the one format (the LM head as its own tensor)
      const g = GgufFile.open(file);
      const types = new Set([...g.tensors.values()].filter((t) => t.shape.length === 2).map((t) => `${t.name.replace(/^blk\.\d+\./, '')} ${t.type}`));
      g.close();
      assert.deepEqual([...types].sort(), ['attn_k', 'attn_output', 'attn_q', 'attn_v', 'ffn_down', 'ffn_gate', 'ffn_up', 'output', 'token_embd']
        .map((n) => `${n}.weight ${f.toUpperCase()}`).sort().filter((x) => types.has(x) || !x.startsWith('output')));
      const lm = await llama.loadModel({ modelPath: file });
      const model = await LscModel.load(file, { gpu: await testGpu() });
      try {
        assert.equal(model.plan.dtypes.weights, f);
        for (const prompt of PROMPTS.slice(0, 2)) {
          const ids = model.tokenizer.encode(prompt);
          const ours = (await model.complete(ids, { maxNewTokens: NEW_TOKENS, stopAtEos: false, strategy: 'autoregressive' })).tokens;
          const theirs = await llamaGreedy(lm, ids, NEW_TOKENS);
          const split = ours.findIndex((t, i) => t !== theirs[i]);
          console.log(`      llama.cpp-written ${f} ${JSON.stringify(prompt).slice(0, 28).padEnd(28)} greedy ${split < 0 ? NEW_TOKENS : split}/${NEW_TOKENS} equal`);
          if (split >= 0) {
            const at = logSoftmax((await model.logits([...ids, ...ours.slice(0, split)]))[0]);
            assert.ok(at[ours[split]] - at[theirs[split]] <= LOGPROB_TOL[f], `greedy tokens differ at ${split}, no near-tie`);
          }
        }
      } finally {
        model.dispose();
        await lm.dispose();
      }
    });
  }

  // llama.cpp's default (non-pure) Q4_0 keeps output.weight at Q8_0 (Q6_K's fallback for rows of
  // 128, not whole 256-blocks) and token_embd at Q4_0; the second file sets both types itself
  for (const [what, extra, head, embd] of [['default non-pure', [], 'Q8_0', 'Q4_0'], ['output F16, token_embd Q8_0', ['output=1', 'embd=8'], 'F16', 'Q8_0']] as const) {
    it(`a llama.cpp Q4_0 file of mixed types (${what}) loads each matrix in its own type and decodes llama.cpp's greedy tokens`, async function () {
      const lib = libllama();
      const script = fileURLToPath(new URL('../../test/helpers/llamacpp-quantize.py', import.meta.url));
      if (!lib.startsWith('/')) { console.log(`      skipped: ${lib}`); this.skip(); }
      const src = path.join(dir, 'source-f16.gguf');
      if (!fs.existsSync(src)) quantizeToGguf(modelDir, src, 'f16');
      const file = path.join(dir, `llamacpp-mixed-${extra.length}.gguf`);
      const run = spawnSync('python3', [script, lib, src, file, '2', ...extra], { encoding: 'utf8' });
      if (run.error) { console.log(`      skipped: python3 cannot run: ${run.error.message}`); this.skip(); }
      assert.equal(run.status, 0, run.stderr.slice(-2000));
      const g = GgufFile.open(file);
      const types = new Map([...g.tensors.values()].map((t) => [t.name, t.type]));
      g.close();
      assert.deepEqual([types.get('output.weight'), types.get('token_embd.weight'), types.get('blk.3.ffn_down.weight')], [head, embd, 'Q4_0']);
      const lm = await llama.loadModel({ modelPath: file });
      const model = await LscModel.load(file, { gpu: await testGpu() });
      try {
        const byHf = new Map(model.plan.weights.map((w) => [w.hf, w.gpuDtype]));
        // the head in its own type; the embedding gathered as f16 rows (its Q4_0 / Q8_0 values, exact in f16 but for the scales' rounding)
        assert.deepEqual([byHf.get('lm_head.weight'), byHf.get('model.embed_tokens.weight'), byHf.get('model.layers.3.mlp.down_proj.weight')],
          [head === 'F16' ? 'f16' : 'q8_0', 'f16', 'q4_0']);
        for (const prompt of PROMPTS.slice(0, 2)) {
          const ids = model.tokenizer.encode(prompt);
          const ours = (await model.complete(ids, { maxNewTokens: NEW_TOKENS, stopAtEos: false, strategy: 'autoregressive' })).tokens;
          const spec = (await model.complete(ids, { maxNewTokens: NEW_TOKENS, stopAtEos: false, strategy: 'self-speculative', exitLayer: 3, numSpeculations: 3 })).tokens;
          assert.deepEqual(spec, ours, 'greedy self-speculative = autoregressive');
          const theirs = await llamaGreedy(lm, ids, NEW_TOKENS);
          const split = ours.findIndex((t, i) => t !== theirs[i]);
          console.log(`      llama.cpp-written q4_0 (${what}) ${JSON.stringify(prompt).slice(0, 28).padEnd(28)} greedy ${split < 0 ? NEW_TOKENS : split}/${NEW_TOKENS} equal`);
          if (split >= 0) {
            const at = logSoftmax((await model.logits([...ids, ...ours.slice(0, split)]))[0]);
            assert.ok(at[ours[split]] - at[theirs[split]] <= LOGPROB_TOL.q4_0, `greedy tokens differ at ${split}, no near-tie`);
          }
        }
      } finally {
        model.dispose();
        await lm.dispose();
      }
    });
  }
});
