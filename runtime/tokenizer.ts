/**
 * Hugging Face tokenizer.json loading on top of @huggingface/tokenizers, plus the bits that
 * library leaves to transformers: BOS/EOS ids from the model's config files and the
 * `add_bos_token` / `add_eos_token` switches of Llama-2 style tokenizer_config.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { LscError, oneLine } from '../compiler/errors.js';
import { readRegularFile } from './safe-file.js';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads a JSON object; undefined when the file is absent and optional. */
function readJson(file: string, required: boolean): Json | undefined {
  const name = path.basename(file);
  if (!required && !fs.existsSync(file)) return undefined;
  const text = readRegularFile(file, name, {
    missing: `${name} not found`,
    hint: required ? 'the model directory needs the Hugging Face tokenizer.json (from the model repo, or tokenizer.save_pretrained())' : undefined,
  });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new LscError(`invalid JSON: ${oneLine((e as Error).message)}`, { file });
  }
  if (!isObject(v)) throw new LscError('invalid JSON: expected an object at the top level', { file });
  return v;
}

/** config.json / generation_config.json ids: a number or a list of numbers. */
function idList(v: unknown): number[] {
  const xs = Array.isArray(v) ? v : [v];
  return xs.filter((x): x is number => Number.isInteger(x) && (x as number) >= 0);
}

/** tokenizer_config tokens are a string or an AddedToken-like {content}. */
function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, ...) from the text; default true. */
  skipSpecialTokens?: boolean;
}

/**
 * A model's embedding may have padding rows beyond the tokenizer's ids (Hugging Face pads
 * vocab_size to a multiple of 64, Megatron to 128), up to the next multiple of this.
 */
export const EMBEDDING_PAD_MULTIPLE = 128;

export class LscTokenizer {
  /** Largest id + 1 over the model vocab and added tokens. */
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosIds: number[];
  private readonly tok: Tokenizer;
  /** undefined: the tokenizer.json post-processor decides (Llama 3); else tokenizer_config does (Llama 2). */
  private readonly addBos: boolean | undefined;
  private readonly addEosId: number | undefined;
  private readonly templateAddsBos: boolean;
  /** tokenizer.json, for messages. */
  readonly file: string;

