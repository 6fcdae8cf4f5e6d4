/**
 * Per-tensor weight formats (a weight declaration's `format` beside `dtypes.weights`, and
 * `--weights FORMAT[:head=FORMAT]`): plans give each weight its own format, a matmul kernel reads
 * segments of different formats, bad formats are one-line errors naming the JSON pointer (exit 2 at
 * the command line), and a mixed-format tiny-code matches the float64 reference on its dequantized
 * weights and decodes greedily the same self-speculatively as autoregressively.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LscError } from '../compiler/errors.js';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { parseWeightsSpec } from '../compiler/ir/weights-spec.js';
import { matrixBytes, type WeightFormat } from '../compiler/ir/weight-formats.js';
import { LscModel } from '../runtime/model.js';
import { testGpu } from './helpers/gpu.js';
import { CpuLlama, argmax, maxAbsDiff, type LlamaRefConfig } from './helpers/cpu-llama.js';
import { dequantizedCheckpoint } from './helpers/dequantized.js';
import { assertUserError, ROOT, runLsc } from './helpers/run-cli.js';

const FILE = path.join(ROOT, 'graphs', 'tiny-code.json');
const tiny = JSON.parse(fs.readFileSync(FILE, 'utf8')) as Graph;
const modelDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));
const config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as LlamaRefConfig;

/** tiny-code's graph with these declarations' formats (and dtypes.weights). */
function withFormats(formats: Record<string, unknown>, matrices = 'q4_0'): Graph {
  const g = structuredClone(tiny) as unknown as { dtypes: Record<string, unknown>; weights: Record<string, Record<string, unknown>> };
  g.dtypes.weights = matrices;
  for (const [d, f] of Object.entries(formats)) g.weights[d].format = f;
  return g as unknown as Graph;
}

/** q/k/v in three formats (one kernel), gate/up q8_0, down f16, the rest q4_0, the head q4_0 (not HEAD_FORMAT's q8_0). */
const MIXED = { wq: 'q8_0', wk: 'f16', w_gate: 'q8_0', w_up: 'q8_0', w_down: 'f16', lm_head: 'q4_0' };

function expectError(run: () => unknown, message: RegExp, pointer: string): void {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof LscError, String(e));
    assert.match(e.message, message);
    assert.equal(e.where.pointer, pointer, e.message);
    assert.doesNotMatch(e.format(), /\n/);
    return true;
  });
}

