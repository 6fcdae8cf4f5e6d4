import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { speculationBounds } from '../runtime/speculation-bounds.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The bounds from the plan's weight buffers against the same figures from the model's dimensions:
 * a layer is its four attention and three MLP matrices (f16) and two norm vectors (f32); the
 * head is the LM head (f16) and the final norm; the embedding gather reads one row per token.
 */
describe('speculation bounds (runtime/speculation-bounds.ts)', () => {
  for (const name of ['tiny-code', 'tiny-code-deep', 'llama2-7b', 'llama3-8b']) {
    it(`${name}: bandwidth- and compute-bound speedups from the plan match the model's dimensions`, () => {
      const file = path.join(root, 'graphs', `${name}.json`);
      const graph = JSON.parse(fs.readFileSync(file, 'utf8')) as Graph;
      const plan = compileGraph(graph, { file }).plan;
      const { d, heads, kvHeads, headDim, ffn, vocab, layers: L } = plan.dims;
      const layer = 2 * (d * heads * headDim * 2 + 2 * d * kvHeads * headDim + 3 * d * ffn) + 2 * 4 * d;
      const head = 2 * vocab * d + 4 * d;
      for (const E of plan.exits.candidates.slice(0, 3)) {
        for (const [k, tau] of [[1, 1.8], [2, 2.75], [6, 4.2]]) {
          const b = speculationBounds(plan, E, k, tau);
          const ar = L * layer + head;
          const draft = E * layer + head;
          assert.ok(Math.abs(b.bandwidthBound - (tau * ar) / (k * draft + ar)) < 1e-9, `E=${E} k=${k} bandwidth ${b.bandwidthBound}`);
          const verifyRows = E * layer + (k + 1) * ((L - E) * layer + head);
          assert.ok(Math.abs(b.computeBound - (tau * ar) / (k * draft + verifyRows)) < 1e-9, `E=${E} k=${k} compute ${b.computeBound}`);
        }
      }
    });
  }

  it('tiny-code: the dispatch-bound figure counts 43 dispatches per decode step, 5E + 3 per draft, 43 per verify, 1 acceptance', () => {
    const file = path.join(root, 'graphs', 'tiny-code.json');
    const plan = compileGraph(JSON.parse(fs.readFileSync(file, 'utf8')) as Graph, { file }).plan;
    // embed, 5 per layer, head matmul, argmax (kernel-count.test.ts derives these)
    for (const [E, k, tau] of [[2, 2, 2.4], [4, 3, 3.1], [7, 8, 8.6]]) {
      const got = speculationBounds(plan, E, k, tau).dispatchBound;
      assert.ok(Math.abs(got - (tau * 43) / (k * (5 * E + 3) + 43 + 1)) < 1e-9, `E=${E} k=${k}: ${got}`);
    }
  });
});
