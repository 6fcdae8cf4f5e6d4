import { LscError } from '../errors.js';

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

/** Reads and checks a config.json object; `file` is named in errors. */
export function parseLlamaConfig(raw: unknown, file = 'config.json'): LlamaHfConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new LscError('config.json must be a JSON object', { file });
  }
  const c = raw as Record<string, unknown>;
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new LscError(`'${key}' must be a positive integer, got ${JSON.stringify(v)}`,
        { file, pointer: `/${key}` }, 'use the config.json published with the checkpoint');
    }
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0)) {
      throw new LscError(`'${key}' must be a positive number, got ${JSON.stringify(v)}`, { file, pointer: `/${key}` });
    }
    return v;
  };
  const modelType = c.model_type ?? 'llama';
  if (modelType !== 'llama') {
    throw new LscError(`model_type '${String(modelType)}' is not supported; lsc runs Llama-architecture models`,
      { file, pointer: '/model_type' });
  }
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') {
    throw new LscError(`hidden_act '${String(act)}' is not supported (only silu)`, { file, pointer: '/hidden_act' });
  }
  for (const key of ['attention_bias', 'mlp_bias']) {
    if (c[key] === true) throw new LscError(`'${key}: true' is not supported`, { file, pointer: `/${key}` });
  }
  const heads = int('num_attention_heads');
  const hidden = int('hidden_size');
  const kvHeads = int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) {
    throw new LscError(`num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`,
      { file, pointer: '/num_key_value_heads' });
  }
  const headDim = c.head_dim == null ? hidden / heads : int('head_dim');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new LscError(`head dimension ${headDim} must be an even integer`, { file, pointer: '/head_dim' });
  }
  const eosRaw = c.eos_token_id;
  const eos = eosRaw == null ? [] : Array.isArray(eosRaw) ? eosRaw : [eosRaw];
  if (!eos.every((e) => Number.isInteger(e))) {
    throw new LscError('eos_token_id must be an integer or a list of integers', { file, pointer: '/eos_token_id' });
  }
  const bos = c.bos_token_id;
  const scaling = c.rope_scaling ?? null;
  if (scaling !== null && (typeof scaling !== 'object' || Array.isArray(scaling))) {
    throw new LscError('rope_scaling must be an object or null', { file, pointer: '/rope_scaling' });
  }
  return {
    model_type: 'llama',
    hidden_size: hidden,
    intermediate_size: int('intermediate_size'),
    num_hidden_layers: int('num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    vocab_size: int('vocab_size'),
    rms_norm_eps: num('rms_norm_eps', 1e-6),
    rope_theta: num('rope_theta', 10000),
    rope_scaling: scaling as Record<string, unknown> | null,
    max_position_embeddings: int('max_position_embeddings', 2048),
    hidden_act: 'silu',
    tie_word_embeddings: c.tie_word_embeddings === true,
    bos_token_id: typeof bos === 'number' ? bos : undefined,
    eos_token_id: eos as number[],
    attention_bias: false,
    mlp_bias: false,
  };
}
