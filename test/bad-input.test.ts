/**
 * Bad inputs at the model level: broken checkpoints and graph files given to LscModel.load, and
 * bad requests to a loaded model. Each must be an LscError that names what is wrong and where
 * (tensor, file, JSON pointer), leave nothing allocated on the GPU, and leave the runtime usable.
 * CLI-level bad inputs are in cli.test.ts and safetensors file corruption in safetensors.test.ts.
 *
 * The random checkpoints have the sizes of examples/models/tiny-code, so their kernels are the
 * ones the other model tests compile (lavapipe caches compiled shaders on disk; a new shape costs
 * ~30 s of LLVM the first time it runs). Only one test runs the GPU at all.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseLlamaConfig } from '../compiler/builder/hf-config.js';
import { buildLlamaGraph } from '../compiler/builder/llama.js';
import type { Graph } from '../compiler/ir/graph.js';
import { loadTuning } from '../runtime/tuning-db.js';
import { f32ToF16Bits } from '../runtime/dtype-convert.js';
import { LscModel } from '../runtime/model.js';
import { KernelCompileError } from '../runtime/executor.js';
import type { GpuContext } from '../runtime/device.js';
import { testGpu } from './helpers/gpu.js';
import { writeRawSafetensors, writeSafetensors, type WriteTensor } from './helpers/checkpoint-writer.js';
import { runLsc } from './helpers/run-cli.js';
import { checkError, expectLoadError, liveBuffersAfter, type Where } from './helpers/load-errors.js';
import { llamaTensorShapes, writeRandomModel, type RandomModel, type RandomModelConfig } from './helpers/random-model.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const TINY = path.join(root, 'examples', 'models', 'tiny-code');
const CONFIG = JSON.parse(fs.readFileSync(path.join(TINY, 'config.json'), 'utf8')) as RandomModelConfig;
const VOCAB = CONFIG.vocab_size;
const LAYERS = CONFIG.num_hidden_layers;

/** Asserts that a promise rejects with an LscError matching `want`. */
async function expectRejects(p: Promise<unknown>, want: Where): Promise<void> {
  let error: unknown;
  try {
    await p;
  } catch (e) {
    error = e;
  }
  assert.ok(error !== undefined, `expected ${want.message}, but it succeeded`);
  checkError(error, want);
}

/** The tensors of a random model, ready to be written again (values are f16-exact). */
function tensorsOf(m: RandomModel): WriteTensor[] {
  return llamaTensorShapes(m.config).map(([name, shape]) => ({ name, shape, data: Float32Array.from(m.tensors.get(name)!), dtype: 'F16' as const }));
}

/** Files under `dir` this process has open (Linux /proc). */
function openFilesUnder(dir: string): string[] {
  const fdDir = '/proc/self/fd';
  return fs.readdirSync(fdDir).flatMap((fd) => {
    try {
      const target = fs.readlinkSync(path.join(fdDir, fd));
      return target.startsWith(dir + path.sep) ? [target] : [];
    } catch {
      return []; // closed while listing
    }
  });
}

