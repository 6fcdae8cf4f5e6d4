import type { Graph, NodeDecl, RopeConfig, WeightDecl } from '../ir/graph.js';
import { LscError } from '../errors.js';
import type { LlamaHfConfig } from './hf-config.js';

export interface BuildOptions {
  name: string;
  /** Context length the plan reserves KV for; default min(max_position_embeddings, 4096). */
  ctx?: number;
  /** Largest number of speculated tokens per round the plan supports. */
  kMax?: number;
  exitCandidates?: number[];
  exitLayer?: number;
  numSpeculations?: number;
}

export const BUILDER_ID = 'lsc/llama@1';

/** Exit layers worth compiling: every layer for small models, every other one up to L/2 for big ones. */
export function defaultExitCandidates(layers: number): number[] {
  if (layers <= 16) return Array.from({ length: layers - 1 }, (_, i) => i + 1);
  const out: number[] = [];
  for (let e = 2; e <= layers / 2; e += 2) out.push(e);
  return out;
}

function ropeConfig(c: LlamaHfConfig): RopeConfig {
  const s = c.rope_scaling;
  const base: RopeConfig = { theta: c.rope_theta, style: 'rotate_half' };
  if (!s) return base;
  const type = s.rope_type ?? s.type;
  const num = (k: string): number => {
    const v = s[k];
    if (typeof v !== 'number') {
      throw new LscError(`rope_scaling.${k} must be a number`, { file: 'config.json', pointer: `/rope_scaling/${k}` });
    }
    return v;
  };
  if (type === 'llama3') {
    return {
      ...base,
      scaling: {
        type: 'llama3', factor: num('factor'), lowFreqFactor: num('low_freq_factor'),
        highFreqFactor: num('high_freq_factor'), originalMaxPositionEmbeddings: num('original_max_position_embeddings'),
      },
    };
  }
  if (type === 'linear') return { ...base, scaling: { type: 'linear', factor: num('factor') } };
  if (type === 'default') return base;
  throw new LscError(`rope_scaling type '${String(type)}' is not supported (llama3, linear)`,
    { file: 'config.json', pointer: '/rope_scaling' });
}

const layerWeight = (hf: string, shape: (string | number)[]): WeightDecl => ({
  hf: `model.layers.{layer}.${hf}`, shape, perLayer: true,
});

/** The decoder block of HF LlamaDecoderLayer, one IR node per operation. */
function decoderNodes(eps: number): NodeDecl[] {
  const attn = { heads: 'heads', kvHeads: 'kvHeads', headDim: 'headDim', causal: true, kvCache: 'layer' };
  return [
    { id: 'h', op: 'rms_norm', in: ['x', '@attn_norm'], attrs: { eps } },
    { id: 'q', op: 'matmul', in: ['h', '@wq'] },
    { id: 'k', op: 'matmul', in: ['h', '@wk'] },
    { id: 'v', op: 'matmul', in: ['h', '@wv'] },
    { id: 'q_rot', op: 'rope', in: ['q'], attrs: { heads: 'heads', headDim: 'headDim' } },
    { id: 'k_rot', op: 'rope', in: ['k'], attrs: { heads: 'kvHeads', headDim: 'headDim' } },
    { id: 'attn', op: 'attention', in: ['q_rot', 'k_rot', 'v'], attrs: attn },
    { id: 'o', op: 'matmul', in: ['attn', '@wo'] },
    { id: 'x1', op: 'add', in: ['x', 'o'] },
    { id: 'h2', op: 'rms_norm', in: ['x1', '@ffn_norm'], attrs: { eps } },
    { id: 'gate', op: 'matmul', in: ['h2', '@w_gate'] },
    { id: 'up', op: 'matmul', in: ['h2', '@w_up'] },
    { id: 'act', op: 'silu', in: ['gate'] },
    { id: 'mlp', op: 'mul', in: ['act', 'up'] },
    { id: 'down', op: 'matmul', in: ['mlp', '@w_down'] },
    { id: 'y', op: 'add', in: ['x1', 'down'] },
  ];
}

