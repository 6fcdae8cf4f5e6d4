import { LscError } from '../compiler/errors.js';
import type { GgufFile } from './gguf.js';
import { LscTokenizer } from './tokenizer.js';

/**
 * The tokenizer of a GGUF file's tokenizer.ggml.* metadata, for a .gguf with no tokenizer.json
 * beside it: rebuilt as the tokenizer.json (plus tokenizer_config) that Hugging Face's converters
 * write for the same vocabulary, and run by @huggingface/tokenizers like any other.
 *  - "llama" (SentencePiece BPE): merges derived from the scores as transformers'
 *    SentencePieceExtractor does (a piece's splits into two vocabulary pieces, ranked by the
 *    piece's score), byte fallback, "▁" for spaces.
 *  - "gpt2" (byte-level BPE, Llama 3): tokenizer.ggml.merges, with the pre-tokenizer regex that
 *    tokenizer.ggml.pre names.
 */

/** llama.cpp token types. */
export const enum GgufTokenType { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 }

/** tokenizer.ggml.pre → the split regex of its Hugging Face tokenizer.json. */
const PRE_REGEX: Record<string, string> = {
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

const HINT = 'put the model\'s Hugging Face tokenizer.json beside the .gguf file';

type Json = Record<string, unknown>;

/** SentencePiece BPE merges from scores, as transformers' SentencePieceExtractor.extract(vocab_scores). */
export function mergesFromScores(tokens: string[], scores: number[], types: number[]): [string, string][] {
  const vocab = new Map<string, number>();
  tokens.forEach((t, id) => { if (!vocab.has(t)) vocab.set(t, id); });
  const merges: { l: string; r: string; score: number; il: number; ir: number }[] = [];
  tokens.forEach((piece, id) => {
    if (types[id] !== GgufTokenType.NORMAL) return;
    const chars = [...piece];
    const local: typeof merges = [];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join(''), r = chars.slice(i).join('');
      const il = vocab.get(l), ir = vocab.get(r);
      if (il !== undefined && ir !== undefined) local.push({ l, r, score: scores[id], il, ir });
    }
    local.sort((a, b) => a.il - b.il || a.ir - b.ir);
    merges.push(...local);
  });
  // stable: equal scores keep vocabulary order
  merges.sort((a, b) => b.score - a.score);
  return merges.map((m) => [m.l, m.r]);
}

function strings(g: GgufFile, key: string): string[] | undefined {
  const v = g.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new LscError(`GGUF metadata '${key}' is not an array of strings`, { file: g.file }, HINT);
  return v as string[];
}

function numbers(g: GgufFile, key: string, n: number): number[] | undefined {
  const v = g.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length !== n || v.some((x) => typeof x !== 'number')) {
    throw new LscError(`GGUF metadata '${key}' is not an array of ${n} numbers (one per token)`, { file: g.file }, HINT);
  }
  return v as number[];
}

function tokenId(g: GgufFile, key: string, n: number): number | undefined {
  const v = g.get(key);
  if (v === undefined) return undefined;
  const id = Number(v);
  if (!Number.isInteger(id) || id < 0 || id >= n) throw new LscError(`GGUF metadata '${key}' = ${String(v)} is not a token id below ${n}`, { file: g.file }, HINT);
  return id;
}

function flag(g: GgufFile, key: string): boolean | undefined {
  const v = g.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new LscError(`GGUF metadata '${key}' is not a boolean`, { file: g.file }, HINT);
  return v;
}

