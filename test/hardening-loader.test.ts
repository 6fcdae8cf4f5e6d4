/**
 * Issue 8 (hardening), the loader's part: model directory files that are not regular files,
 * config.json against the checkpoint (layer count, ignored tensors), NaN / inf weights and the
 * NaN-safe argmax kernel, and the tokenizer against the model's vocabulary. Each case failed
 * before (a hang, a stack trace, wrong tokens with exit 0, or a late error) and must now be an
 * LscError of one line naming file / tensor / pointer, with no GPU buffer left behind.
 *
 * Random checkpoints have the sizes of examples/models/tiny-code, so kernels are the cached ones.
 * FIFO cases run in a child process with a time limit (the CLI, or readsInChild): a blocking
 * open() would otherwise freeze this process (no mocha timeout can fire).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LscError } from '../compiler/errors.js';
import { emitArgmax } from '../codegen/argmax.js';
import type { ArgmaxKernel } from '../compiler/ir/kernel.js';
import { LscModel } from '../runtime/model.js';
import type { GpuContext } from '../runtime/device.js';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import { LscTokenizer } from '../runtime/tokenizer.js';
import { greedyPick } from '../runtime/sampling.js';
import { firstNonFiniteF16, firstNonFiniteF32 } from '../runtime/dtype-convert.js';
import { testGpu } from './helpers/gpu.js';
import { writeSafetensors, type WriteTensor } from './helpers/checkpoint-writer.js';
import { runLsc } from './helpers/run-cli.js';
import { KernelHarness } from './helpers/kernel-harness.js';
import { expectLoadError, liveBuffersAfter } from './helpers/load-errors.js';
import { copyTinyTokenizer, llamaTensorShapes, writeRandomModel, type RandomModel, type RandomModelConfig } from './helpers/random-model.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const TINY = path.join(root, 'examples', 'models', 'tiny-code');
const CONFIG = JSON.parse(fs.readFileSync(path.join(TINY, 'config.json'), 'utf8')) as RandomModelConfig;
const LAYERS = CONFIG.num_hidden_layers;

/** The tensors of a random model, ready to be written again (values are f16-exact). */
function tensorsOf(m: RandomModel, dtype: WriteTensor['dtype'] = 'F16'): WriteTensor[] {
  return llamaTensorShapes(m.config).map(([name, shape]) => ({ name, shape, data: Float32Array.from(m.tensors.get(name)!), dtype }));
}

/** A CLI run that must fail fast: exit 2, one line of lsc's own on stderr; returns that line. */
async function cliError(args: string[]): Promise<string> {
  const t0 = Date.now();
  const r = await runLsc(args, {}, { timeoutMs: 60_000 });
  assert.notEqual(r.code, null, `lsc ${args.join(' ')} was killed after ${Date.now() - t0} ms (it hung)`);
  // Dawn's own "Warning: ..." lines are not lsc's
  const lines = r.stderr.split('\n').filter((l) => l.trim() && !/^Warning:/.test(l) && !/XDG_/.test(l));
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^lsc: error: /);
  assert.doesNotMatch(r.stderr, /^\s+at .*\.js:\d+/m, 'no JavaScript stack trace');
  return lines[0];
}

/**
 * Reads a model directory's files as LscModel.load does before it opens a device (config.json,
 * the checkpoint's headers, the tokenizer files) in a child process with a time limit, without
 * the CLI's start-up cost; returns the LscError's format() line (or 'loaded').
 */
