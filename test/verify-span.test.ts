import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import type { PlanEntry } from '../compiler/plan.js';
import { entryOf } from '../compiler/ir/stages.js';
import { LscModel } from '../runtime/model.js';
import { testGpu } from './helpers/gpu.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tinyDir = path.join(root, 'examples/models/tiny-code');
const tinyGraph = (): Graph => JSON.parse(fs.readFileSync(path.join(root, 'graphs/tiny-code.json'), 'utf8')) as Graph;

/** tiny-code's graph with verify recomputing every layer from the embedding. */
function fromEmbedding(): Graph {
  const g = tinyGraph();
  g.verify = { ...g.verify, layers: ['0', 'layers'], from: 'embedding' };
  return g;
}

/** Layers an entry's stages compute (from the L<i>. node ids of their dispatches), per stage role. */
function layersByRole(e: PlanEntry): Record<string, number[]> {
  return Object.fromEntries(e.stages.map((s) => [s.role, [...new Set(s.dispatches.flatMap((d) => d.nodes)
    .map((n) => /^L(\d+)\./.exec(n)?.[1]).filter((x) => x !== undefined).map(Number))].sort((a, b) => a - b)]));
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('verify span: the graph\'s verify_subgraph decides what verify@E runs', function () {
  it('["0", "layers"]: verify@E runs every layer over the k+1 rows, from the embedding', () => {
    const { plan } = compileGraph(fromEmbedding());
    const L = plan.dims.layers;
    for (const E of plan.exits.candidates) {
      const v = entryOf(plan, 'verify', E);
      assert.deepEqual(v.stages.map((s) => s.role), ['trunk', 'head'], `verify@${E}`);
      assert.deepEqual(layersByRole(v), { trunk: range(0, L), head: [] }, `verify@${E}`);
      assert.ok(v.stages[0].dispatches[0].nodes.includes('x0'), 'verify starts with the embedding');
      for (const s of v.stages) assert.deepEqual(s.range, { rowStart: '0', rowCount: 'k+1', posBase: 'p' }, `verify@${E} ${s.role}`);
      assert.deepEqual(v.kvLayers, [0, L]);
    }
  });

  it('["E", "layers"] (the bundled graphs): the newest draft through layers < E, then layers E.. over k+1 rows', () => {
    const { plan } = compileGraph(tinyGraph());
    const L = plan.dims.layers;
    for (const E of plan.exits.candidates) {
      const v = entryOf(plan, 'verify', E);
      assert.deepEqual(layersByRole(v), { newest: range(0, E), deep: range(E, L), head: [] }, `verify@${E}`);
      assert.deepEqual(v.stages.map((s) => s.range.rowCount), ['1', 'k+1', 'k+1']);
    }
  });

  it('prefill@E: the prompt chunk through layers < E, then the shared head on its last row', () => {
    const { plan } = compileGraph(tinyGraph());
    for (const E of plan.exits.candidates) {
      const p = entryOf(plan, 'prefill', E);
      assert.deepEqual(layersByRole(p), { trunk: range(0, E), head: [] }, `prefill@${E}`);
      assert.deepEqual(p.kvLayers, [0, E]);
      assert.deepEqual(p.stages.map((s) => s.range.rowCount), ['T', '1']);
    }
  });

  describe('on the GPU with the bundled tiny-code weights', function () {
    let model: LscModel;
    let dir: string;
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-verify-span-'));
      const file = path.join(dir, 'tiny-code-from-embedding.json');
      fs.writeFileSync(file, JSON.stringify(fromEmbedding()));
      model = await LscModel.load(tinyDir, { gpu: await testGpu(), graph: file });
    });
    after(() => {
      model?.dispose();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('loads the plan the graph declares', () => {
      assert.deepEqual(entryOf(model.plan, 'verify', 3).stages.map((s) => s.role), ['trunk', 'head']);
    });

    it("verify's logits for each position equal decode's bit for bit (the KV of layers < E rewritten with the drafts' values)", async () => {
      const ids = model.tokenizer.encode('def fibonacci(n):\n');
      const p = ids.length;
      const k = 4;
      // the tokens of a round: the current token and k drafts (any tokens will do)
      const round = [model.steps.vocab - 1, 13, 260, 348, 7];
      await model.steps.prefill(ids, {});
      const decode: Float32Array[] = [];
      for (let i = 0; i <= k; i++) decode.push(await model.steps.stepLogits(round[i], p + i, 0));
      for (const E of [1, 4, 7]) {
        await model.steps.prefill(ids, {});
        for (let i = 0; i < k; i++) await model.steps.stepLogits(round[i], p, i, E);
        const verify = await model.steps.verifyLogits(round, p, E);
        for (let i = 0; i <= k; i++) {
          const a = new Uint32Array(decode[i].buffer, decode[i].byteOffset, decode[i].length);
          const b = new Uint32Array(verify[i].buffer, verify[i].byteOffset, verify[i].length);
          const diff = a.findIndex((x, j) => x !== b[j]);
          assert.equal(diff, -1, `E=${E} position ${i}: logit ${diff} differs (${decode[i][diff]} vs ${verify[i][diff]})`);
        }
      }
    });

    const prompts = [
      'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n',
      'import os\n\nclass Config:\n    def __init__(self, path):\n',
      'for i in range(10):\n',
    ];
    const cases: [number, number][] = [[1, 1], [1, 8], [2, 3], [4, 5], [7, 2], [7, 8]];

    it(`greedy self-speculative tokens equal autoregressive tokens for (E, k) in ${cases.map((c) => `(${c})`).join(' ')}`, async () => {
      const n = 24;
      for (const prompt of prompts) {
        const ar = await model.complete(prompt, { maxNewTokens: n, stopAtEos: false, strategy: 'autoregressive' });
        for (const [E, k] of cases) {
          const ss = await model.complete(prompt, { maxNewTokens: n, stopAtEos: false, strategy: 'self-speculative', exitLayer: E, numSpeculations: k });
          assert.deepEqual(ss.tokens, ar.tokens, `E=${E} k=${k} prompt ${JSON.stringify(prompt.slice(0, 20))}`);
          assert.ok(ss.stats.draftedTokens > 0, 'drafts were made');
          assert.ok(ss.stats.rounds > 1, 'more than one round');
        }
      }
    });
  });
});
