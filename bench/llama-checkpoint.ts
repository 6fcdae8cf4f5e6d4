/**
 * The Hugging Face Llama checkpoint layout, for tools that write checkpoints (the random models of
 * the tests, the streamed GB-sized ones of bench/load-memory.ts and the 7B-geometry test): tensor
 * names and shapes, config.json defaults, the tokenizer files, sharding.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const TINY_CODE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'models', 'tiny-code');

/** The config.json fields that fix a Llama checkpoint's tensors (HF LlamaConfig names). */
export interface LlamaShapeConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  head_dim?: number;
  vocab_size: number;
  tie_word_embeddings?: boolean;
}

/** A config.json: the shape fields plus whatever else goes into the file. */
export type LlamaConfigJson = LlamaShapeConfig & { [key: string]: unknown };

/** HF tensor names and shapes of a Llama checkpoint, in the order HF writes them. */
export function llamaTensorShapes(c: LlamaShapeConfig): [string, number[]][] {
  const d = c.hidden_size, ffn = c.intermediate_size, V = c.vocab_size;
  const hd = c.head_dim ?? d / c.num_attention_heads;
  const q = c.num_attention_heads * hd, kv = (c.num_key_value_heads ?? c.num_attention_heads) * hd;
  const out: [string, number[]][] = [['model.embed_tokens.weight', [V, d]]];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [p + 'input_layernorm.weight', [d]],
      [p + 'self_attn.q_proj.weight', [q, d]],
      [p + 'self_attn.k_proj.weight', [kv, d]],
      [p + 'self_attn.v_proj.weight', [kv, d]],
      [p + 'self_attn.o_proj.weight', [d, q]],
      [p + 'post_attention_layernorm.weight', [d]],
      [p + 'mlp.gate_proj.weight', [ffn, d]],
      [p + 'mlp.up_proj.weight', [ffn, d]],
      [p + 'mlp.down_proj.weight', [d, ffn]],
    );
  }
  out.push(['model.norm.weight', [d]]);
  if (!c.tie_word_embeddings) out.push(['lm_head.weight', [V, d]]);
  return out;
}

/**
 * The bundled model's tokenizer files, so random checkpoints load like real ones; resized to
 * `vocab` ids when given (loading checks that tokenizer and vocab_size agree): truncated (merges
 * that need a dropped piece go too), or extended with pieces no merge reaches.
 */
export function copyTinyTokenizer(dir: string, vocab?: number): void {
  fs.copyFileSync(path.join(TINY_CODE, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  const tj = JSON.parse(fs.readFileSync(path.join(TINY_CODE, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
    added_tokens: { id: number }[];
  };
  const size = Object.keys(tj.model.vocab).length;
  if (vocab !== undefined && vocab !== size) {
    const kept = Object.entries(tj.model.vocab).filter(([, id]) => id < vocab);
    for (let id = size; id < vocab; id++) kept.push([`<unused_${id}>`, id]);
    tj.model.vocab = Object.fromEntries(kept);
    tj.model.merges = tj.model.merges.filter((m) => {
      const [a, b] = typeof m === 'string' ? m.split(' ') : m;
      const has = (piece: string) => Object.hasOwn(tj.model.vocab, piece);
      return has(a) && has(b) && has(a + b);
    });
    tj.added_tokens = tj.added_tokens.filter((t) => t.id < vocab);
  }
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
}

/** config.json of a Llama checkpoint: HF defaults for the fields `config` leaves out. */
export function llamaConfigWithDefaults<C extends LlamaConfigJson>(config: C, dtype: 'F16' | 'BF16' | 'F32', maxPositions = 1024): C {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: maxPositions,
    bos_token_id: 1,
    eos_token_id: 2,
    tie_word_embeddings: false,
    attention_bias: false,
    mlp_bias: false,
    torch_dtype: { F16: 'float16', BF16: 'bfloat16', F32: 'float32' }[dtype],
    ...config,
  };
}

/** Greedy sharding: a new shard starts when the next item would push a non-empty one past shardBytes. */
export function groupIntoShards<T>(items: T[], bytesOf: (t: T) => number, shardBytes: number): T[][] {
  const shards: T[][] = [];
  let size = 0;
  for (const t of items) {
    const n = bytesOf(t);
    if (shards.length === 0 || (size > 0 && size + n > shardBytes)) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += n;
  }
  return shards;
}