  /** Reads dir/tokenizer.json (required) and the optional tokenizer_config, config and generation_config. */
  static load(dir: string): LscTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    const tj = readJson(file, true)!;
    const opt = (name: string) => readJson(path.join(dir, name), false);
    return new LscTokenizer(file, tj, opt('tokenizer_config.json'), opt('config.json'), opt('generation_config.json'));
  }

  /** file: where the objects came from, for messages. */
  static fromObjects(tokenizerJson: object, tokenizerConfig?: object, config?: object, generationConfig?: object, file = 'tokenizer.json'): LscTokenizer {
    return new LscTokenizer(file, tokenizerJson as Json, tokenizerConfig as Json, config as Json, generationConfig as Json);
  }

  private constructor(file: string, tj: Json, tc: Json = {}, config: Json = {}, gen: Json = {}) {
    this.file = file;
    // The library insists on these keys; tokenizer.json files written by older tools may omit the null ones.
    const full = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...tj };
    // transformers now defaults clean_up_tokenization_spaces to false; the library defaults to true,
    // which would rewrite code like "f(a , b)".
    const cfg = { clean_up_tokenization_spaces: false, ...tc };
    try {
      this.tok = new Tokenizer(full, cfg);
    } catch (e) {
      throw new LscError(`cannot build the tokenizer: ${(e as Error).message}`, { file });
    }
    let maxId = -1;
    for (const id of this.tok.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const idOf = (v: unknown) => {
      const s = tokenContent(v);
      return s === undefined ? undefined : this.tok.token_to_id(s);
    };
    const tcEos = idOf(tc.eos_token);
    this.bosId = idOf(tc.bos_token) ?? idList(config.bos_token_id)[0] ?? idList(gen.bos_token_id)[0] ?? this.templateBos(full.post_processor);
    const eos = [...(tcEos === undefined ? [] : [tcEos]), ...idList(config.eos_token_id), ...idList(gen.eos_token_id)];
    this.eosIds = [...new Set(eos)];

    // transformers rebuilds the post-processor from these flags when the config sets them, so they win
    // over tokenizer.json's template (Llama 2 defaults: BOS yes, EOS no).
    const hasFlags = typeof tc.add_bos_token === 'boolean' || typeof tc.add_eos_token === 'boolean';
    this.addBos = hasFlags ? tc.add_bos_token !== false : undefined;
    this.addEosId = hasFlags && tc.add_eos_token === true ? tcEos ?? this.eosIds[0] : undefined;
    if (this.addBos && this.bosId === undefined) {
      throw new LscError('tokenizer_config.json sets add_bos_token but no BOS token is defined', { file },
        'set bos_token in tokenizer_config.json or bos_token_id in config.json');
    }
    if (hasFlags && tc.add_eos_token === true && this.addEosId === undefined) {
      throw new LscError('tokenizer_config.json sets add_eos_token but no EOS token is defined', { file },
        'set eos_token in tokenizer_config.json');
    }
    this.templateAddsBos = this.bosId !== undefined && this.tok.encode('').ids[0] === this.bosId;
  }

  /** Llama 3 has no bos_token in some configs; its template's leading special token is the BOS. */
  private templateBos(pp: unknown): number | undefined {
    const procs = isObject(pp) && pp.type === 'Sequence' && Array.isArray(pp.processors) ? pp.processors : [pp];
    for (const p of procs) {
      if (!isObject(p) || p.type !== 'TemplateProcessing' || !Array.isArray(p.single)) continue;
      const first: unknown = p.single[0];
      if (isObject(first) && isObject(first.SpecialToken) && typeof first.SpecialToken.id === 'string') {
        const special = isObject(p.special_tokens) ? p.special_tokens[first.SpecialToken.id] : undefined;
        return (isObject(special) ? idList(special.ids)[0] : undefined) ?? this.tok.token_to_id(first.SpecialToken.id);
      }
    }
    return undefined;
  }

  /**
   * Checks, at load, that this tokenizer belongs to a model with `vocab` embedding rows: every
   * id it can produce (vocabulary, added tokens, BOS/EOS) must be below vocab, and the model may
   * have more rows only as padding, up to the tokenizer's size rounded up to a multiple of
   * EMBEDDING_PAD_MULTIPLE (ids beyond the tokenizer have no text: a model that generates them
   * would lose words from the output).
   */
  checkVocab(vocab: number): void {
    const hint = 'use the tokenizer.json published with the checkpoint (or fix vocab_size in config.json)';
    const rule = `every id must be below vocab_size, which may exceed the tokenizer's size only by padding to a multiple of ${EMBEDDING_PAD_MULTIPLE}`;
    const size = this.vocabSize;
    if (size > vocab) {
      throw new LscError(`tokenizer.json has ids up to ${size - 1} (vocabulary and added tokens) but config.json's vocab_size is ${vocab}: `
        + `the model has no embedding row for ids ${vocab}..${size - 1} (${rule})`, { file: this.file }, hint);
    }
    const special = [...(this.bosId === undefined ? [] : [['BOS', this.bosId] as const]), ...this.eosIds.map((id) => ['EOS', id] as const)];
    for (const [what, id] of special) {
      if (id >= vocab) {
        throw new LscError(`the ${what} token id ${id} (from the tokenizer or config files) is outside the model's vocabulary 0..${vocab - 1}`,
          { file: this.file }, hint);
      }
    }
    const padded = Math.ceil(size / EMBEDDING_PAD_MULTIPLE) * EMBEDDING_PAD_MULTIPLE;
    if (vocab > padded) {
      throw new LscError(`tokenizer.json has ${size} ids but config.json's vocab_size is ${vocab}: ids ${size}..${vocab - 1} the model can `
        + `generate would have no text (${rule}, here ${padded})`, { file: this.file }, hint);
    }
  }

  /** With BOS as the model expects; a BOS already written in the text is not doubled. */
  encode(text: string): number[] {
    const bos = this.bosId;
    if (this.addBos === undefined) {
      const ids = this.tok.encode(text).ids;
      if (this.templateAddsBos && ids[1] === bos) ids.shift();
      return ids;
    }
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    if (this.addBos && ids[0] !== bos) ids.unshift(bos!);
    if (this.addEosId !== undefined) ids.push(this.addEosId);
    return ids;
  }

  decode(ids: number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return ''; // the library throws on an empty list
    return this.tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? true });
  }

  /** The raw vocabulary piece (e.g. "▁def", "<0x0A>", "Ġthe"); '' for an id with none. */
  tokenText(id: number): string {
    return this.tok.id_to_token(id) ?? '';
  }
}