/** Builds the lsc graph of a Hugging Face Llama checkpoint from its (parsed) config.json. */
export function buildLlamaGraph(c: LlamaHfConfig, opts: BuildOptions): Graph {
  const L = c.num_hidden_layers;
  const ctx = opts.ctx ?? Math.min(c.max_position_embeddings, 4096);
  const kMax = opts.kMax ?? 8;
  const candidates = opts.exitCandidates ?? defaultExitCandidates(L);
  // default exit: the candidate nearest a quarter of the depth (LayerSkip's llama2-7B pick is 8 of 32)
  const quarter = Math.max(1, Math.round(L / 4));
  const exitLayer = opts.exitLayer ?? candidates.reduce((b, c) => (Math.abs(c - quarter) < Math.abs(b - quarter) ? c : b));
  const k = opts.numSpeculations ?? Math.min(3, kMax);
  const weights: Record<string, WeightDecl> = {
    embed: { hf: 'model.embed_tokens.weight', shape: ['vocab', 'd'] },
    attn_norm: layerWeight('input_layernorm.weight', ['d']),
    wq: layerWeight('self_attn.q_proj.weight', ['qDim', 'd']),
    wk: layerWeight('self_attn.k_proj.weight', ['kvDim', 'd']),
    wv: layerWeight('self_attn.v_proj.weight', ['kvDim', 'd']),
    wo: layerWeight('self_attn.o_proj.weight', ['d', 'qDim']),
    ffn_norm: layerWeight('post_attention_layernorm.weight', ['d']),
    w_gate: layerWeight('mlp.gate_proj.weight', ['ffn', 'd']),
    w_up: layerWeight('mlp.up_proj.weight', ['ffn', 'd']),
    w_down: layerWeight('mlp.down_proj.weight', ['d', 'ffn']),
    final_norm: { hf: 'model.norm.weight', shape: ['d'] },
    lm_head: c.tie_word_embeddings
      ? { hf: 'model.embed_tokens.weight', shape: ['vocab', 'd'], tiedTo: 'embed' }
      : { hf: 'lm_head.weight', shape: ['vocab', 'd'] },
  };
  return {
    format: 'lsc.graph/1',
    name: opts.name,
    source: { builder: BUILDER_ID, hfConfig: { ...c } as unknown as Record<string, unknown> },
    dims: {
      vocab: c.vocab_size, d: c.hidden_size, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads,
      headDim: c.head_dim, ffn: c.intermediate_size, layers: L,
      qDim: 'heads*headDim', kvDim: 'kvHeads*headDim',
      ctx: { max: ctx, doc: 'positions held in the KV cache' },
      T: { max: 'ctx', doc: 'token rows processed in one step' },
      k: { max: kMax, doc: 'draft tokens per speculation round' },
    },
    dtypes: { weights: 'f16', activations: 'f32', kv: 'f16', accumulate: 'f32' },
    rope: ropeConfig(c),
    tokens: { ...(c.bos_token_id !== undefined ? { bos: c.bos_token_id } : {}), eos: c.eos_token_id },
    inputs: { tokens: { shape: ['T'], dtype: 'i32' } },
    weights,
    blocks: { decoder: { in: { x: ['T', 'd'] }, nodes: decoderNodes(c.rms_norm_eps), out: 'y' } },
    body: [
      { id: 'x0', op: 'embed', in: ['tokens', '@embed'] },
      { id: 'trunk', op: 'repeat', block: 'decoder', layers: [0, 'layers'], in: ['x0'] },
      { id: 'final', op: 'rms_norm', in: ['trunk', '@final_norm'], attrs: { eps: c.rms_norm_eps } },
      { id: 'logits', op: 'matmul', in: ['final', '@lm_head'] },
      { id: 'next', op: 'argmax', in: ['logits'] },
    ],
    outputs: ['logits', 'next'],
    exit: { op: 'exit_point', trunk: 'trunk', candidates, head: ['final', 'logits', 'next'] },
    verify: {
      op: 'verify_subgraph', trunk: 'trunk', layers: ['E', 'layers'], positions: 'k+1',
      from: 'exit_query_cache', head: ['final', 'logits', 'next'],
    },
    defaults: { exitLayer, numSpeculations: k, prefillChunk: 64 },
  };
}
