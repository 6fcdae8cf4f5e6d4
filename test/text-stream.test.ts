import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import { LscTokenizer } from '../runtime/tokenizer.js';
import { TextStream } from '../runtime/text-stream.js';

const modelDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));
const reference = JSON.parse(fs.readFileSync(modelDir + 'reference.json', 'utf8')) as {
  prompts: { text: string; tokens: number[]; greedy: number[] }[];
};

/** mulberry32: seeded so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The specified result: full-decode suffix after its common prefix with the prompt's decode. */
function expected(tok: LscTokenizer, prompt: number[], gen: number[]): string {
  const p = tok.decode(prompt);
  const f = tok.decode([...prompt, ...gen]);
  let i = 0;
  while (i < p.length && i < f.length && p[i] === f[i]) i++;
  return f.slice(i);
}

/** Streams gen in groups (sizes from `group`), checking that nothing emitted is ever taken back. */
function checkStream(tok: LscTokenizer, prompt: number[], gen: number[], group: () => number = () => 1): void {
  const want = expected(tok, prompt, gen);
  const s = new TextStream(tok, prompt);
  let got = '';
  for (let i = 0; i < gen.length; ) {
    const n = Math.max(1, group());
    got += s.push(gen.slice(i, i + n));
    i += n;
    assert.ok(want.startsWith(got), `emitted text is not final: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
  }
  got += s.flush();
  assert.equal(got, want, `prompt ${JSON.stringify(prompt)} gen ${JSON.stringify(gen)}`);
  assert.equal(s.text, want);
}

describe('TextStream (tiny-code, SentencePiece + byte fallback)', () => {
  const tok = LscTokenizer.load(modelDir);

  it('streams each reference greedy continuation exactly, with its leading space', () => {
    const r = rng(1);
    for (const p of reference.prompts) {
      checkStream(tok, p.tokens, p.greedy);
      for (let k = 0; k < 5; k++) checkStream(tok, p.tokens, p.greedy, () => 1 + Math.floor(r() * 6));
      const s = new TextStream(tok, p.tokens);
      const text = s.push(p.greedy) + s.flush();
      assert.equal(text, tok.decode([...p.tokens, ...p.greedy]).slice(tok.decode(p.tokens).length));
      assert.notEqual(text, tok.decode(p.greedy)); // decoding alone drops the first space
    }
  });

  it('holds back incomplete UTF-8 from byte tokens', () => {
    const ids = tok.encode('x = "中🙂"');
    const cut = ids.findIndex((_, i) => tok.decode(ids.slice(0, i)) === 'x =');
    const [prompt, gen] = [ids.slice(0, cut), ids.slice(cut)];
    const s = new TextStream(tok, prompt);
    const parts = gen.map((id) => s.push([id]));
    assert.ok(parts.every((t) => !t.includes('\uFFFD')));
    assert.equal(parts.join('') + s.flush(), ' "中🙂"');
  });

  it('is exact for text with emoji/CJK split at every point, pushed one id at a time', () => {
    for (const text of ['def 中文(x): return "🙂🙂" # ü', '日本語のテキスト 🎉\n  ok', 'a🙂b\t€ß']) {
      const ids = tok.encode(text);
      for (let cut = 0; cut <= ids.length; cut++) checkStream(tok, ids.slice(0, cut), ids.slice(cut));
    }
  });

  it('defines the result after the common prefix when the prompt ends inside a character', () => {
    const ids = tok.encode('s = "中"');
    const cut = ids.findIndex((id) => tok.tokenText(id) === '<0xB8>');
    const prompt = ids.slice(0, cut);
    assert.ok(tok.decode(prompt).endsWith('\uFFFD'));
    checkStream(tok, prompt, ids.slice(cut));
    const s = new TextStream(tok, prompt);
    assert.equal(s.push(ids.slice(cut)) + s.flush(), '中"');
  });

  it('keeps the first space after a prompt that ends in special tokens (empty window text)', () => {
    const prompt = [...tok.encode('def f'), ...new Array(20).fill(2)];
    const gen = tok.encode('def x').slice(2); // '▁x'
    checkStream(tok, prompt, gen);
    const s = new TextStream(tok, prompt);
    assert.equal(s.push(gen) + s.flush(), ' x');
    checkStream(tok, [1, 2, 2], [2, ...gen, 2, 2, ...gen]);
  });

  it('is exact on seeded random id sequences (specials and byte tokens included)', () => {
    const r = rng(42);
    const byteTok = () => 3 + Math.floor(r() * 256); // <0x00>..<0xFF>
    const utf8Lead = () => 3 + [0xc3, 0xe4, 0xe6, 0xf0][Math.floor(r() * 4)];
    const utf8Cont = () => 3 + 0x80 + Math.floor(r() * 64);
    const pick = () => {
      const x = r();
      if (x < 0.3) return Math.floor(r() * tok.vocabSize);
      if (x < 0.45) return byteTok();
      if (x < 0.6) return utf8Lead();
      if (x < 0.85) return utf8Cont();
      return Math.floor(r() * 3); // <unk> <s> </s>
    };
    for (let iter = 0; iter < 300; iter++) {
      const prompt = Array.from({ length: Math.floor(r() * 24) }, pick);
      const gen = Array.from({ length: Math.floor(r() * 60) }, pick);
      checkStream(tok, prompt, gen, () => 1 + Math.floor(r() * (r() < 0.5 ? 2 : 8)));
    }
  });

  it('decodes only a small window per step (not O(n²))', () => {
    const p = reference.prompts[0];
    const gen: number[] = [];
    while (gen.length < 4000) gen.push(...p.greedy, ...tok.encode(' 中🙂').slice(1));
    let decoded = 0;
    const counting = Object.create(tok) as LscTokenizer;
    counting.decode = (ids, opts) => ((decoded += ids.length), tok.decode(ids, opts));
    const s = new TextStream(counting, p.tokens);
    let text = '';
    for (const id of gen) text += s.push([id]);
    text += s.flush();
    assert.equal(text, expected(tok, p.tokens, gen));
    assert.ok(decoded < 20 * gen.length, `decoded ${decoded} ids for ${gen.length} tokens`);
  });

  it('push after flush is an error; flush twice returns ""', () => {
    const s = new TextStream(tok, [1]);
    assert.equal(s.push(tok.encode('hi').slice(1)) + s.flush(), 'hi');
    assert.equal(s.flush(), '');
    assert.throws(() => s.push([5]));
  });
});

/** GPT-2 byte-to-unicode table used by ByteLevel tokenizers. */
function bytesToUnicode(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(keep(b) ? b : 256 + n++));
  return out;
}

/** A small Llama 3 style tokenizer: byte-level BPE, a few merges, <|begin_of_text|> via the template. */
function byteLevelTokenizerJson(): object {
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  chars.forEach((c, i) => (vocab[c] = i));
  const G = chars[32]; // 'Ġ', the byte-level space
  const merges: [string, string][] = [
    [G, 't'], ['h', 'e'], [G + 't', 'he'], ['i', 'n'], [G, 'in'], ['o', 'n'], [G, 'a'], ['e', 'r'],
    [G, G], [G, '.'], ["'", 's'], ["'", 't'], ['n', "'t"],
    [chars[0xe4], chars[0xb8]], // a piece holding part of a UTF-8 sequence ('中' is E4 B8 AD)
  ];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  const special = ['<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>'];
  const added = special.map((content, i) => ({
    id: 300 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  return {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'Sequence',
      processors: [
        { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: 'TemplateProcessing',
          single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [],
          special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [300], tokens: ['<|begin_of_text|>'] } },
        },
      ],
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges,
    },
  };
}

describe('TextStream + LscTokenizer (synthetic byte-level BPE, Llama 3 style)', () => {
  const tj = byteLevelTokenizerJson();
  // Llama 3 ships clean_up_tokenization_spaces: true, which the stream must also handle exactly.
  const tc = { bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', clean_up_tokenization_spaces: true };
  const tok = LscTokenizer.fromObjects(tj, tc, { eos_token_id: 301 }, { eos_token_id: [301, 302] });

  it('reads vocab size and BOS/EOS', () => {
    assert.equal(tok.vocabSize, 303);
    assert.equal(tok.bosId, 300);
    assert.deepEqual(tok.eosIds, [302, 301]);
    assert.equal(LscTokenizer.fromObjects(tj).bosId, 300); // from the template alone
  });

  it('encodes with one BOS from the template and round-trips text', () => {
    for (const text of ['the tin on the table', ' hello  world\n', 'emoji 🙂 and 中文', '']) {
      const ids = tok.encode(text);
      assert.equal(ids[0], 300);
      assert.notEqual(ids[1], 300);
      assert.equal(tok.decode(ids.slice(1), { skipSpecialTokens: false }), text);
    }
    const ids = tok.encode('the');
    assert.deepEqual(ids.slice(0, 2), [300, vocabId(tok, 't')]);
    assert.ok(ids.includes(vocabId(tok, 'he')));
    assert.deepEqual(tok.encode('<|begin_of_text|>the'), ids); // not doubled
  });

  it('applies merges, keeps specials on request', () => {
    const ids = tok.encode(' the');
    assert.deepEqual(ids, [300, vocabId(tok, 'Ġthe')]);
    assert.equal(tok.decode([300, ...ids.slice(1), 302], { skipSpecialTokens: false }), '<|begin_of_text|> the<|eot_id|>');
    assert.equal(tok.decode([300, ...ids.slice(1), 302]), ' the');
  });

  it('streams exactly, including multi-byte characters and clean-up patterns', () => {
    const r = rng(7);
    const texts = ["it's the end .", "don't , ok ?", 'x 中🙂 y', 'the  tin\n\n on', "a ' b !"];
    for (const text of texts) {
      const ids = tok.encode(text);
      for (let cut = 1; cut <= ids.length; cut++) checkStream(tok, ids.slice(0, cut), ids.slice(cut));
    }
    const pool = [...new Set(texts.flatMap((t) => tok.encode(t)))];
    for (let iter = 0; iter < 300; iter++) {
      const pick = () => (r() < 0.7 ? pool[Math.floor(r() * pool.length)] : Math.floor(r() * tok.vocabSize));
      const prompt = Array.from({ length: Math.floor(r() * 20) }, pick);
      const gen = Array.from({ length: Math.floor(r() * 50) }, pick);
      checkStream(tok, prompt, gen, () => 1 + Math.floor(r() * 4));
    }
  });
});

function vocabId(tok: LscTokenizer, piece: string): number {
  for (let id = 0; id < tok.vocabSize; id++) if (tok.tokenText(id) === piece) return id;
  throw new Error(`no piece ${piece}`);
}
