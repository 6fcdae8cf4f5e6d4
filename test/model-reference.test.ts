/**
 * The bundled LayerSkip models (examples/models/tiny-code, 8 layers, and tiny-code-deep, 16 layers
 * with a 7B-like head / layer ratio) on the GPU runtime against their reference.json, which an
 * independent float64 PyTorch implementation of HF Llama wrote (the same schema for both).
 * Tolerance (from reference.json / the README): max |Δlogit| ≤ 0.05 and the same argmax.
 * The runtime keeps f16 weights (as stored), f32 activations and an f16 KV cache; measured errors
 * are ~1–2e-3, so 0.05 leaves a wide margin while still catching any real kernel bug (a wrong
 * RoPE pair, mask or head mapping moves logits by O(0.1–1)).
 *
 * The CPU reference of test/helpers/cpu-llama.ts is checked against reference.json here too:
 * both are float64 over the same f16 weights, so they agree to the 5 decimals reference.json
 * stores (measured 5e-6); this validates the yardstick model-features.test.ts uses.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LscModel } from '../runtime/model.js';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import { testGpu } from './helpers/gpu.js';
import { CpuLlama, argmax, maxAbsDiff, type LlamaRefConfig } from './helpers/cpu-llama.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

interface RefPrompt {
  text: string;
  tokens: number[];
  logitsLast: number[];
  exitLogitsLast: Record<string, number[]>;
  greedy: number[];
  greedyText: string;
  earlyExitGreedy: Record<string, number[]>;
  logitsAllPositions?: number[][];
}
interface Reference { tolerance: { maxAbsLogit: number }; prompts: RefPrompt[] }

/** float64 vs float64 on identical weights; reference.json rounds logits to 5 decimals (≤ 5e-6). */
const CPU_TOL = 1e-4;

