/**
 * A small byte-level BPE tokenizer.json in Llama 3's form (llama-bpe split regex, ByteLevel,
 * BOS by the config), trained here by plain pair counting on a text: a GPT-2 style vocabulary to
 * test with where no bundled model has one.
 */
import fs from 'node:fs';
import path from 'node:path';

/** GPT-2's bytes_to_unicode: each byte as a printable character. */
export function byteChars(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep(b) ? b : 256 + extra++));
}

export const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** vocab: 3 special tokens (ids 0..2: reserved, BOS, EOS), the 256 bytes, then merges up to size. */
export function trainByteBpe(text: string, size: number): { tokenizerJson: object; tokenizerConfig: object } {
  const chars = byteChars();
  const specials = ['<|reserved_0|>', '<|begin_of_text|>', '<|end_of_text|>'];
  const vocab: Record<string, number> = {};
  [...specials, ...chars].forEach((t, i) => { vocab[t] = i; });
  const re = new RegExp(LLAMA3_SPLIT.replace('(?i:', '(?:'), 'gu');
  const counts = new Map<string, number>();
  for (const m of text.match(re) ?? []) counts.set(m, (counts.get(m) ?? 0) + 1);
  let words = [...counts].map(([w, n]) => ({ parts: [...Buffer.from(w, 'utf8')].map((b) => chars[b]), n }));
  const merges: [string, string][] = [];
  while (Object.keys(vocab).length < size) {
    const pairs = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.parts.length; i++) {
      const k = `${w.parts[i]} ${w.parts[i + 1]}`;
      pairs.set(k, (pairs.get(k) ?? 0) + w.n);
    }
    let best = '', bestN = 1;
    for (const [k, n] of pairs) if (n > bestN || (n === bestN && best !== '' && k < best)) { best = k; bestN = n; }
    if (!best) break;
    const [l, r] = best.split(' ');
    merges.push([l, r]);
    if (!(l + r in vocab)) vocab[l + r] = Object.keys(vocab).length;
    words = words.map((w) => {
      const parts: string[] = [];
      for (let i = 0; i < w.parts.length; i++) {
        if (i + 1 < w.parts.length && w.parts[i] === l && w.parts[i + 1] === r) { parts.push(l + r); i++; } else parts.push(w.parts[i]);
      }
      return { parts, n: w.n };
    });
  }
  const added = specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return {
    tokenizerJson: {
      version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
      pre_tokenizer: { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_SPLIT }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ] },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
    },
    tokenizerConfig: { add_bos_token: true, add_eos_token: false, bos_token: specials[1], eos_token: specials[2] },
  };
}

/** A copy of a model directory (files linked) whose tokenizer is a byte-level BPE of `size` ids trained on text. */
export function byteBpeModelDir(modelDir: string, out: string, text: string, size: number): void {
  fs.mkdirSync(out, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) fs.symlinkSync(path.join(modelDir, f), path.join(out, f));
  const { tokenizerJson, tokenizerConfig } = trainByteBpe(text, size);
  fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  fs.writeFileSync(path.join(out, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
}

/** Text to train on: the repository's README and code. */
export function trainingText(root: string): string {
  return ['README.md', 'bench/data/heldout.py', 'runtime/tokenizer.ts', 'runtime/gguf.ts', 'runtime/model.ts']
    .map((f) => fs.readFileSync(path.join(root, f), 'utf8')).join('\n');
}
