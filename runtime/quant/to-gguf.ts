import fs from 'node:fs';
import path from 'node:path';
import { LscError } from '../../compiler/errors.js';
import { HEAD_FORMAT, type MatrixFormat } from '../../compiler/ir/weight-formats.js';
import type { WeightsSpec } from '../../compiler/ir/weights-spec.js';
import { f32ToF16Bits } from '../dtype-convert.js';
import { GgufValueType } from '../gguf.js';
import { GgufTokenType } from '../gguf-tokenizer.js';
import { readSentencePieceModel } from '../sentencepiece-model.js';
import { ggufRowOf, ggufTensorName } from '../gguf-llama.js';
import { writeGguf, type GgufKv, type GgufTensorOut } from '../gguf-write.js';
import { readJsonFile, readModelConfig } from '../model-dir.js';
import { SafetensorsCheckpoint } from '../safetensors.js';
import { quantToBlocks } from './gguf-blocks.js';
import { quantizeRows } from './quantize.js';

/**
 * `lsc quantize`: a Hugging Face Llama checkpoint to a GGUF file with llama.cpp's names, metadata
 * and q/k row order: matrices in Q8_0 / Q4_0 (ggml's reference quantizer) or F16, each tensor in
 * the format lsc's plan gives it (an untied LM head: the spec's head, else HEAD_FORMAT), the
 * embedding F16 (lsc gathers f16 rows), norms F32, and the tokenizer as tokenizer.ggml.* (see vocabulary()).
 * One tensor in memory at a time.
 */