describe('bad model inputs and requests', function () {
  this.timeout(180_000);
  let tmp: string;
  let gpu: GpuContext;
  let good: RandomModel;
  /** A copy of the good model with `edit` applied to the copy. */
  const variant = (name: string, edit: (dir: string) => void): string => {
    const dir = path.join(tmp, name);
    fs.cpSync(good.dir, dir, { recursive: true });
    edit(dir);
    return dir;
  };
  const rewrite = (dir: string, edit: (ts: WriteTensor[]) => WriteTensor[]): void => {
    writeSafetensors(path.join(dir, 'model.safetensors'), edit(tensorsOf(good)), { format: 'pt' });
  };

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-bad-input-'));
    gpu = await testGpu();
    good = writeRandomModel(path.join(tmp, 'good'), CONFIG, { dtype: 'F16', seed: 4242 });
  });
  after(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

  describe('LscModel.load', () => {
    it('a tensor missing from the checkpoint', async () => {
      const name = 'model.layers.1.self_attn.k_proj.weight';
      const dir = variant('missing', (d) => rewrite(d, (ts) => ts.filter((t) => t.name !== name)));
      await expectLoadError(gpu, dir, {}, {
        message: /tensor 'model\.layers\.1\.self_attn\.k_proj\.weight' is missing from the checkpoint/,
        tensor: name, file: path.resolve(dir), hint: /config\.json/,
      });
    });

    it('a misnamed tensor', async () => {
      const name = 'model.layers.0.mlp.up_proj.weight';
      const dir = variant('misnamed', (d) => rewrite(d, (ts) => ts.map((t) => (t.name === name ? { ...t, name: 'model.layers.0.mlp.up.weight' } : t))));
      await expectLoadError(gpu, dir, {}, {
        message: /tensor 'model\.layers\.0\.mlp\.up_proj\.weight' is missing from the checkpoint/, tensor: name, file: path.resolve(dir),
      });
    });

    it('a tensor of the wrong shape (written transposed)', async () => {
      const name = 'model.layers.0.mlp.gate_proj.weight';
      const [rows, cols] = [CONFIG.intermediate_size, CONFIG.hidden_size];
      const dir = variant('transposed', (d) => rewrite(d, (ts) => ts.map((t) => {
        if (t.name !== name) return t;
        const data = new Float32Array(t.data.length);
        for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[c * rows + r] = t.data[r * cols + c];
        return { ...t, shape: [cols, rows], data };
      })));
      await expectLoadError(gpu, dir, {}, {
        message: new RegExp(`tensor '${name.replace(/\./g, '\\.')}' has shape \\[${cols}, ${rows}\\], the graph expects \\[${rows}, ${cols}\\]`),
        tensor: name, file: path.join(path.resolve(dir), 'model.safetensors'),
      });
    });

    it('a tensor of an unsupported dtype (I8)', async () => {
      const name = 'model.norm.weight';
      const dir = variant('int8', (d) => {
        const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
        const parts: Uint8Array[] = [];
        let offset = 0;
        for (const t of tensorsOf(good)) {
          const bytes = t.name === name
            ? Int8Array.from(t.data, (v) => Math.round(v * 100))
            : f32ToF16Bits(t.data);
          const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
          header[t.name] = { dtype: t.name === name ? 'I8' : 'F16', shape: t.shape, data_offsets: [offset, offset + u8.length] };
          parts.push(u8);
          offset += u8.length;
        }
        writeRawSafetensors(path.join(d, 'model.safetensors'), header, Buffer.concat(parts));
      });
      await expectLoadError(gpu, dir, {}, {
        message: /unsupported dtype "I8"/, tensor: name, file: path.join(path.resolve(dir), 'model.safetensors'), hint: /F16, BF16 or F32/,
      });
    });

    it('a shard listed in the index but missing', async () => {
      const dir = path.join(tmp, 'sharded');
      const m = writeRandomModel(dir, CONFIG, { dtype: 'F16', seed: 4242, sharded: 1 << 20 });
      assert.ok(m.weightFiles.length >= 3, `${m.weightFiles.length} shards`);
      const gone = m.weightFiles[1];
      fs.rmSync(path.join(dir, gone));
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
      const first = Object.entries(index.weight_map).find(([, f]) => f === gone)![0];
      await expectLoadError(gpu, dir, {}, {
        message: new RegExp(`shard ${gone.replace(/\./g, '\\.')} listed in the index is missing`),
        file: path.join(path.resolve(dir), gone), tensor: first, hint: /shard/,
      });
    });

    it('a --graph file that disagrees with config.json (built for another hidden size)', async () => {
      const wide = buildLlamaGraph(parseLlamaConfig({ ...CONFIG, hidden_size: 2 * CONFIG.hidden_size }), { name: 'wide' });
      const file = path.join(tmp, 'wide.json');
      fs.writeFileSync(file, JSON.stringify(wide, null, 2));
      await expectLoadError(gpu, good.dir, { graph: file }, {
        message: new RegExp(`graph dim 'd' is ${2 * CONFIG.hidden_size} but config\\.json says ${CONFIG.hidden_size}`),
        file, pointer: '/dims/d', hint: /omit --graph/,
      });
    });

    it('a --graph file with an invalid graph points into that file', async () => {
      const g = JSON.parse(fs.readFileSync(path.join(root, 'graphs', 'tiny-code.json'), 'utf8')) as Graph;
      const q = g.blocks.decoder.nodes.findIndex((n) => n.id === 'q');
      g.blocks.decoder.nodes[q].in[1] = '@wqq';
      const file = path.join(tmp, 'typo.json');
      fs.writeFileSync(file, JSON.stringify(g));
      await expectLoadError(gpu, good.dir, { graph: file }, {
        message: /unknown weight '@wqq'/, file, pointer: `/blocks/decoder/nodes/${q}/in/1`,
      });
    });

    it('a good model loads and runs after all that', async () => {
      const model = await LscModel.load(good.dir, { gpu, graph: path.join(root, 'graphs', 'tiny-code.json') });
      try {
        const [logits] = await model.logits([1, 2, 3, 4]);
        assert.equal(logits.length, VOCAB);
        assert.ok(logits.every(Number.isFinite));
      } finally {
        model.dispose();
      }
    });

    it('a kernel the device cannot compile (argmax workgroup of 4096 threads)', async () => {
      // an artifact's kernels can no longer be corrupted (readArtifact recompiles and compares
      // them: test/hardening-artifact.test.ts), so a tuning choice no adapter accepts stands in
      // for a kernel that fails in Executor.create; the other kernels keep the cached tuned shapes
      const tuned = loadTuning(gpu);
      const tuningOverride = { ...tuned, argmax: () => ({ threads: 4096 }) };
      let error: unknown;
      const leaked = await liveBuffersAfter(gpu, async () => {
        await LscModel.load(good.dir, { gpu, tuningOverride }).then((m) => m.dispose(), (e) => { error = e; });
      });
      assert.ok(error, 'the load failed');
      // runtime/model.ts LscModel.load: when Executor.create throws, neither the uploaded weight
      // buffers nor the executor's own buffers are destroyed (the device is shared, so they stay)
      assert.deepEqual(leaked, [], `GPU buffers left allocated by the failed load (error: ${(error as Error).message.split('\n')[0]})`);
      assert.ok(error instanceof KernelCompileError, `a KernelCompileError, got ${(error as Error).stack}`);
      assert.match(error.message, /kernel argmax_\w+ failed to compile/);
    });

    it('dispose() destroys every GPU buffer the model created', async () => {
      const leaked = await liveBuffersAfter(gpu, async () => { (await LscModel.load(good.dir, { gpu })).dispose(); });
      // runtime/bind-groups.ts: the Params uniform buffers must come from Executor.ownBuffer, or
      // Executor.destroy() never sees them
      assert.deepEqual(leaked, [], 'buffers still alive after dispose()');
    });

    it('a failed load leaves no file open', async () => {
      // LscModel.load opens the checkpoint (one fd per file) before compiling and checking it
      const dir = variant('missing-for-fds', (d) => rewrite(d, (ts) => ts.filter((t) => t.name !== 'model.norm.weight')));
      for (let i = 0; i < 3; i++) await LscModel.load(dir, { gpu }).then((m) => m.dispose(), () => undefined);
      assert.deepEqual(openFilesUnder(path.resolve(dir)), [],
        'files left open by 3 failed loads (runtime/model.ts LscModel.load: the SafetensorsCheckpoint is not closed when a later step throws)');
    });
  });

  describe('requests to a loaded model', () => {
    let model: LscModel;
    let smallCtx: LscModel;
    before(async () => {
      // a graph compiled with exits 2 and 4 only (the built graph would compile every layer)
      const g = JSON.parse(fs.readFileSync(path.join(root, 'graphs', 'tiny-code.json'), 'utf8')) as Graph;
      g.exit.candidates = [2, 4];
      g.defaults.exitLayer = 2;
      const file = path.join(tmp, 'exits-2-4.json');
      fs.writeFileSync(file, JSON.stringify(g));
      model = await LscModel.load(good.dir, { gpu, graph: file });
      smallCtx = await LscModel.load(good.dir, { gpu, ctx: 32 });
    });
    after(() => {
      model?.dispose();
      smallCtx?.dispose();
    });

    it('a prompt longer than the context', async () => {
      const prompt = 'def add(a, b):\n    return a + b\n\n'.repeat(8);
      const n = smallCtx.tokenizer.encode(prompt).length;
      assert.ok(n > 32, `prompt has ${n} tokens`);
      await expectRejects(smallCtx.complete(prompt, { maxNewTokens: 4 }), {
        message: new RegExp(`prompt: ${n} tokens do not fit the context of 32 positions`), hint: /--ctx/,
      });
      // ctx tokens fit (they yield one token: test/requests.test.ts); one more does not
      await expectRejects(smallCtx.complete(Array(33).fill(5)), { message: /33 tokens do not fit the context of 32/ });
      await expectRejects(smallCtx.logits(Array(40).fill(5)), { message: /tokens: 40 tokens do not fit the context of 32/ });
    });

    it('an exit layer that is not compiled into the plan', async () => {
      assert.deepEqual(model.exitCandidates, [2, 4]);
      await expectRejects(model.complete('x', { strategy: 'self-speculative', exitLayer: 3 }), {
        message: /exit layer 3 is not compiled into this model's plan \(candidates: 2, 4\)/, hint: /exit\.candidates/,
      });
      await expectRejects(model.complete('x', { strategy: 'early-exit', exitLayer: 3 }), { message: /exit layer 3 is not compiled/ });
      await expectRejects(model.logits([1, 2, 3], { exitLayer: 3 }), { message: /exit layer 3 is not compiled/ });
      // the last layer is the full model, not an exit
      await expectRejects(model.complete('x', { strategy: 'self-speculative', exitLayer: LAYERS }), {
        message: new RegExp(`exit layer must be in 1\\.\\.${LAYERS - 1}, got ${LAYERS}`),
      });
      await expectRejects(model.complete('x', { strategy: 'self-speculative', exitLayer: 0 }), { message: /exit layer must be in 1\.\./ });
      await expectRejects(model.complete('x', { strategy: 'self-speculative', exitLayer: 2, numSpeculations: model.plan.rows.kMax + 1 }), {
        message: new RegExp(`number of speculations must be in 1\\.\\.${model.plan.rows.kMax}, got ${model.plan.rows.kMax + 1}`),
      });
    });

    it('a token id outside the vocabulary', async () => {
      await expectRejects(model.logits([1, 2, VOCAB]), { message: new RegExp(`tokens: token id ${VOCAB} is outside the vocabulary 0\\.\\.${VOCAB - 1}`) });
      await expectRejects(model.logits([1, -1]), { message: /token id -1 is outside the vocabulary/ });
      await expectRejects(model.logits([1, 2.5]), { message: /token id 2\.5 is outside the vocabulary/ });
      await expectRejects(model.logits([]), { message: /tokens: no tokens/ });
      await expectRejects(model.complete([1, VOCAB + 7]), { message: new RegExp(`prompt: token id ${VOCAB + 7} is outside`) });
    });

    it('invalid sampling options', async () => {
      const cases: [object, RegExp][] = [
        [{ temperature: -1 }, /temperature must be ≥ 0, got -1/],
        [{ temperature: Number.NaN }, /temperature must be ≥ 0, got NaN/],
        [{ temperature: Number.POSITIVE_INFINITY }, /temperature must be ≥ 0, got Infinity/],
        [{ temperature: 1, topP: 0 }, /top-p must be in \(0, 1\], got 0/],
        [{ temperature: 1, topP: 1.5 }, /top-p must be in \(0, 1\], got 1\.5/],
        [{ temperature: 1, topK: -1 }, /top-k must be a non-negative integer, got -1/],
        [{ temperature: 1, topK: 2.5 }, /top-k must be a non-negative integer, got 2\.5/],
        [{ maxNewTokens: 0 }, /max new tokens must be a positive integer, got 0/],
        [{ strategy: 'beam' }, /unknown strategy 'beam'/],
      ];
      for (const [opts, message] of cases) {
        await expectRejects(model.complete('x', opts), { message });
        // the streaming interface reports the same error
        await expectRejects((async () => { for await (const _ of model.generate('x', opts)) { /* drain */ } })(), { message });
      }
    });
  });

  describe('no WebGPU adapter', function () {
    // Vulkan loader settings that hide every driver from Dawn (checked on this machine: with
    // them, scripts/probe-adapter.mjs finds no adapter)
    const NO_DRIVER = { VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json', VK_LOADER_DRIVERS_DISABLE: '*' };
    const run = (...args: string[]) => runLsc(args, NO_DRIVER);
    /** Dawn's and the Vulkan loader's own stderr: "Warning: ..." lines, native source locations, XDG notes. */
    const noise = (l: string): boolean => !l.trim() || /^Warning:/.test(l) || /^\s+at \S+ \(.*\.(cpp|cc|h|mm):\d+\)$/.test(l) || /XDG_/.test(l);

    it('generate exits 2 with one line that says how to fix it', async () => {
      const r = await run('generate', '--model', path.relative(root, TINY), '--prompt', 'x');
      const lines = r.stderr.split('\n').filter((l) => !noise(l));
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
      assert.equal(lines.length, 1, `one line of lsc's own on stderr, got:\n${r.stderr}`);
      assert.match(lines[0], /^lsc: error: no WebGPU adapter/);
      assert.match(lines[0], /scripts\/setup\.sh/);
      assert.doesNotMatch(r.stderr, /^\s+at .*\.js:\d+/m, 'no JavaScript stack trace');
      assert.equal(r.stdout, '');
    });

    it('compile needs no GPU', async () => {
      const out = path.join(tmp, 'llama2-7b-artifact');
      const r = await run('compile', path.join('graphs', 'llama2-7b.json'), '-o', out);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(fs.existsSync(path.join(out, 'plan.json')));
      assert.ok(fs.readdirSync(path.join(out, 'kernels')).some((f) => f.endsWith('.wgsl')));
    });
  });
});