/** The tokenizer.json and tokenizer_config.json objects a GGUF file's metadata stands for. */
export function ggufTokenizerSpec(g: GgufFile): { tokenizerJson: Json; tokenizerConfig: Json; config: Json } {
  const model = g.get('tokenizer.ggml.model');
  if (model === undefined) throw new LscError('the GGUF file has no tokenizer (no tokenizer.ggml.model) and no tokenizer.json lies beside it', { file: g.file }, HINT);
  const tokens = strings(g, 'tokenizer.ggml.tokens');
  if (!tokens?.length) throw new LscError("the GGUF metadata has no 'tokenizer.ggml.tokens'", { file: g.file }, HINT);
  const n = tokens.length;
  const types = numbers(g, 'tokenizer.ggml.token_type', n) ?? tokens.map(() => GgufTokenType.NORMAL);
  const bos = tokenId(g, 'tokenizer.ggml.bos_token_id', n);
  const eos = tokenId(g, 'tokenizer.ggml.eos_token_id', n);
  const unk = tokenId(g, 'tokenizer.ggml.unknown_token_id', n);
  const vocab: Record<string, number> = {};
  tokens.forEach((t, id) => { if (!(t in vocab)) vocab[t] = id; });
  // control and user-defined tokens match as whole strings, before the model
  const added = tokens.flatMap((content, id) => {
    const t = types[id];
    if (t !== GgufTokenType.CONTROL && t !== GgufTokenType.USER_DEFINED && t !== GgufTokenType.UNKNOWN) return [];
    return [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t !== GgufTokenType.USER_DEFINED }];
  });
  let tokenizerJson: Json;
  if (model === 'llama') {
    const scores = numbers(g, 'tokenizer.ggml.scores', n);
    if (!scores) throw new LscError("the GGUF's SentencePiece tokenizer has no 'tokenizer.ggml.scores'", { file: g.file }, HINT);
    const spacePrefix = flag(g, 'tokenizer.ggml.add_space_prefix') ?? true;
    tokenizerJson = {
      version: '1.0', truncation: null, padding: null, added_tokens: added,
      normalizer: { type: 'Sequence', normalizers: [
        ...(spacePrefix ? [{ type: 'Prepend', prepend: '▁' }] : []),
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ] },
      pre_tokenizer: null, post_processor: null,
      decoder: { type: 'Sequence', decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' },
        ...(spacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ] },
      model: {
        type: 'BPE', dropout: null, unk_token: unk === undefined ? null : tokens[unk], continuing_subword_prefix: null,
        end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false,
        vocab, merges: mergesFromScores(tokens, scores, types),
      },
    };
  } else if (model === 'gpt2') {
    const merges = strings(g, 'tokenizer.ggml.merges');
    if (!merges) throw new LscError("the GGUF's byte-level BPE tokenizer has no 'tokenizer.ggml.merges'", { file: g.file }, HINT);
    const pre = g.get('tokenizer.ggml.pre') ?? 'default';
    const byteLevel = (useRegex: boolean): Json => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
    let preTokenizer: Json;
    if (pre === 'default' || pre === 'gpt-2') preTokenizer = byteLevel(true);
    else if (typeof pre === 'string' && PRE_REGEX[pre]) {
      preTokenizer = { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: PRE_REGEX[pre] }, behavior: 'Isolated', invert: false }, byteLevel(false),
      ] };
    } else {
      throw new LscError(`the GGUF's byte-level BPE tokenizer uses pre-tokenizer ${JSON.stringify(pre)}; lsc rebuilds ${['default', 'gpt-2', ...Object.keys(PRE_REGEX)].join(', ')}`, { file: g.file }, HINT);
    }
    tokenizerJson = {
      version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
      pre_tokenizer: preTokenizer, post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: pre === 'llama-bpe', vocab, merges,
      },
    };
  } else {
    throw new LscError(`the GGUF's tokenizer model is ${JSON.stringify(model)}; lsc rebuilds "llama" (SentencePiece BPE) and "gpt2" (byte-level BPE)`, { file: g.file }, HINT);
  }
  const tokenizerConfig: Json = {
    add_bos_token: flag(g, 'tokenizer.ggml.add_bos_token') ?? bos !== undefined,
    add_eos_token: flag(g, 'tokenizer.ggml.add_eos_token') ?? false,
    ...(bos === undefined ? {} : { bos_token: tokens[bos] }),
    ...(eos === undefined ? {} : { eos_token: tokens[eos] }),
  };
  const config: Json = { ...(bos === undefined ? {} : { bos_token_id: bos }), ...(eos === undefined ? {} : { eos_token_id: eos }) };
  return { tokenizerJson, tokenizerConfig, config };
}

/** The tokenizer of a GGUF file's metadata. */
export function ggufTokenizer(g: GgufFile): LscTokenizer {
  const { tokenizerJson, tokenizerConfig, config } = ggufTokenizerSpec(g);
  return LscTokenizer.fromObjects(tokenizerJson, tokenizerConfig, config, undefined, g.file);
}