async function readsInChild(dir: string): Promise<string> {
  const dist = (f: string) => JSON.stringify(new URL(`../runtime/${f}`, import.meta.url).href);
  const script = `
    const { readModelConfig } = await import(${dist('model-dir.js')});
    const { SafetensorsCheckpoint } = await import(${dist('safetensors.js')});
    const { LscTokenizer } = await import(${dist('tokenizer.js')});
    const dir = process.argv[1];
    try {
      readModelConfig(dir);
      SafetensorsCheckpoint.open(dir).close();
      LscTokenizer.load(dir);
      console.log('loaded');
    } catch (e) {
      console.log(e.name === 'LscError' ? e.format() : 'CRASH ' + e.stack);
    }`;
  const t0 = Date.now();
  const out = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 30_000, killSignal: 'SIGKILL' });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
  assert.equal(out.code, 0, `reading ${dir} was killed after ${Date.now() - t0} ms (it hung)`);
  const lines = out.stdout.trim().split('\n');
  assert.equal(lines.length, 1, out.stdout);
  return lines[0];
}

describe('hardening: loading model directories (issue 8)', function () {
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
  const editConfig = (dir: string, edit: (c: RandomModelConfig) => void): void => {
    const file = path.join(dir, 'config.json');
    const c = JSON.parse(fs.readFileSync(file, 'utf8')) as RandomModelConfig;
    edit(c);
    fs.writeFileSync(file, JSON.stringify(c, null, 2));
  };
  const rewrite = (dir: string, tensors: WriteTensor[]): void => {
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  };
  const replaceWith = (file: string, make: (f: string) => void): void => {
    fs.rmSync(file);
    make(file);
  };
  const mkfifo = (file: string): void => { execFileSync('mkfifo', [file]); };

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-hardening-'));
    gpu = await testGpu();
    good = writeRandomModel(path.join(tmp, 'good'), CONFIG, { dtype: 'F16', seed: 8080 });
  });
  after(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

  describe('files that are not regular files', () => {
    it('model.safetensors that is a directory: an LscError naming it, not an EISDIR stack trace', async () => {
      const dir = variant('st-dir', (d) => replaceWith(path.join(d, 'model.safetensors'), (f) => fs.mkdirSync(f)));
      await expectLoadError(gpu, dir, {}, {
        message: /^checkpoint file is a directory, not a regular file$/, file: path.join(path.resolve(dir), 'model.safetensors'), hint: /regular file/,
      });
      const line = await cliError(['generate', '--model', dir, '--prompt', 'x']);
      assert.match(line, /checkpoint file is a directory, not a regular file \(at .*model\.safetensors\)/);
    });

    it('model.safetensors that is a symlink to a directory', async () => {
      const target = path.join(tmp, 'a-directory');
      fs.mkdirSync(target, { recursive: true });
      const dir = variant('st-link-dir', (d) => replaceWith(path.join(d, 'model.safetensors'), (f) => fs.symlinkSync(target, f)));
      await expectLoadError(gpu, dir, {}, { message: /^checkpoint file is a symlink to a directory, not a regular file$/ });
    });

    it('config.json and tokenizer.json that are directories', async () => {
      for (const name of ['config.json', 'tokenizer.json']) {
        const dir = variant(`${name}-dir`, (d) => replaceWith(path.join(d, name), (f) => fs.mkdirSync(f)));
        await expectLoadError(gpu, dir, {}, { message: new RegExp(`^${name.replace('.', '\\.')} is a directory, not a regular file$`), file: path.join(dir, name) });
      }
    });

    it('a shard named in model.safetensors.index.json that is a FIFO: exit 2 at once (the load hung)', async () => {
      const dir = path.join(tmp, 'fifo-shard');
      const m = writeRandomModel(dir, CONFIG, { dtype: 'F16', seed: 8080, sharded: 1 << 20 });
      const shard = path.join(dir, m.weightFiles[1]);
      replaceWith(shard, mkfifo);
      const line = await cliError(['generate', '--model', dir, '--prompt', 'x']);
      assert.match(line, new RegExp(`checkpoint file is a FIFO \\(named pipe\\), not a regular file \\(at ${shard}\\)`));
    });

    it('model.safetensors that is a symlink to a FIFO: refused at once (the load hung)', async () => {
      const fifo = path.join(tmp, 'a-fifo');
      mkfifo(fifo);
      const dir = variant('st-link-fifo', (d) => replaceWith(path.join(d, 'model.safetensors'), (f) => fs.symlinkSync(fifo, f)));
      const line = await readsInChild(dir);
      assert.match(line, /^checkpoint file is a symlink to a FIFO \(named pipe\), not a regular file/);
    });

    it('config.json, tokenizer.json, generation_config.json or the index as a FIFO: refused at once (the load hung)', async () => {
      for (const name of ['config.json', 'tokenizer.json', 'generation_config.json', 'model.safetensors.index.json']) {
        const dir = variant(`fifo-${name}`, (d) => {
          const f = path.join(d, name);
          if (fs.existsSync(f)) fs.rmSync(f);
          mkfifo(f);
        });
        const line = await readsInChild(dir);
        assert.match(line, new RegExp(`^${name.replace(/\./g, '\\.')} is a FIFO \\(named pipe\\), not a regular file \\(at ${path.join(dir, name)}\\)`), name);
      }
    });
  });

  describe('config.json against the checkpoint', () => {
    it('num_hidden_layers 1000000 with an 8-layer checkpoint: refused before the graph is built (memory grew without end)', async () => {
      // past the size bound (compiler/ir/bounds.ts): refused while config.json is read
      const dir = variant('million-layers', (d) => editConfig(d, (c) => { c.num_hidden_layers = 1_000_000; }));
      const rss0 = process.memoryUsage().rss;
      const t0 = performance.now();
      await expectLoadError(gpu, dir, {}, {
        message: /^'num_hidden_layers' 1000000 exceeds 1024, the largest lsc supports/, file: path.join(dir, 'config.json'), pointer: '/num_hidden_layers',
      });
      const ms = performance.now() - t0;
      const grew = process.memoryUsage().rss - rss0;
      assert.ok(ms < 5000, `took ${ms.toFixed(0)} ms`);
      assert.ok(grew < 200 * 2 ** 20, `RSS grew by ${(grew / 2 ** 20).toFixed(0)} MiB`);
      const line = await cliError(['generate', '--model', dir, '--prompt', 'x']);
      assert.match(line, /num_hidden_layers.* 1000000 exceeds 1024/);
      // within the bound, the checkpoint says what is wrong, before anything is built
      const many = variant('thousand-layers', (d) => editConfig(d, (c) => { c.num_hidden_layers = 1000; }));
      await expectLoadError(gpu, many, {}, {
        message: new RegExp(`^config\\.json says 1000 layers \\(num_hidden_layers\\) but the checkpoint in .* has tensors for layers 0\\.\\.${LAYERS - 1}$`),
        file: path.join(many, 'config.json'), pointer: '/num_hidden_layers', hint: new RegExp(`set num_hidden_layers to ${LAYERS}`),
      });
    });

    it('hidden_size or vocab_size that disagree with the embedding are refused before the graph is built (hidden_size 1048576 was an internal error)', async () => {
      const huge = variant('huge-hidden', (d) => editConfig(d, (c) => { c.hidden_size = 1 << 20; c.intermediate_size = 1 << 22; }));
      await expectLoadError(gpu, huge, {}, { message: /^'hidden_size' 1048576 exceeds 65536, the largest lsc supports/, pointer: '/hidden_size' });
      const wide = variant('wide-hidden', (d) => editConfig(d, (c) => { c.hidden_size = 4096; c.intermediate_size = 11008; c.num_attention_heads = 32; c.num_key_value_heads = 32; c.head_dim = 128; }));
      await expectLoadError(gpu, wide, {}, {
        message: new RegExp(`^config\\.json says hidden_size 4096 but the checkpoint's model\\.embed_tokens\\.weight has shape \\[${CONFIG.vocab_size}, ${CONFIG.hidden_size}\\]$`),
        file: path.join(wide, 'config.json'), pointer: '/hidden_size', hint: new RegExp(`set hidden_size to ${CONFIG.hidden_size}`),
      });
      // checked before the tokenizer, which would blame itself for the config's mistake
      const vocab = variant('big-vocab', (d) => editConfig(d, (c) => { c.vocab_size = 32000; }));
      await expectLoadError(gpu, vocab, {}, { message: /^config\.json says vocab_size 32000 but the checkpoint's model\.embed_tokens\.weight has shape/, pointer: '/vocab_size' });
    });

    it('a checkpoint with more layers than num_hidden_layers names the layers it would ignore (they were ignored)', async () => {
      const dir = variant('extra-layers', (d) => editConfig(d, (c) => { c.num_hidden_layers = LAYERS - 2; }));
      await expectLoadError(gpu, dir, {}, {
        message: new RegExp(`says ${LAYERS - 2} layers .* has tensors for layers 0\\.\\.${LAYERS - 1}: the tensors of layers ${LAYERS - 2}\\.\\.${LAYERS - 1} would be ignored$`),
        pointer: '/num_hidden_layers',
      });
    });

    it('lm_head.weight while tie_word_embeddings is true is refused, naming it (it was ignored)', async () => {
      const dir = variant('tied-with-head', (d) => editConfig(d, (c) => { c.tie_word_embeddings = true; }));
      await expectLoadError(gpu, dir, {}, {
        message: /^the checkpoint holds 1 tensor the model would ignore \(lm_head\.weight\): the LM head is tied to model\.embed_tokens\.weight/,
        tensor: 'lm_head.weight', file: path.join(path.resolve(dir), 'model.safetensors'), hint: /tie_word_embeddings to false/,
      });
    });

    it('a tensor no weight of the model uses (a q_proj bias) is refused', async () => {
      const bias = 'model.layers.3.self_attn.q_proj.bias';
      const dir = variant('stray-bias', (d) => rewrite(d, [...tensorsOf(good), { name: bias, shape: [CONFIG.hidden_size], data: new Float32Array(CONFIG.hidden_size), dtype: 'F16' }]));
      await expectLoadError(gpu, dir, {}, { message: new RegExp(`would ignore \\(${bias.replace(/\./g, '\\.')}\\)$`), tensor: bias });
    });

    it('rotary_emb.inv_freq tensors (a harmless known extra) still load', async () => {
      const half = CONFIG.hidden_size / CONFIG.num_attention_heads / 2;
      const extras: WriteTensor[] = Array.from({ length: LAYERS }, (_, l) => ({
        name: `model.layers.${l}.self_attn.rotary_emb.inv_freq`, shape: [half], dtype: 'F32' as const,
        data: Float32Array.from({ length: half }, (_, i) => 10000 ** (-i / half)),
      }));
      const dir = variant('inv-freq', (d) => rewrite(d, [...tensorsOf(good), ...extras]));
      const model = await LscModel.load(dir, { gpu });
      try {
        const [logits] = await model.logits([1, 2, 3]);
        assert.equal(logits.length, CONFIG.vocab_size);
      } finally {
        model.dispose();
      }
    });
  });

  describe('NaN and inf weights', () => {
    it('one NaN in an lm_head row (F16) is refused with the tensor, flat index, row and col (it changed the greedy tokens)', async () => {
      const [row, col] = [1, 2];
      const dir = variant('nan-head', (d) => rewrite(d, tensorsOf(good).map((t) => {
        if (t.name === 'lm_head.weight') t.data[row * CONFIG.hidden_size + col] = Number.NaN;
        return t;
      })));
      const flat = row * CONFIG.hidden_size + col;
      await expectLoadError(gpu, dir, {}, {
        message: new RegExp(`^tensor holds NaN at flat index ${flat} \\(row ${row}, col ${col}\\)$`), tensor: 'lm_head.weight', hint: /non-finite/,
      });
    });

    it('all-NaN weights: lsc generate exits 2 (it printed token 0 forever with exit 0)', async () => {
      const dir = variant('all-nan', (d) => rewrite(d, tensorsOf(good).map((t) => ({ ...t, data: new Float32Array(t.data.length).fill(Number.NaN) }))));
      const line = await cliError(['generate', '--model', dir, '--prompt', 'x', '--max-new-tokens', '4']);
      assert.match(line, /tensor holds NaN at flat index 0 \(row 0, col 0\) \(at .*model\.safetensors tensor 'model\.embed_tokens\.weight'\)/);
    });

    it('inf in BF16 and F32 tensors, and F32 values beyond the f16 range, are named for both targets', () => {
      const shape = [6, 40];
      const n = 240;
      const cases: { dtype: WriteTensor['dtype']; at: number; value: number; want: RegExp; targets: ('f16' | 'f32')[] }[] = [
        { dtype: 'BF16', at: 203, value: Infinity, want: /^tensor holds Infinity at flat index 203 \(row 5, col 3\)$/, targets: ['f16', 'f32'] },
        { dtype: 'F32', at: 39, value: -Infinity, want: /^tensor holds -Infinity at flat index 39 \(row 0, col 39\)$/, targets: ['f16', 'f32'] },
        { dtype: 'F32', at: 117, value: Number.NaN, want: /^tensor holds NaN at flat index 117 \(row 2, col 37\)$/, targets: ['f16', 'f32'] },
        { dtype: 'F16', at: 0, value: -Infinity, want: /^tensor holds -Infinity at flat index 0 \(row 0, col 0\)$/, targets: ['f16', 'f32'] },
        // finite on disk, inf once converted to the f16 the GPU holds
        { dtype: 'F32', at: 80, value: 70000, want: /^tensor holds 70000 at flat index 80 \(row 2, col 0\), beyond the range of f16/, targets: ['f16'] },
      ];
      cases.forEach((c, i) => {
        const dir = path.join(tmp, `nonfinite-${i}`);
        fs.mkdirSync(dir);
        const data = Float32Array.from({ length: n }, (_, j) => Math.sin(j));
        data[c.at] = c.value;
        writeSafetensors(path.join(dir, 'model.safetensors'), [{ name: 'w', shape, data, dtype: c.dtype }]);
        const ck = SafetensorsCheckpoint.open(dir);
        try {
          for (const target of c.targets) {
            // rows 2.. only: the flat index counts from the tensor's start, not the read's
            const rowStart = c.at >= 80 ? 2 : 0;
            assert.throws(() => ck.readRows('w', target, rowStart, 6 - rowStart, () => undefined), (e: unknown) => {
              assert.ok(e instanceof LscError, String(e));
              assert.match(e.message, c.want, `${c.dtype} -> ${target}`);
              assert.equal(e.where.tensor, 'w');
              return true;
            });
          }
          // the same value within f32 range reads fine as f32
          if (c.value === 70000) assert.equal(ck.readAll('w', 'f32')[c.at], 70000);
        } finally {
          ck.close();
        }
      });
    });
  });

  describe('the non-finite scans (runtime/dtype-convert.ts)', () => {
    it('firstNonFiniteF16 finds the first inf / NaN pattern at block edges, in odd lengths and unaligned views', () => {
      const first = (b: Uint16Array): number => b.findIndex((h) => (h & 0x7c00) === 0x7c00);
      const buf = new ArrayBuffer(2 * 2060);
      const check = (b: Uint16Array, pos: number, h: number, what: string): void => {
        b.fill(0x3c00);
        b[pos] = h;
        if (pos + 7 < b.length) b[pos + 7] = 0x7c00; // a later one must not win
        assert.equal(firstNonFiniteF16(b), first(b), `pattern 0x${h.toString(16)} at ${pos} of ${b.length} (${what})`);
      };
      // every pattern (±inf, all NaNs, finite ones in steps) at a block edge
      const all = new Uint16Array(buf, 0, 2051);
      for (let h = 0; h < 65536; h += (h & 0x7c00) === 0x7c00 ? 1 : 13) check(all, 2048, h, 'all patterns');
      // a few patterns at every interesting place: block edges, odd lengths, unaligned views
      for (const [byteOffset, length] of [[0, 2051], [2, 2050], [0, 2048], [0, 2060], [6, 1]]) {
        const b = new Uint16Array(buf, byteOffset, length);
        for (const pos of [0, 1, 1023, 1024, 2047, 2048, 2049, length - 1].filter((p) => p < length)) {
          for (const h of [0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xffff, 0x7bff]) check(b, pos, h, `byte offset ${byteOffset}`);
        }
        b.fill(0xfbff); // -65504: finite everywhere
        assert.equal(firstNonFiniteF16(b), -1);
      }
      assert.equal(firstNonFiniteF16(new Uint16Array(0)), -1);
      const f = new Float32Array([1, -0, 3.4e38, Number.NaN, Infinity]);
      assert.equal(firstNonFiniteF32(f), 3);
      assert.equal(firstNonFiniteF32(f.subarray(0, 3)), -1);
      assert.equal(firstNonFiniteF32(f.subarray(4)), 0);
    });
  });

  describe('argmax with NaN logits (codegen/argmax.ts): NaN above every number, first index wins', () => {
    let h: KernelHarness;
    before(async () => { h = await KernelHarness.create(); });
    afterEach(() => { h?.release(); });

    const NAN_NEG = new Float32Array(new Uint32Array([0xffc00001]).buffer)[0]; // a negative NaN with a payload

    for (const [n, threads] of [[2048, 256], [2048, 8], [1000, 256]] as const) {
      it(`vocab ${n}, ${threads} threads: NaN at lane and workgroup boundaries`, async () => {
        // each row: base values, then NaNs (and other values) placed, and the index that must win
        const rows: { why: string; set: [number, number][]; want: number }[] = [
          { why: 'NaN at index 0', set: [[0, NaN], [5, 100]], want: 0 },
          { why: 'NaN at the last index, a larger number before it', set: [[n - 1, NaN], [3, 1e30]], want: n - 1 },
          { why: 'NaN at the last lane of the first stride', set: [[threads - 1, NaN], [threads, 50]], want: threads - 1 },
          { why: 'NaN at the first index of the second stride (thread 0 again)', set: [[threads, NaN], [1, 50]], want: threads },
          { why: 'two NaNs on different threads: the lower index', set: [[threads + 3, NaN], [threads - 2, NaN]], want: threads - 2 },
          { why: 'two NaNs on one thread: the lower index', set: [[2 * threads + 1, NaN], [threads + 1, NaN]], want: threads + 1 },
          { why: 'NaN beats +Infinity', set: [[7, Infinity], [9, NaN]], want: 9 },
          { why: 'a negative NaN with a payload also wins', set: [[11, NAN_NEG], [12, 1e38]], want: 11 },
          { why: 'all NaN: index 0', set: Array.from({ length: n }, (_, i) => [i, NaN] as [number, number]), want: 0 },
          { why: '-0 and +0 are equal maxima: the lower index', set: [...Array.from({ length: n }, (_, i) => [i, -1] as [number, number]), [40, 0], [30, -0]], want: 30 },
          { why: 'no NaN: the largest, as before', set: [[17, 9], [n - 2, 8]], want: 17 },
        ];
        const logits = new Float32Array(rows.length * n);
        rows.forEach((r, row) => {
          for (let i = 0; i < n; i++) logits[row * n + i] = Math.sin(row * 7 + i); // |v| <= 1
          for (const [i, v] of r.set) logits[row * n + i] = v;
        });
        const src = emitArgmax({ family: 'argmax', nodes: ['argmax'], x: 'logits', out: 'tokens', n } as ArgmaxKernel, { threads });
        const tokens = h.buffer(new Uint32Array(rows.length).fill(0xdeadbeef), 'tokens');
        const [bytes] = await h.run([{ src, buffers: { logits: h.buffer(logits, 'logits'), tokens }, params: [0, 0, 0, 0], range: { rowStart: 0, rowCount: rows.length, posBase: 0 } }], [{ buffer: tokens }]);
        const got = new Uint32Array(bytes, 0, rows.length);
        rows.forEach((r, row) => {
          assert.equal(got[row], r.want, `GPU: ${r.why}`);
          // the CPU greedy pick (runtime/sampling.ts) follows the same order
          assert.equal(greedyPick(logits.subarray(row * n, (row + 1) * n)), r.want, `CPU: ${r.why}`);
        });
      });
    }
  });

  describe('the tokenizer against the model vocabulary', () => {
    /** A model directory whose tokenizer has `ids` ids (tiny-code's, resized) and config vocab_size `vocab`. */
    const withTokenizer = (name: string, ids: number, edit: (c: RandomModelConfig) => void = () => undefined): string => variant(name, (d) => {
      copyTinyTokenizer(d, ids);
      editConfig(d, edit);
    });

    it('a tokenizer with an added token beyond vocab_size is refused at load (it was caught only once a prompt held the token)', async () => {
      const dir = variant('tok-bigger', (d) => {
        const file = path.join(d, 'tokenizer.json');
        const tj = JSON.parse(fs.readFileSync(file, 'utf8')) as { added_tokens: object[] };
        tj.added_tokens.push({ id: 2100, content: '<extra>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
        fs.writeFileSync(file, JSON.stringify(tj));
      });
      await expectLoadError(gpu, dir, {}, {
        message: /^tokenizer\.json has ids up to 2100 \(vocabulary and added tokens\) but config\.json's vocab_size is 2048: the model has no embedding row for ids 2048\.\.2100/,
        file: path.join(dir, 'tokenizer.json'), hint: /tokenizer\.json published with the checkpoint/,
      });
      const line = await cliError(['generate', '--model', dir, '--prompt', 'x']);
      assert.match(line, /tokenizer\.json has ids up to 2100/);
    });

    it('a tokenizer smaller than vocab_size beyond padding is refused (generated ids beyond it were dropped from the text)', async () => {
      const dir = withTokenizer('tok-smaller', 1024);
      await expectLoadError(gpu, dir, {}, {
        message: /^tokenizer\.json has 1024 ids but config\.json's vocab_size is 2048: ids 1024\.\.2047 the model can generate would have no text \(.*multiple of 128, here 1024\)$/,
      });
    });

    it('padding rule: vocab_size may exceed the tokenizer up to the next multiple of 128', () => {
      const dir = path.join(tmp, 'tok-2000');
      fs.mkdirSync(dir);
      copyTinyTokenizer(dir, 2000);
      const tok = LscTokenizer.load(dir);
      assert.equal(tok.vocabSize, 2000);
      for (const vocab of [2000, 2047, 2048]) tok.checkVocab(vocab);
      for (const [vocab, msg] of [[2049, /has 2000 ids but config\.json's vocab_size is 2049: ids 2000\.\.2048/], [1999, /ids up to 1999 .* vocab_size is 1999/]] as const) {
        assert.throws(() => tok.checkVocab(vocab), (e: unknown) => e instanceof LscError && msg.test(e.message) && !e.format().includes('\n'));
      }
    });

    it('an EOS id from config.json outside the vocabulary is refused', async () => {
      const dir = variant('eos-outside', (d) => editConfig(d, (c) => { c.eos_token_id = [2, 5000]; }));
      await expectLoadError(gpu, dir, {}, { message: /^the EOS token id 5000 \(from the tokenizer or config files\) is outside the model's vocabulary 0\.\.2047$/ });
    });
  });

  describe('afterwards', () => {
    it('a good model still loads, with nothing left allocated after dispose', async () => {
      const leaked = await liveBuffersAfter(gpu, async () => {
        const model = await LscModel.load(good.dir, { gpu });
        try {
          const [logits] = await model.logits([1, 2, 3, 4]);
          assert.ok(logits.every(Number.isFinite));
        } finally {
          model.dispose();
        }
      });
      assert.deepEqual(leaked, []);
    });
  });
});