describe('per-tensor weight formats (graph declarations, --weights FORMAT[:head=FORMAT])', function () {
  it('a mixed graph plans each weight in its declaration\'s format, with its bytes; one kernel reads q/k/v in three formats', function () {
    const { plan } = compileGraph(withFormats(MIXED), { file: FILE });
    const want = (hf: string): WeightFormat => {
      if (/norm/.test(hf)) return 'f32';
      if (hf === 'model.embed_tokens.weight') return 'f16';
      for (const [part, d] of [['q_proj', 'wq'], ['k_proj', 'wk'], ['gate_proj', 'w_gate'], ['up_proj', 'w_up'], ['down_proj', 'w_down'], ['lm_head', 'lm_head']]) {
        if (hf.includes(part)) return (MIXED as Record<string, WeightFormat>)[d];
      }
      return 'q4_0';
    };
    for (const w of plan.weights) {
      assert.equal(w.gpuDtype, want(w.hf), w.hf);
      const b = plan.buffers.find((x) => x.id === w.chunks[0].buffer)!;
      assert.equal(b.bytes, matrixBytes(w.gpuDtype, w.shape[0], w.shape[1] ?? 1), w.hf);
    }
    // the decode plan's q/k/v kernel: its segments in q8_0, f16 and q4_0, dequantizing both block formats
    const qkv = plan.kernels.find((k) => k.family === 'matmul' && k.fused.some((n) => /wq|q_proj|\.q$/.test(n)) && /q8_0/.test(k.name) && /q4_0/.test(k.name));
    assert.ok(qkv, `a matmul kernel reading q8_0 and q4_0 segments; kernels: ${plan.kernels.map((k) => k.name).join(', ')}`);
  });

  it('--weights q4 keeps the LM head at q8_0; q4:head=q4 and q4:head=f16 set it; the bytes follow', function () {
    const head = (spec: string): [WeightFormat, number] => {
      const { plan } = compileGraph(tiny, { file: FILE, weights: parseWeightsSpec(spec) });
      return [plan.weights.find((w) => w.hf === 'lm_head.weight')!.gpuDtype, plan.buffers.filter((b) => b.kind === 'weight').reduce((a, b) => a + b.bytes, 0)];
    };
    const [d, dBytes] = head('q4');
    const [q4, q4Bytes] = head('q4:head=q4');
    const [f16, f16Bytes] = head('q4:head=f16');
    assert.deepEqual([d, q4, f16, head('q8')[0], head('f16')[0], head('q8:head=q4')[0]], ['q8_0', 'q4_0', 'f16', 'q8_0', 'f16', 'q4_0']);
    const [vocab, dim] = [2048, 128];
    assert.equal(dBytes - q4Bytes, matrixBytes('q8_0', vocab, dim) - matrixBytes('q4_0', vocab, dim));
    assert.equal(f16Bytes - q4Bytes, matrixBytes('f16', vocab, dim) - matrixBytes('q4_0', vocab, dim));
    // a declaration's own format wins over the default for the head
    assert.equal(compileGraph(withFormats({ lm_head: 'q4_0' }), { file: FILE }).plan.weights.find((w) => w.hf === 'lm_head.weight')!.gpuDtype, 'q4_0');
  });

  it('bad formats: one line naming the JSON pointer', function () {
    const c = (g: Graph) => (): unknown => compileGraph(g, { file: FILE });
    expectError(c(withFormats({ wq: 'q5_0' })), /must be one of \["f16","q8_0","q4_0"\]/, '/weights/wq/format');
    expectError(c(withFormats({ attn_norm: 'f16' })), /weight 'attn_norm' is a vector \(kept f32\); only matrices take a format/, '/weights/attn_norm/format');
    expectError(c(withFormats({ embed: 'q8_0' })), /'embed' is the table the embedding gathers f16 rows from; it cannot be q8_0/, '/weights/embed/format');
    expectError(c(withFormats({ w_up: 'f16' })), /weights 'w_gate' \(q4_0\) and 'w_up' \(f16\) are read together by one matmul/, '/weights/w_up/format');
    const tied = structuredClone(tiny);
    tied.weights.lm_head = { ...tied.weights.lm_head, tiedTo: 'embed', format: 'q8_0' };
    expectError(c(tied), /weight 'lm_head' is tied to 'embed' and shares its buffer/, '/weights/lm_head/format');
    for (const [spec, re] of [['q5', /'q5' is not one of f16, q8, q4/], ['q4:head=q3', /'q3' is not one of/], ['q4:tail=q8', /'tail=q8' is not head=FORMAT/],
      ['q4:head=q8:head=q4', /head is given twice/], ['', /'' is not one of/]] as const) {
      assert.throws(() => parseWeightsSpec(spec), (e: unknown) => e instanceof LscError && re.test(e.message) && !/\n/.test(e.format()), spec);
    }
  });

  it('at the command line: exit 2 and one line for a bad --weights or a bad format in a graph file', async function () {
    this.timeout(60_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-formats-'));
    try {
      const bad = path.join(dir, 'bad.json');
      fs.writeFileSync(bad, JSON.stringify(withFormats({ embed: 'q4_0' })));
      assertUserError(await runLsc(['compile', FILE, '--weights', 'q4:head=q5', '-o', path.join(dir, 'o1')]), /--weights q4:head=q5: 'q5' is not one of f16, q8, q4.*Fix: pass FORMAT or FORMAT:head=FORMAT/, '--weights q4:head=q5');
      assertUserError(await runLsc(['compile', bad, '-o', path.join(dir, 'o2')]), /#\/weights\/embed\/format/, 'embed format in a graph file');
      const ok = await runLsc(['compile', FILE, '--weights', 'q4:head=f16', '-o', path.join(dir, 'o3')]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /weights .*: matrices q4_0, embed f16, lm_head f16/);
      const mixed = path.join(dir, 'mixed.json');
      fs.writeFileSync(mixed, JSON.stringify(withFormats(MIXED)));
      const shown = await runLsc(['inspect', mixed]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /^ {2}wq +\[128, 128\] +per layer +model\.layers\.\{layer\}\.self_attn\.q_proj\.weight {2}\(format q8_0\)$/m);
      // the artifact's graph says the head's format its plan has
      assert.equal((JSON.parse(fs.readFileSync(path.join(dir, 'o3', 'graph.json'), 'utf8')) as Graph).weights.lm_head.format, 'f16');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('tiny-code with mixed formats, quantized while loading', function () {
    this.timeout(600_000);
    let model: LscModel;
    let cpu: CpuLlama;
    let dir: string;
    before(async function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-formats-'));
      const file = path.join(dir, 'mixed.json');
      fs.writeFileSync(file, JSON.stringify(withFormats(MIXED)));
      model = await LscModel.load(modelDir, { gpu: await testGpu(), graph: file });
      cpu = new CpuLlama(config, dequantizedCheckpoint(modelDir, model.plan));
    });
    after(() => {
      model?.dispose();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('logits of the full model and exit 3 match the float64 reference on the dequantized weights (max |Δ| ≤ 0.05, same argmax)', async function () {
      assert.deepEqual([...new Set(model.plan.weights.map((w) => w.gpuDtype))].sort(), ['f16', 'f32', 'q4_0', 'q8_0']);
      for (const prompt of ['def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n', 'for i in range(10):\n']) {
        const ids = model.tokenizer.encode(prompt);
        for (const exitLayer of [undefined, 3]) {
          const [got] = await model.logits(ids, { exitLayer });
          const [want] = cpu.forward(ids, { exitLayer, lastOnly: true });
          const d = maxAbsDiff(got, want);
          assert.ok(d <= 0.05, `${JSON.stringify(prompt.slice(0, 20))} exit ${exitLayer ?? 'none'}: max |Δ| ${d}`);
          assert.equal(argmax(got), argmax(want));
        }
      }
    });

    it('greedy self-speculative output equals autoregressive output for (E, k) in {1, 3, 5, 7} × {1, 4, 8}', async function () {
      const prompt = 'import os\n\nclass Config:\n    def __init__(self, path):\n';
      const ar = await model.complete(prompt, { maxNewTokens: 24, stopAtEos: false, strategy: 'autoregressive' });
      for (const E of [1, 3, 5, 7]) {
        for (const k of [1, 4, 8]) {
          const ss = await model.complete(prompt, { maxNewTokens: 24, stopAtEos: false, strategy: 'self-speculative', exitLayer: E, numSpeculations: k });
          assert.deepEqual(ss.tokens, ar.tokens, `E=${E} k=${k}`);
          assert.ok(ss.stats.draftedTokens > 0);
        }
      }
    });
  });
});
