/**
 * The tokenizer rebuilt from a GGUF file's tokenizer.ggml.* metadata (runtime/gguf-tokenizer.ts)
 * against the Hugging Face tokenizer.json it was written from (lsc quantize): the same merges,
 * ids and text for tiny-code (SentencePiece BPE) whether the scores come from tokenizer.model or
 * from the merge ranks, and a .gguf with nothing beside it generates what the model directory does.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GgufFile } from '../runtime/gguf.js';
import { ggufTokenizer, ggufTokenizerSpec } from '../runtime/gguf-tokenizer.js';
import { quantizeToGguf } from '../runtime/quant/to-gguf.js';
import { readSentencePieceModel } from '../runtime/sentencepiece-model.js';
import { LscTokenizer } from '../runtime/tokenizer.js';
import { LscModel } from '../runtime/model.js';
import { LscError } from '../compiler/errors.js';
import { testGpu } from './helpers/gpu.js';
import { byteBpeModelDir, trainingText } from './helpers/byte-bpe.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

const modelDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));
const PROMPTS = [
  'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n', 'hello  world\t😀 ünïcode', '</s><s> x', '', ' leading space',
  'for i in range(10):\n\tprint(i)\r\n', '    indented()\n\n\n', '@@ λ → ∑ 中文 \u0000 end',
];

describe('tokenizer from GGUF metadata (no tokenizer.json beside the file)', function () {
  let dir: string;
  const hf = LscTokenizer.load(modelDir);
  const tj = JSON.parse(fs.readFileSync(path.join(modelDir, 'tokenizer.json'), 'utf8')) as { model: { type: string; merges: (string | string[])[] } };
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-gguf-tok-'));
    // a model directory without tokenizer.model: lsc quantize falls back to merge-rank scores
    fs.mkdirSync(path.join(dir, 'no-sp'));
    for (const f of fs.readdirSync(modelDir)) if (f !== 'tokenizer.model') fs.symlinkSync(path.join(modelDir, f), path.join(dir, 'no-sp', f));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('tiny-code has a SentencePiece BPE tokenizer; lsc quantize writes tokenizer.model\'s scores and types', function () {
    assert.equal(tj.model.type, 'BPE');
    const file = path.join(dir, 'sp.gguf');
    quantizeToGguf(modelDir, file, 'q8_0');
    const g = GgufFile.open(file);
    try {
      const pieces = readSentencePieceModel(path.join(modelDir, 'tokenizer.model'));
      assert.equal(g.get('tokenizer.ggml.model'), 'llama');
      assert.deepEqual(g.get('tokenizer.ggml.scores'), pieces.map((p) => Math.fround(p.score)));
      assert.deepEqual(g.get('tokenizer.ggml.token_type'), pieces.map((p) => p.type));
      assert.deepEqual((g.get('tokenizer.ggml.token_type') as number[]).slice(0, 4), [2, 3, 3, 6]); // <unk> <s> </s> <0x00>
      assert.equal(g.get('tokenizer.ggml.add_bos_token'), true);
      assert.equal(g.get('tokenizer.ggml.unknown_token_id'), 0);
    } finally {
      g.close();
    }
  });

  for (const source of ['tokenizer.model scores', 'merge-rank scores (no tokenizer.model)'] as const) {
    it(`${source}: the same merges, ids and text as the Hugging Face tokenizer`, function () {
      const file = path.join(dir, `${source.startsWith('merge') ? 'ranks' : 'sp'}.gguf`);
      quantizeToGguf(source.startsWith('merge') ? path.join(dir, 'no-sp') : modelDir, file, 'q4_0');
      const g = GgufFile.open(file);
      try {
        const merges = ggufTokenizerSpec(g).tokenizerJson.model as { merges: [string, string][] };
        assert.deepEqual(merges.merges.map((m) => m.join(' ')), tj.model.merges.map((m) => (typeof m === 'string' ? m : m.join(' '))));
        const tok = ggufTokenizer(g);
        assert.equal(tok.bosId, hf.bosId);
        assert.deepEqual(tok.eosIds, hf.eosIds);
        for (const p of PROMPTS) {
          const ids = hf.encode(p);
          assert.deepEqual(tok.encode(p), ids, JSON.stringify(p));
          assert.equal(tok.decode(ids), hf.decode(ids), JSON.stringify(p));
          assert.equal(tok.decode(ids, { skipSpecialTokens: false }), hf.decode(ids, { skipSpecialTokens: false }), JSON.stringify(p));
        }
        for (let id = 0; id < 2048; id++) assert.equal(tok.tokenText(id), hf.tokenText(id));
      } finally {
        g.close();
      }
    });
  }

  it('a byte-level BPE ("gpt2", Llama 3\'s llama-bpe split): lsc quantize writes its merges; the rebuilt tokenizer equals the Hugging Face one', function () {
    this.timeout(120_000);
    const bpeDir = path.join(dir, 'byte-bpe');
    byteBpeModelDir(modelDir, bpeDir, trainingText(repoRoot), 2048);
    const file = path.join(dir, 'byte-bpe.gguf');
    quantizeToGguf(bpeDir, file, 'q8_0');
    const ref = LscTokenizer.load(bpeDir);
    const g = GgufFile.open(file);
    try {
      assert.equal(g.get('tokenizer.ggml.model'), 'gpt2');
      assert.equal(g.get('tokenizer.ggml.pre'), 'llama-bpe');
      const tok = ggufTokenizer(g);
      assert.equal(tok.bosId, 1);
      assert.deepEqual(tok.eosIds, ref.eosIds);
      for (const p of [...PROMPTS, 'It\'s 12345 they\'re  \n\n  x']) {
        const ids = ref.encode(p);
        assert.ok(ids.length > 1 || p === '');
        assert.deepEqual(tok.encode(p), ids, JSON.stringify(p));
        assert.equal(tok.decode(ids), ref.decode(ids), JSON.stringify(p));
      }
    } finally {
      g.close();
    }
  });

  it('a GGUF without tokenizer metadata, or with a tokenizer model lsc does not rebuild, is a clear error', function () {
    const file = path.join(dir, 'errors.gguf');
    quantizeToGguf(modelDir, file, 'q4_0');
    const bytes = fs.readFileSync(file);
    const bad = path.join(dir, 'bad.gguf');
    const at = bytes.indexOf(Buffer.from('tokenizer.ggml.model'));
    const renamed = Buffer.from(bytes);
    renamed.write('tokenizer.ggml.mode_', at); // the key gone
    fs.writeFileSync(bad, renamed);
    let g = GgufFile.open(bad);
    assert.throws(() => ggufTokenizer(g), (e: unknown) => e instanceof LscError && /no tokenizer \(no tokenizer\.ggml\.model\)/.test(e.message));
    g.close();
    const other = Buffer.from(bytes);
    other.write('bert!', bytes.indexOf(Buffer.from('llama'), at)); // the value "llama" → "bert!"
    fs.writeFileSync(bad, other);
    g = GgufFile.open(bad);
    assert.throws(() => ggufTokenizer(g), (e: unknown) => e instanceof LscError && /tokenizer model is "bert!"; lsc rebuilds "llama"/.test(e.message));
    g.close();
  });

  it('--model file.gguf alone (no tokenizer.json) generates the tokens and text of the model directory with --weights', async function () {
    this.timeout(300_000);
    const gpu = await testGpu();
    const file = path.join(dir, 'alone', 'tiny-code-q8_0.gguf');
    fs.mkdirSync(path.dirname(file));
    quantizeToGguf(modelDir, file, 'q8_0');
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['tiny-code-q8_0.gguf']);
    const a = await LscModel.load(modelDir, { gpu, weights: 'q8_0' });
    const b = await LscModel.load(file, { gpu });
    try {
      for (const prompt of ['def fibonacci(n):\n', 'class Stack:\n    def push(self, x):\n']) {
        const ra = await a.complete(prompt, { maxNewTokens: 24, stopAtEos: false, strategy: 'autoregressive' });
        const rb = await b.complete(prompt, { maxNewTokens: 24, stopAtEos: false, strategy: 'autoregressive' });
        assert.deepEqual(rb.promptTokens, ra.promptTokens);
        assert.deepEqual(rb.tokens, ra.tokens);
        assert.equal(rb.text, ra.text);
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});
