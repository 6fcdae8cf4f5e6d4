import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { attendedPositions, CostModel } from '../cli/inspect-cost.js';
import { ROOT } from './helpers/run-cli.js';

/**
 * Bytes and FLOPs per dispatch (cli/inspect-cost.ts) against figures worked out by hand for
 * tiny-code: d 128, ffn 352, 4 heads × 32, vocab 2048, ctx 1024; weights f16, norm gains f32,
 * activations f32, KV f16; the RoPE table holds 16 cos + 16 sin f32 per position (128 B).
 */
describe('inspect cost model (cli/inspect-cost.ts)', () => {
  const file = path.join(ROOT, 'graphs', 'tiny-code.json');
  const graph = JSON.parse(fs.readFileSync(file, 'utf8')) as Graph;
  const plan = compileGraph(graph, { file }).plan;
  const model = new CostModel(graph, plan, file);
  const decode = plan.entries.find((e) => e.name === 'decode')!.stages[0].dispatches;
  const byFirstNode = (node: string) => decode.find((d) => d.nodes[0] === node)!;
  const p = 512; // ctx/2: attention reads the K and V of positions 0..512

  const expected: [string, string, { readBytes: number; writeBytes: number; flops: number }][] = [
    // token id 4 B + one f16 table row 128×2; writes x0 128×4
    ['x0', 'embed', { readBytes: 4 + 256, writeBytes: 512, flops: 0 }],
    // x0 512 + attn_norm 128×4 + wq, wk, wv 3×128×128×2 + RoPE row 128; writes q_rot 512 (f32) and K, V 2×128×2 (f16)
    // FLOPs: norm 4×128 + 3 matmuls 3×2×128×128 + rope on q and k 2×3×128
    ['L0.h', 'norm + q/k/v + rope', { readBytes: 512 + 512 + 98304 + 128, writeBytes: 512 + 512, flops: 512 + 98304 + 768 }],
    // q_rot 512 + K and V of 513 positions × 2×128×2; FLOPs 513 × (4×4×32 + 4×4)
    ['L0.attn', 'attention', { readBytes: 512 + 513 * 512, writeBytes: 512, flops: 513 * 528 }],
    // attn 512 + x 512 + wo 128×128×2; writes x1; FLOPs 2×128×128 + add 128
    ['L0.o', 'o + residual', { readBytes: 512 + 512 + 32768, writeBytes: 512, flops: 32768 + 128 }],
    // x1 512 + ffn_norm 512 + w_gate, w_up 2×352×128×2; writes mlp 352×4
    // FLOPs: norm 4×128 + 2 matmuls 2×2×128×352 + silu 4×352 + mul 352
    ['L0.h2', 'norm + gate/up + silu·up', { readBytes: 512 + 512 + 180224, writeBytes: 1408, flops: 512 + 180224 + 1408 + 352 }],
    // mlp 1408 + x1 512 + w_down 128×352×2; writes y; FLOPs 2×352×128 + add 128
    ['L0.down', 'down + residual', { readBytes: 1408 + 512 + 90112, writeBytes: 512, flops: 90112 + 128 }],
    // trunk 512 + final_norm 512 + lm_head 2048×128×2; writes logits 2048×4; FLOPs 4×128 + 2×128×2048
    ['final', 'final norm + lm_head', { readBytes: 512 + 512 + 524288, writeBytes: 8192, flops: 512 + 524288 }],
    // logits 2048×4; writes the token id 4 B; 2048 compares
    ['next', 'argmax', { readBytes: 8192, writeBytes: 4, flops: 2048 }],
  ];
  for (const [node, what, cost] of expected) {
    it(`decode's ${what} dispatch (first node ${node}): 1 row at position ${p} matches the hand-computed bytes and FLOPs`, () => {
      assert.deepEqual(model.cost(byFirstNode(node), 1, p), cost);
    });
  }

  it('rows r = 0..R-1 at positions p+r: weights read once, activations per row, attention over Σ (p+r+1) positions', () => {
    assert.equal(attendedPositions(1, p), 513);
    assert.equal(attendedPositions(4, p), 513 + 514 + 515 + 516);
    // verify's k+1 = 4 rows through the o projection: wo once, activations ×4
    assert.deepEqual(model.cost(byFirstNode('L0.o'), 4, p), { readBytes: 32768 + 4 * 1024, writeBytes: 4 * 512, flops: 4 * 32896 });
    assert.deepEqual(model.cost(byFirstNode('L0.attn'), 4, p), { readBytes: 4 * 512 + 2058 * 512, writeBytes: 4 * 512, flops: 2058 * 528 });
  });

  it("a decode step reads every weight once (tiny-code's 3.06 MiB of layer and head weights, the embedding row aside)", () => {
    const total = decode.reduce((a, d) => a + model.cost(d, 1, p).readBytes, 0);
    const weights = plan.weights.filter((w) => w.id !== 'embed').reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1) * (w.gpuDtype === 'f16' ? 2 : 4), 0);
    const kv = 8 * 513 * 512;
    const activations = total - weights - kv;
    // what is left: activations, token, embedding and RoPE rows: a few KiB per layer
    assert.ok(activations > 0 && activations < 8 * 4096 + 16384, `activations ${activations}`);
  });

  it('llama2-7b: a weight split into row chunks (lm_head over 2 buffers) is read once, chunk by chunk, by the dispatch that binds them', () => {
    const f7 = path.join(ROOT, 'graphs', 'llama2-7b.json');
    const g7 = JSON.parse(fs.readFileSync(f7, 'utf8')) as Graph;
    const p7 = compileGraph(g7, { file: f7 }).plan;
    const m7 = new CostModel(g7, p7, f7);
    const heads = p7.entries.find((e) => e.name === 'decode')!.stages[0].dispatches.filter((d) => d.nodes.includes('logits'));
    assert.equal(heads.length, 1, 'one dispatch binds every slice of the head');
    const chunkBytes = heads[0].buffers.filter((x) => x.startsWith('w:lm_head')).map((id) => p7.buffers.find((b) => b.id === id)!.bytes);
    assert.deepEqual(chunkBytes, [16384 * 4096 * 2, 15616 * 4096 * 2]);
    // the two chunks, the final_norm gain 4096×4 and the trunk row 4096×4
    assert.equal(m7.cost(heads[0], 1, 2048).readBytes, chunkBytes[0] + chunkBytes[1] + 16384 + 16384);
  });
});