/** general.file_type (llama_ftype): mostly F16 / Q4_0 / Q8_0. */
const FILE_TYPE: Record<MatrixFormat, number> = { f16: 1, q4_0: 2, q8_0: 7 };
const GGML_TYPE: Record<MatrixFormat, 'F16' | 'Q8_0' | 'Q4_0'> = { f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0' };

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
  pre_tokenizer?: unknown;
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

/** Whether a tokenizer.json pre-tokenizer is byte-level (GPT-2 / Llama 3 style). */
function byteLevel(pre: unknown): boolean {
  return JSON.stringify(pre ?? null).includes('"ByteLevel"');
}

/**
 * The tokenizer as tokenizer.ggml.* (what llama.cpp reads and runtime/gguf-tokenizer.ts rebuilds):
 * a SentencePiece BPE vocabulary as "llama" with tokenizer.model's own scores and types, or where
 * there is none, scores that rank each piece by the first merge that makes it (llama.cpp merges the
 * best-scored pair first, so this is tokenizer.json's merge order); a byte-level BPE as "gpt2" with
 * its merges.
 */
function vocabulary(dir: string, vocabSize: number): GgufKv[] {
  const file = path.join(dir, 'tokenizer.json');
  const tj = readJsonFile(file, 'tokenizer.json') as TokenizerJson;
  if (tj.model?.type !== 'BPE' || !tj.model.vocab) {
    throw new LscError(`tokenizer.json has a ${tj.model?.type ?? 'missing'} model; lsc quantize writes BPE vocabularies (SentencePiece or byte-level)`, { file });
  }
  const tc = (fs.existsSync(path.join(dir, 'tokenizer_config.json')) ? readJsonFile(path.join(dir, 'tokenizer_config.json'), 'tokenizer_config.json') : {}) as Record<string, unknown>;
  const tokens: string[] = Array(vocabSize).fill('');
  for (const [piece, id] of Object.entries(tj.model.vocab)) if (id < vocabSize) tokens[id] = piece;
  const special = new Set((tj.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
  const added = new Set((tj.added_tokens ?? []).map((t) => t.id));
  for (const t of tj.added_tokens ?? []) if (t.id < vocabSize) tokens[t.id] = t.content;
  // padding rows past the tokenizer: unused tokens with distinct texts
  const known = new Set([...Object.values(tj.model.vocab), ...added]);
  tokens.forEach((_, id) => { if (!known.has(id)) tokens[id] = `[PAD${id}]`; });
  const merges = (tj.model.merges ?? []).map((m) => (typeof m === 'string' ? m : m.join(' ')));
  const unkPiece = (tj.model as { unk_token?: string }).unk_token;
  const unk = unkPiece === undefined ? -1 : tokens.indexOf(unkPiece);
  const type = (t: string, id: number): number => (!known.has(id) ? GgufTokenType.UNUSED : id === unk ? GgufTokenType.UNKNOWN
    : special.has(id) ? GgufTokenType.CONTROL : added.has(id) ? GgufTokenType.USER_DEFINED : /^<0x[0-9A-F]{2}>$/.test(t) ? GgufTokenType.BYTE : GgufTokenType.NORMAL);
  const bool = (key: string, v: unknown): GgufKv[] => (typeof v === 'boolean' ? [{ key, type: GgufValueType.BOOL, value: v }] : []);
  const common: GgufKv[] = [
    ...bool('tokenizer.ggml.add_bos_token', tc.add_bos_token), ...bool('tokenizer.ggml.add_eos_token', tc.add_eos_token),
    ...(unk >= 0 ? [{ key: 'tokenizer.ggml.unknown_token_id', type: GgufValueType.U32, value: unk } as GgufKv] : []),
  ];
  if (byteLevel(tj.pre_tokenizer)) {
    const pre = JSON.stringify(tj.pre_tokenizer).includes('\\\\p{N}{1,3}') ? 'llama-bpe' : 'default';
    return [
      { key: 'tokenizer.ggml.model', type: GgufValueType.STRING, value: 'gpt2' },
      { key: 'tokenizer.ggml.pre', type: GgufValueType.STRING, value: pre },
      { key: 'tokenizer.ggml.tokens', type: GgufValueType.ARRAY, items: GgufValueType.STRING, value: tokens },
      { key: 'tokenizer.ggml.token_type', type: GgufValueType.ARRAY, items: GgufValueType.I32, value: tokens.map((t, id) => (type(t, id) === GgufTokenType.BYTE ? GgufTokenType.NORMAL : type(t, id))) },
      { key: 'tokenizer.ggml.merges', type: GgufValueType.ARRAY, items: GgufValueType.STRING, value: merges },
      ...common,
    ];
  }
  let scores: number[];
  let types = tokens.map(type);
  const spFile = path.join(dir, 'tokenizer.model');
  if (fs.existsSync(spFile)) {
    const pieces = readSentencePieceModel(spFile);
    const mismatch = pieces.findIndex((p, id) => id < vocabSize && p.piece !== tokens[id]);
    if (pieces.length > vocabSize || mismatch >= 0) {
      throw new LscError(`tokenizer.model disagrees with tokenizer.json${mismatch >= 0 ? ` at id ${mismatch} (${JSON.stringify(pieces[mismatch].piece)} vs ${JSON.stringify(tokens[mismatch])})` : ` (${pieces.length} pieces, vocab_size ${vocabSize})`}`, { file: spFile });
    }
    scores = tokens.map((_, id) => pieces[id]?.score ?? -1e9);
    types = types.map((t, id) => pieces[id]?.type ?? t);
  } else {
    const rank = new Map<string, number>();
    merges.forEach((m, i) => { const piece = m.replace(' ', ''); if (!rank.has(piece)) rank.set(piece, i); });
    scores = tokens.map((t) => -(rank.get(t) ?? merges.length));
  }
  return [
    { key: 'tokenizer.ggml.model', type: GgufValueType.STRING, value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: GgufValueType.ARRAY, items: GgufValueType.STRING, value: tokens },
    { key: 'tokenizer.ggml.scores', type: GgufValueType.ARRAY, items: GgufValueType.F32, value: scores },
    { key: 'tokenizer.ggml.token_type', type: GgufValueType.ARRAY, items: GgufValueType.I32, value: types },
    ...common,
  ];
}

export function quantizeToGguf(dir: string, out: string, weights: MatrixFormat | WeightsSpec, name = path.basename(path.resolve(dir))): { tensors: number } {
  const spec = typeof weights === 'string' ? { matrices: weights } : weights;
  const format = spec.matrices;
  const head = spec.head ?? HEAD_FORMAT[format];
  const { config } = readModelConfig(dir);
  const ckpt = SafetensorsCheckpoint.open(dir);
  try {
    const u32 = (key: string, value: number): GgufKv => ({ key, type: GgufValueType.U32, value });
    const metadata: GgufKv[] = [
      { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' },
      { key: 'general.name', type: GgufValueType.STRING, value: name },
      u32('general.file_type', FILE_TYPE[format]),
      u32('llama.context_length', config.max_position_embeddings),
      u32('llama.embedding_length', config.hidden_size),
      u32('llama.block_count', config.num_hidden_layers),
      u32('llama.feed_forward_length', config.intermediate_size),
      u32('llama.rope.dimension_count', config.head_dim),
      u32('llama.attention.head_count', config.num_attention_heads),
      u32('llama.attention.head_count_kv', config.num_key_value_heads),
      { key: 'llama.attention.layer_norm_rms_epsilon', type: GgufValueType.F32, value: config.rms_norm_eps },
      { key: 'llama.rope.freq_base', type: GgufValueType.F32, value: config.rope_theta },
      u32('tokenizer.ggml.bos_token_id', config.bos_token_id ?? 1),
      u32('tokenizer.ggml.eos_token_id', config.eos_token_id[0] ?? 2),
      ...vocabulary(dir, config.vocab_size),
    ];
    const tensors: GgufTensorOut[] = [];
    for (const [hf, t] of ckpt.tensors) {
      const g = ggufTensorName(hf);
      if (!g) throw new LscError(`tensor '${hf}' is not a Llama tensor lsc quantize knows`, { file: t.file, tensor: hf });
      if (hf === 'lm_head.weight' && config.tie_word_embeddings) continue;
      const matrix = t.shape.length === 2;
      const type = !matrix ? 'F32' : hf === 'model.embed_tokens.weight' ? 'F16' : GGML_TYPE[hf === 'lm_head.weight' ? head : format];
      tensors.push({
        name: g, type, shape: t.shape,
        data: () => {
          let v = ckpt.readAll(hf, 'f32') as Float32Array;
          const heads = /self_attn\.q_proj/.test(hf) || /self_attn\.k_proj/.test(hf);
          if (heads) {
            // llama.cpp's row order: each head's two RoPE halves interleaved
            const [rows, cols] = t.shape;
            const p = new Float32Array(v.length);
            for (let r = 0; r < rows; r++) p.set(v.subarray(r * cols, (r + 1) * cols), ggufRowOf(r, config.head_dim) * cols);
            v = p;
          }
          if (type === 'F32') return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
          if (type === 'F16') {
            const b = f32ToF16Bits(v);
            return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
          }
          const q = type === 'Q8_0' ? 'q8_0' : 'q4_0';
          return quantToBlocks(q, quantizeRows(q, v, t.shape[0], t.shape[1]), t.shape[0], t.shape[1]);
        },
      });
    }
    writeGguf(out, metadata, tensors);
    return { tensors: tensors.length };
  } finally {
    ckpt.close();
  }
}
