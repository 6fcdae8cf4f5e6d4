import { LscError } from '../errors.js';
import { BOUNDS, checkBound } from '../ir/bounds.js';

/** The fields of a Hugging Face LlamaConfig that lsc reads. */
export interface LlamaHfConfig {
  model_type: string;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  vocab_size: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: Record<string, unknown> | null;
  max_position_embeddings: number;
  hidden_act: string;
  tie_word_embeddings: boolean;
  bos_token_id?: number;
  eos_token_id: number[];
  attention_bias: boolean;
  mlp_bias: boolean;
}

/** A value as a message shows it: numbers as JavaScript prints them (JSON would print Infinity as null). */
const show = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v));

/** Reads and checks a config.json object; `file` is named in errors. */
export function parseLlamaConfig(raw: unknown, file = 'config.json'): LlamaHfConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new LscError('config.json must be a JSON object', { file });
  }
  const c = raw as Record<string, unknown>;
  const field = (key: string): unknown => (Object.hasOwn(c, key) ? c[key] : undefined);
  const HINT = 'use the config.json published with the checkpoint';
  /** A positive integer at most `max` (BOUNDS: checked before any size is computed from it). */
  const int = (key: string, max: number, fallback?: number): number => {
    const v = field(key) ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new LscError(`'${key}' must be a positive integer, got ${show(v)}`, { file, pointer: `/${key}` }, HINT);
    }
    checkBound(`'${key}'`, v, max, { file, pointer: `/${key}` });
    return v;
  };
  /** A finite number in (0, max] (JSON's 1e999 parses as Infinity). */
  const num = (key: string, fallback: number, max = Number.MAX_VALUE): number => {
    const v = field(key) ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0) || v > max) {
      throw new LscError(`'${key}' must be a positive number${max < Number.MAX_VALUE ? ` at most ${max}` : ''}, got ${show(v)}`,
        { file, pointer: `/${key}` }, HINT);
    }
    return v;
  };
  const tokenId = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const modelType = field('model_type') ?? 'llama';
  if (modelType !== 'llama') {
    throw new LscError(`model_type '${String(modelType)}' is not supported; lsc runs Llama-architecture models`,
      { file, pointer: '/model_type' });
  }
  const act = field('hidden_act') ?? 'silu';
  if (act !== 'silu') {
    throw new LscError(`hidden_act '${String(act)}' is not supported (only silu)`, { file, pointer: '/hidden_act' });
  }
  for (const key of ['attention_bias', 'mlp_bias']) {
    if (field(key) === true) throw new LscError(`'${key}: true' is not supported`, { file, pointer: `/${key}` });
  }
  const heads = int('num_attention_heads', BOUNDS.heads);
  const hidden = int('hidden_size', BOUNDS.hidden);
  const kvHeads = int('num_key_value_heads', BOUNDS.heads, heads);
  if (heads % kvHeads !== 0) {
    throw new LscError(`num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`,
      { file, pointer: '/num_key_value_heads' });
  }
  // kernels read activations and f16 weights four values at a time
  if (hidden % 4 !== 0) throw new LscError(`hidden_size ${hidden} must be a multiple of 4`, { file, pointer: '/hidden_size' }, HINT);
  const headDimAt = field('head_dim') == null ? '/hidden_size' : '/head_dim';
  const headDim = field('head_dim') == null ? hidden / heads : int('head_dim', BOUNDS.headDim);
  if (!Number.isInteger(headDim) || headDim % 4 !== 0) {
    throw new LscError(`head dimension ${headDim} must be an integer multiple of 4`, { file, pointer: headDimAt }, HINT);
  }
  checkBound('head dimension', headDim, BOUNDS.headDim, { file, pointer: headDimAt });
  const layers = int('num_hidden_layers', BOUNDS.layers);
  if (layers < 2) {
    throw new LscError(`num_hidden_layers ${layers}: lsc needs at least 2 layers (an exit layer and one above it)`,
      { file, pointer: '/num_hidden_layers' });
  }
  const eosRaw = field('eos_token_id');
  const eos = eosRaw == null ? [] : Array.isArray(eosRaw) ? eosRaw : [eosRaw];
  if (!eos.every(tokenId)) {
    throw new LscError('eos_token_id must be a token id (an integer ≥ 0) or a list of them', { file, pointer: '/eos_token_id' });
  }
  const bos = field('bos_token_id');
  if (bos != null && !tokenId(bos)) {
    throw new LscError(`bos_token_id must be a token id (an integer ≥ 0) or null, got ${show(bos)}`, { file, pointer: '/bos_token_id' });
  }
  const scaling = field('rope_scaling') ?? null;
  if (scaling !== null && (typeof scaling !== 'object' || Array.isArray(scaling))) {
    throw new LscError('rope_scaling must be an object or null', { file, pointer: '/rope_scaling' });
  }
  if (scaling) checkRopeScaling(scaling as Record<string, unknown>, file);
  return {
    model_type: 'llama',
    hidden_size: hidden,
    intermediate_size: int('intermediate_size', BOUNDS.ffn),
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    vocab_size: int('vocab_size', BOUNDS.vocab),
    rms_norm_eps: num('rms_norm_eps', 1e-6, 1),
    rope_theta: num('rope_theta', 10000),
    rope_scaling: scaling as Record<string, unknown> | null,
    // only min(this, --ctx or 4096) positions are reserved: any exact integer will do
    max_position_embeddings: int('max_position_embeddings', Number.MAX_SAFE_INTEGER, 2048),
    hidden_act: 'silu',
    tie_word_embeddings: field('tie_word_embeddings') === true,
    bos_token_id: typeof bos === 'number' ? bos : undefined,
    eos_token_id: eos as number[],
    attention_bias: false,
    mlp_bias: false,
  };
}

/**
 * rope_scaling as Hugging Face reads it (`rope_type`, or the older `type`): llama3 and linear
 * scale the RoPE frequencies, default is none. Every factor is a finite positive number, and
 * llama3 interpolates between low_freq_factor and a larger high_freq_factor.
 */
function checkRopeScaling(s: Record<string, unknown>, file: string): void {
  const get = (k: string): unknown => (Object.hasOwn(s, k) ? s[k] : undefined);
  const type = get('rope_type') ?? get('type');
  const at = (k: string): string => `/rope_scaling/${k}`;
  const num = (k: string): number => {
    const v = get(k);
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0)) {
      throw new LscError(`rope_scaling.${k} must be a positive number, got ${show(v)}`, { file, pointer: at(k) },
        'use the config.json published with the checkpoint');
    }
    return v;
  };
  if (type === 'llama3') {
    num('factor');
    num('original_max_position_embeddings');
    const low = num('low_freq_factor');
    const high = num('high_freq_factor');
    if (!(high > low)) {
      throw new LscError(`rope_scaling.high_freq_factor (${high}) must be larger than low_freq_factor (${low})`, { file, pointer: at('high_freq_factor') });
    }
  } else if (type === 'linear') {
    num('factor');
  } else if (type !== 'default') {
    throw new LscError(`rope_scaling type ${JSON.stringify(type)} is not supported (llama3, linear, default)`,
      { file, pointer: at(get('rope_type') !== undefined ? 'rope_type' : 'type') });
  }
}
