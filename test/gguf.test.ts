/**
 * GGUF (runtime/gguf.ts, gguf-llama.ts, quant/to-gguf.ts): lsc quantize writes tiny-code as a
 * Llama GGUF; reading it back gives the quantizer's own values in Hugging Face row order (q/k
 * rows un-permuted), `--model file.gguf` decodes exactly like quantizing the safetensors while
 * loading, and corrupt files fail with one clear line.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GgufFile, GgufValueType } from '../runtime/gguf.js';
import { writeGguf, type GgufKv } from '../runtime/gguf-write.js';
import { openGgufModel } from '../runtime/gguf-llama.js';
import { quantizeToGguf } from '../runtime/quant/to-gguf.js';
import { dequantizeRows, quantizeRows } from '../runtime/quant/quantize.js';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import { LscModel } from '../runtime/model.js';
import { LscError } from '../compiler/errors.js';
import { compileGraph } from '../compiler/compile.js';
import { buildLlamaGraph } from '../compiler/builder/llama.js';
import { testGpu } from './helpers/gpu.js';

const modelDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));

describe('GGUF files (lsc quantize, --model file.gguf)', function () {
  let dir: string;
  const file = (f: string): string => path.join(dir, `tiny-code-${f}.gguf`);
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-gguf-'));
    fs.copyFileSync(path.join(modelDir, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    quantizeToGguf(modelDir, file('q8_0'), 'q8_0');
    quantizeToGguf(modelDir, file('q4_0'), 'q4_0');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const f of ['q8_0', 'q4_0'] as const) {
    it(`${f}: llama.cpp's names, types and metadata; rows read back are the quantizer's, q/k in Hugging Face order`, function () {
      const g = GgufFile.open(file(f));
      try {
        assert.equal(g.version, 3);
        assert.equal(g.get('general.architecture'), 'llama');
        assert.equal(g.get('llama.block_count'), 8);
        assert.equal((g.get('tokenizer.ggml.tokens') as string[]).length, 2048);
        assert.equal(g.tensors.get('blk.0.attn_q.weight')!.type, f === 'q8_0' ? 'Q8_0' : 'Q4_0');
        assert.deepEqual(g.tensors.get('blk.0.ffn_down.weight')!.shape, [128, 352]);
        assert.equal(g.tensors.get('token_embd.weight')!.type, 'F16');
        assert.equal(g.tensors.get('output.weight')!.type, 'Q8_0'); // HEAD_FORMAT of both
        assert.equal(g.tensors.get('output_norm.weight')!.type, 'F32');
      } finally {
        g.close();
      }
      const gc = openGgufModel(file(f));
      const st = SafetensorsCheckpoint.open(modelDir);
      try {
        assert.equal(gc.config.num_hidden_layers, 8);
        assert.equal(gc.matrixFormat(), f);
        for (const name of ['model.layers.2.self_attn.q_proj.weight', 'model.layers.2.self_attn.k_proj.weight', 'model.layers.5.mlp.down_proj.weight']) {
          const [rows, cols] = st.get(name)!.shape;
          const want = dequantizeRows(f, quantizeRows(f, st.readAll(name, 'f32') as Float32Array, rows, cols), rows, cols);
          // rows 40..79 cross a head boundary (head_dim 32)
          let got = new Float32Array(0);
          gc.readRows(name, 'f32', 40, 40, (d) => { got = Float32Array.from(d as Float32Array); });
          assert.deepEqual(got, want.subarray(40 * cols, 80 * cols), name);
        }
        let norm = new Float32Array(0);
        gc.readRows('model.layers.1.input_layernorm.weight', 'f32', 0, 128, (d) => { norm = Float32Array.from(d as Float32Array); });
        assert.deepEqual(norm, st.readAll('model.layers.1.input_layernorm.weight', 'f32'));
      } finally {
        gc.close();
        st.close();
      }
    });
  }

  it('lsc quantize --weights q4:head=f16 writes output.weight F16, and the file plans each matrix in its own type', function () {
    const f = path.join(dir, 'tiny-code-q4-head-f16.gguf');
    quantizeToGguf(modelDir, f, { matrices: 'q4_0', head: 'f16' });
    const gc = openGgufModel(f);
    try {
      assert.deepEqual(['output.weight', 'token_embd.weight', 'blk.7.attn_v.weight'].map((n) => gc.gguf.tensors.get(n)!.type), ['F16', 'F16', 'Q4_0']);
      const { plan } = compileGraph(gc.withFileFormats(buildLlamaGraph(gc.config, { name: 'tiny-code' })));
      const byHf = new Map(plan.weights.map((w) => [w.hf, w.gpuDtype]));
      assert.deepEqual([plan.dtypes.weights, byHf.get('lm_head.weight'), byHf.get('model.embed_tokens.weight'), byHf.get('model.layers.7.self_attn.v_proj.weight')],
        ['q4_0', 'f16', 'f16', 'q4_0']);
    } finally {
      gc.close();
    }
  });

  it('a declaration whose layers differ in type (ffn_down Q8_0 in layer 2, Q4_0 elsewhere) plans at the widest, q8_0', function () {
    const a = GgufFile.open(file('q4_0'));
    const b = GgufFile.open(file('q8_0'));
    const f = path.join(dir, 'tiny-code-mixed-layers.gguf');
    try {
      const src = openGgufModel(file('q4_0'));
      const c = src.config;
      src.close();
      const u32 = (key: string, value: number): GgufKv => ({ key, type: GgufValueType.U32, value });
      writeGguf(f, [
        { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' },
        u32('llama.context_length', c.max_position_embeddings), u32('llama.embedding_length', c.hidden_size), u32('llama.block_count', c.num_hidden_layers),
        u32('llama.feed_forward_length', c.intermediate_size), u32('llama.attention.head_count', c.num_attention_heads),
      ], [...a.tensors.values()].map((t) => {
        const src = t.name === 'blk.2.ffn_down.weight' ? b : a;
        const st = src.tensors.get(t.name)!;
        return { name: t.name, type: st.type!, shape: st.shape, data: () => src.readRows(t.name, 0, st.shape.length === 1 ? 1 : st.shape[0]) };
      }));
    } finally {
      a.close();
      b.close();
    }
    const gc = openGgufModel(f);
    try {
      const graph = gc.withFileFormats(buildLlamaGraph(gc.config, { name: 'tiny-code' }));
      assert.deepEqual([graph.dtypes.weights, graph.weights.w_down.format, graph.weights.w_up.format, graph.weights.lm_head.format], ['q4_0', 'q8_0', 'q4_0', 'q8_0']);
      const { plan } = compileGraph(graph);
      assert.deepEqual([0, 2, 7].map((l) => plan.weights.find((w) => w.hf === `model.layers.${l}.mlp.down_proj.weight`)!.gpuDtype), ['q8_0', 'q8_0', 'q8_0']);
    } finally {
      gc.close();
    }
  });

  it('--model file.gguf decodes the tokens of --weights on the safetensors (Q8_0 and Q4_0), greedy self-speculative included', async function () {
    const gpu = await testGpu();
    const prompt = 'def fibonacci(n):\n';
    for (const f of ['q8_0', 'q4_0'] as const) {
      const a = await LscModel.load(modelDir, { gpu, weights: f });
      const b = await LscModel.load(file(f), { gpu });
      try {
        assert.equal(b.plan.dtypes.weights, f);
        assert.deepEqual(b.plan.weights.map((w) => [w.hf, w.gpuDtype]), a.plan.weights.map((w) => [w.hf, w.gpuDtype]), 'each tensor in the file\'s type');
        const ra = await a.complete(prompt, { maxNewTokens: 20, stopAtEos: false, strategy: 'autoregressive' });
        const rb = await b.complete(prompt, { maxNewTokens: 20, stopAtEos: false, strategy: 'autoregressive' });
        const sb = await b.complete(prompt, { maxNewTokens: 20, stopAtEos: false, strategy: 'self-speculative', exitLayer: 3, numSpeculations: 3 });
        assert.deepEqual(rb.tokens, ra.tokens, f);
        assert.deepEqual(sb.tokens, ra.tokens, f);
      } finally {
        a.dispose();
        b.dispose();
      }
    }
  });

  describe('corrupt files: one clear error each', function () {
    let good: Buffer;
    before(() => { good = fs.readFileSync(file('q4_0')); });
    const expectError = (bytes: Buffer, want: RegExp): void => {
      const p = path.join(dir, 'bad.gguf');
      fs.writeFileSync(p, bytes);
      assert.throws(() => GgufFile.open(p).close(), (e: unknown) => e instanceof LscError && want.test(e.message) && !e.message.includes('\n'));
    };
    /** Offset of the first tensor info's type field (the name 'token_embd.weight' or whichever comes first, then dims). */
    const firstTensorType = (b: Buffer): { at: number; name: string } => {
      const g = GgufFile.open(file('q4_0'));
      const first = [...g.tensors.values()][0];
      g.close();
      const nameAt = b.indexOf(Buffer.from(first.name));
      return { at: nameAt + first.name.length + 4 + 8 * first.shape.length, name: first.name };
    };

    it('bad magic, unsupported version', function () {
      const b = Buffer.from(good);
      b.write('GGML', 0);
      expectError(b, /not a GGUF file/);
      const v = Buffer.from(good);
      v.writeUInt32LE(7, 4);
      expectError(v, /GGUF version 7 is not supported/);
    });

    it('counts past the file, a truncated header, tensor data out of range', function () {
      const c = Buffer.from(good);
      c.writeBigUInt64LE(1n << 40n, 8);
      expectError(c, /tensor count \d+ is absurd/);
      expectError(good.subarray(0, 2000), /header ends early/);
      expectError(good.subarray(0, good.length - 64), /runs past the .*-byte file/);
    });

    it('a tensor type lsc does not read is named with the tensor when it is read', function () {
      const b = Buffer.from(good);
      const { at, name } = firstTensorType(b);
      b.writeUInt32LE(12, at); // Q4_K
      const p = path.join(dir, 'qk.gguf');
      fs.writeFileSync(p, b);
      const g = GgufFile.open(p);
      try {
        assert.throws(() => g.tensor(name), new RegExp(`tensor '${name.replace('.', '\\.')}' has type Q4_K, which lsc does not read`));
      } finally {
        g.close();
      }
    });
  });
});