/** max |Δ| ≤ tol, and the same argmax. */
function expectLogits(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} logits, expected ${expected.length}`);
  const d = maxAbsDiff(actual, expected);
  assert.ok(d <= tol, `${what}: max |Δlogit| = ${d} > ${tol}`);
  assert.equal(argmax(actual), argmax(expected), `${what}: argmax differs (max |Δlogit| ${d})`);
}

for (const name of ['tiny-code', 'tiny-code-deep']) {
  const modelDir = path.join(root, 'examples', 'models', name);
  const reference = JSON.parse(fs.readFileSync(path.join(modelDir, 'reference.json'), 'utf8')) as Reference;
  const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as LlamaRefConfig;
  const TOL = reference.tolerance.maxAbsLogit; // 0.05
  const LAYERS = config.num_hidden_layers;
  const EXITS = Array.from({ length: LAYERS - 1 }, (_, i) => i + 1);

  describe(`${name} on the GPU runtime vs reference.json`, function () {
    let model: LscModel;

    before(async function () {
      model = await LscModel.load(modelDir, { gpu: await testGpu() });
    });
    after(() => model?.dispose());

    it(`compiles every exit 1..${LAYERS - 1} (the candidates reference.json covers)`, () => {
      assert.equal(model.layers, LAYERS);
      assert.deepEqual(model.exitCandidates, EXITS);
    });

    it(`builds from config.json the checked-in graphs/${name}.json`, () => {
      const file = path.join(root, 'graphs', `${name}.json`);
      assert.deepEqual(JSON.parse(JSON.stringify(model.graph)), JSON.parse(fs.readFileSync(file, 'utf8')));
    });

    reference.prompts.forEach((p, i) => {
      describe(`prompt ${i} (${p.tokens.length} tokens)`, () => {
        it('tokenizes the prompt text to the reference tokens', () => {
          assert.deepEqual(model.tokenizer.encode(p.text), p.tokens);
        });

        it(`last-position logits of the full model and of every exit 1..${LAYERS - 1}`, async () => {
          const [full] = await model.logits(p.tokens);
          expectLogits(full, p.logitsLast, TOL, 'full model');
          for (const E of EXITS) {
            const [exit] = await model.logits(p.tokens, { exitLayer: E });
            expectLogits(exit, p.exitLogitsLast[E], TOL, `exit ${E}`);
          }
        });

        if (p.logitsAllPositions) {
          const all = p.logitsAllPositions;
          it('logits at every position', async () => {
            const rows = await model.logits(p.tokens, { allPositions: true });
            assert.equal(rows.length, all.length);
            rows.forEach((row, t) => expectLogits(row, all[t], TOL, `position ${t}`));
          });
        }

        it(`${p.greedy.length} greedy tokens (autoregressive)`, async () => {
          const r = await model.complete(p.tokens, { maxNewTokens: p.greedy.length, strategy: 'autoregressive', temperature: 0, stopAtEos: false });
          assert.deepEqual(r.tokens, p.greedy);
          assert.equal(r.stats.stopReason, 'max-tokens');
          // greedyText decodes the new tokens alone (r.text, decoded after the prompt, keeps the
          // SentencePiece prefix space that this drops)
          assert.equal(model.tokenizer.decode(r.tokens), p.greedyText);
        });

        it('greedy tokens through exit 2 (early-exit)', async () => {
          const want = p.earlyExitGreedy['2'];
          const r = await model.complete(p.tokens, {
            maxNewTokens: want.length, strategy: 'early-exit', exitLayer: 2, temperature: 0, stopAtEos: false,
          });
          assert.deepEqual(r.tokens, want);
        });

        // Greedy self-speculative decoding is exact: whatever the drafts, the output is the full
        // model's greedy sequence.
        it('greedy self-speculative decoding (E=2,k=2 and E=4,k=3) yields the greedy tokens', async () => {
          for (const [E, k] of [[2, 2], [4, 3]]) {
            const r = await model.complete(p.tokens, {
              maxNewTokens: p.greedy.length, strategy: 'self-speculative', exitLayer: E, numSpeculations: k,
              temperature: 0, stopAtEos: false,
            });
            assert.deepEqual(r.tokens, p.greedy, `E=${E} k=${k}`);
            assert.ok(r.stats.draftedTokens > 0, `E=${E} k=${k}: no drafts`);
          }
        });
      });
    });
  });

  describe(`CPU reference (test/helpers/cpu-llama.ts) vs ${name}'s reference.json`, function () {
    let cpu: CpuLlama;

    before(() => {
      const ckpt = SafetensorsCheckpoint.open(modelDir);
      try {
        const tensors = new Map<string, Float64Array>();
        for (const name of ckpt.tensors.keys()) tensors.set(name, Float64Array.from(ckpt.readAll(name, 'f32')));
        cpu = new CpuLlama(config, tensors);
      } finally {
        ckpt.close();
      }
    });

    reference.prompts.forEach((p, i) => {
      it(`prompt ${i}: last-position logits of the full model and every exit, all positions, greedy and early-exit greedy`, () => {
        const exits = cpu.allExitsLast(p.tokens); // exits[E - 1]; exits[L - 1] is the full model
        expectLogits(exits[LAYERS - 1], p.logitsLast, CPU_TOL, 'full model');
        for (const E of EXITS) expectLogits(exits[E - 1], p.exitLogitsLast[E], CPU_TOL, `exit ${E}`);
        if (p.logitsAllPositions) {
          const rows = cpu.forward(p.tokens);
          rows.forEach((row, t) => expectLogits(row, p.logitsAllPositions![t], CPU_TOL, `position ${t}`));
        }
        const [exit3] = cpu.forward(p.tokens, { exitLayer: 3, lastOnly: true });
        expectLogits(exit3, p.exitLogitsLast[3], CPU_TOL, 'forward through exit 3');
        assert.deepEqual(cpu.greedy(p.tokens, p.greedy.length), p.greedy);
        assert.deepEqual(cpu.greedy(p.tokens, p.earlyExitGreedy['2'].length, { exitLayer: 2 }), p.earlyExitGreedy['2']);
      });
    });
  });
}
