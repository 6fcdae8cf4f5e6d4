import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { emitRmsNorm, type RmsNormKernel } from '../../codegen/families/rms-norm.js';
import { compileGraph } from '../../compiler/compile.js';
import type { Graph } from '../../compiler/ir/graph.js';
import { isLscError } from '../../compiler/errors.js';
import { KernelHarness, Rng, describeMismatches, mismatches, type RowRange } from '../helpers/kernel-harness.js';

/**
 * codegen/families/rms-norm.ts, a family added through the registry alone: an rms_norm whose
 * output feeds something other than matmuls runs as its own kernel. The graph test compiles
 * tiny-code with a second norm in front of the final one (a norm feeding a norm: refused as
 * unsupported before this family existed); the kernel test compares y = x / sqrt(mean(x²) + eps) · g
 * with a float64 CPU reference, and rows outside the dispatch's range must stay untouched.
 */

const GRAPH = fileURLToPath(new URL('../../../graphs/tiny-code.json', import.meta.url));

/** tiny-code with `prenorm = rms_norm(trunk)` before the final norm, in the model and in the exit/verify heads. */
function doubleNormGraph(): Graph {
  const g = JSON.parse(fs.readFileSync(GRAPH, 'utf8')) as Graph & { body: { id: string; in: string[] }[]; exit: { head: string[] }; verify: { head: string[] } };
  const at = g.body.findIndex((n) => n.id === 'final');
  g.body.splice(at, 0, { id: 'prenorm', op: 'rms_norm', in: ['trunk', '@final_norm'], attrs: { eps: 1e-6 } } as never);
  g.body[at + 1].in[0] = 'prenorm';
  g.exit.head.unshift('prenorm');
  g.verify.head.unshift('prenorm');
  return g;
}

describe('rms_norm kernel family (codegen/families/rms-norm.ts)', function () {
  describe('through the registry', function () {
    it('a norm feeding a norm compiles: the first runs standalone (trunk -> a temporary), the second is the lm_head prologue', function () {
      const { plan } = compileGraph(doubleNormGraph(), { file: GRAPH });
      const norms = plan.kernels.filter((k) => k.family === 'rms_norm');
      assert.equal(norms.length, 1);
      assert.deepEqual(norms[0].bindings.map((b) => `${b.name}:${b.type}`), ['rng:range', 'x:read', 'g:read', 'y:rw']);
      const decode = plan.entries.find((e) => e.name === 'decode')!;
      const head = decode.stages.flatMap((s) => s.dispatches).filter((d) => d.nodes.includes('prenorm') || d.nodes.includes('final'));
      assert.deepEqual(head.map((d) => d.nodes), [['prenorm'], ['final', 'logits']]);
      const [x, g, y] = head[0].buffers;
      assert.equal(x, plan.io.trunk);
      assert.equal(g, plan.weights.find((w) => w.id === 'final_norm')!.chunks[0].buffer);
      assert.match(y, /^act:t\d+$/);
      assert.ok(head[1].buffers.includes(y), 'the lm_head kernel reads the standalone norm\'s output');
      // every entry point with a head (decode, draft@E, verify@E, prefill's last stage) runs it
      for (const e of plan.entries.filter((e) => e.kind !== 'prefill')) {
        assert.ok(e.stages.some((s) => s.dispatches.some((d) => d.kernel === norms[0].id)), `${e.name} runs the standalone norm`);
      }
      assert.equal(plan.fusion['rms_norm → matmul prologue'], 2 * 8 + 1, 'the final norm still folds into lm_head');
    });

    it('its precondition is a user error naming the node and a fix: a norm width that is not a multiple of 4', function () {
      // a norm over the logits of a 2050-token vocabulary (no other kernel needs vocab % 4)
      const g = doubleNormGraph() as Graph & { body: { id: string; op: string; in: string[] }[] };
      g.dims.vocab = 2050;
      g.weights.lnorm = { hf: 'lnorm.weight', shape: ['vocab'] };
      const at = g.body.findIndex((n) => n.id === 'next');
      g.body.splice(at, 0, { id: 'lnorm', op: 'rms_norm', in: ['logits', '@lnorm'] });
      g.body[at + 1].in[0] = 'lnorm';
      assert.throws(() => compileGraph(g, { file: GRAPH }), (e: unknown) => isLscError(e)
        && /^rms_norm 'lnorm': width 2050 must be a multiple of 4/.test(e.message) && e.where.pointer === `/body/${at}` && /multiple of 4/.test(e.hint ?? ''));
    });
  });

  describe('kernel vs float64 reference (lavapipe)', function () {
    let h: KernelHarness;
    before(async function () {
      h = await KernelHarness.create();
    });
    afterEach(function () {
      h?.release();
    });

    const ROWS = 12;
    const RANGES: RowRange[] = [{ rowStart: 0, rowCount: 1, posBase: 0 }, { rowStart: 2, rowCount: 9, posBase: 5 }];
    for (const d of [4, 128, 260, 1028]) {
      it(`d=${d}: rows in range normalised, rows outside untouched`, async function () {
        const rng = new Rng(70 + d);
        const eps = 1e-5;
        const x = rng.floats(ROWS * d, 3);
        const gw = rng.floats(d);
        const init = rng.floats(ROWS * d);
        const k: RmsNormKernel = { family: 'rms_norm', nodes: ['n'], x: 'x', weight: 'g', out: 'y', d, eps };
        const src = emitRmsNorm(k);
        const xb = h.buffer(x, 'x');
        const gb = h.buffer(gw, 'g');
        const ys = RANGES.map(() => h.buffer(init, 'y'));
        const bytes = await h.run(RANGES.map((range, i) => ({ src, buffers: { x: xb, g: gb, y: ys[i] }, range })), ys.map((buffer) => ({ buffer })));
        RANGES.forEach((r, i) => {
          const want = Float64Array.from(init);
          const tol = new Float64Array(want.length);
          for (let row = r.rowStart; row < r.rowStart + r.rowCount; row++) {
            let ss = 0;
            for (let c = 0; c < d; c++) ss += x[row * d + c] ** 2;
            const inv = 1 / Math.sqrt(ss / d + eps);
            for (let c = 0; c < d; c++) {
              const v = x[row * d + c] * inv * gw[c];
              want[row * d + c] = v;
              // f32 sums of d squares: a few ulps of each output, relative
              tol[row * d + c] = 1e-5 * Math.abs(v) + 1e-7;
            }
          }
          const got = new Float32Array(bytes[i], 0, ROWS * d);
          const m = mismatches(got, want, (j) => tol[j]);
          assert.equal(m.count, 0, describeMismatches(`d=${d} rows ${r.rowStart}+${r.rowCount}`, m, (j) => `row ${Math.floor(j / d)} col ${j % d}`));
        });
      });
    }
  });
});
