/**
 * Checks that config.json and the checkpoint describe the same model, from the safetensors
 * headers alone (names and shapes, no data): the layer count and the embedding's shape before
 * the graph is built, and, once the plan is known, that no checkpoint tensor would be silently
 * ignored.
 */
import { LscError } from '../compiler/errors.js';
import type { Plan } from '../compiler/plan.js';
import type { LlamaHfConfig } from '../compiler/builder/hf-config.js';
import type { WeightSource } from './weight-source.js';

/**
 * Tensors a checkpoint may hold that lsc deliberately does not use. The one place they are
 * listed (README's Models section names them too); anything else unused is an error.
 */
export const HARMLESS_EXTRA_TENSORS: readonly { pattern: RegExp; why: string }[] = [
  // older transformers versions saved the RoPE frequencies; lsc computes them from config.json
  { pattern: /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/, why: 'RoPE frequencies, computed from config.json' },
];

export function isHarmlessExtra(name: string): boolean {
  return HARMLESS_EXTRA_TENSORS.some((h) => h.pattern.test(name));
}

const LAYER_TENSOR = /^model\.layers\.(\d+)\./;

/** Layer index of a `model.layers.N.` tensor (harmless extras excluded), else undefined. */
function layerOf(name: string): number | undefined {
  const m = LAYER_TENSOR.exec(name);
  return m && !isHarmlessExtra(name) ? Number(m[1]) : undefined;
}

function range(a: number, b: number): string {
  return a === b ? `${a}` : `${a}..${b}`;
}

/**
 * config.json against the checkpoint's headers, before the graph is built (a config claiming a
 * million layers or a million-wide hidden state would otherwise build and compile that model):
 * num_hidden_layers against the `model.layers.N.*` tensors, and vocab_size and hidden_size
 * against the embedding's shape. Names a checkpoint lacks (a graph file with its own naming)
 * are left to the per-tensor check against the plan.
 */
export function checkConfigAgainstCheckpoint(ckpt: WeightSource, config: LlamaHfConfig, configFile: string): void {
  const hint = 'use the config.json published with the checkpoint';
  const embed = ckpt.get('model.embed_tokens.weight');
  if (embed && embed.shape.length === 2) {
    for (const [i, key] of [[0, 'vocab_size'], [1, 'hidden_size']] as const) {
      if (embed.shape[i] !== config[key]) {
        throw new LscError(`config.json says ${key} ${config[key]} but the checkpoint's model.embed_tokens.weight has shape [${embed.shape.join(', ')}]`,
          { file: configFile, pointer: `/${key}` }, `set ${key} to ${embed.shape[i]}, or ${hint}`);
      }
    }
  }
  const layers = config.num_hidden_layers;
  let max = -1;
  for (const name of ckpt.tensors.keys()) {
    const l = layerOf(name);
    if (l !== undefined && l > max) max = l;
  }
  if (max < 0 || max + 1 === layers) return;
  const where = { file: configFile, pointer: '/num_hidden_layers' };
  const fix = `set num_hidden_layers to ${max + 1}, or ${hint}`;
  const says = `config.json says ${layers} layers (num_hidden_layers) but the checkpoint in ${ckpt.dir} has tensors for layers 0..${max}`;
  if (max + 1 < layers) throw new LscError(says, where, fix);
  throw new LscError(`${says}: the tensors of layer${max === layers ? '' : 's'} ${range(layers, max)} would be ignored`, where, fix);
}

/**
 * Every checkpoint tensor must be used by the plan (or be a harmless extra): a checkpoint with
 * more layers than config.json, or an lm_head.weight while the head is tied to the embedding,
 * would otherwise run a different model than the one on disk without a word.
 */
export function checkNoIgnoredTensors(plan: Plan, ckpt: WeightSource): void {
  const used = new Set(plan.weights.filter((w) => !w.tiedTo).map((w) => w.hf));
  const ignored = [...ckpt.tensors.keys()].filter((n) => !used.has(n) && !isHarmlessExtra(n));
  if (ignored.length === 0) return;
  // the usual case: a head tied to the embedding (tie_word_embeddings) next to its own lm_head.weight
  const tiedHead = plan.weights.find((w) => w.id === 'lm_head' && w.tiedTo);
  const headIgnored = tiedHead !== undefined && ignored.includes('lm_head.weight');
  if (headIgnored) ignored.sort((a, b) => Number(b === 'lm_head.weight') - Number(a === 'lm_head.weight'));
  const first = ignored[0];
  const list = ignored.length <= 4 ? ignored.join(', ') : `${ignored.slice(0, 4).join(', ')} and ${ignored.length - 4} more`;
  const why = headIgnored ? `: the LM head is tied to ${tiedHead.hf} (tie_word_embeddings is true in config.json)` : '';
  const hint = headIgnored
    ? 'set tie_word_embeddings to false in config.json if the checkpoint has its own LM head, or remove lm_head.weight'
    : 'use the config.json published with the checkpoint (or the graph built from it), or remove the tensors from the checkpoint';
  throw new LscError(`the checkpoint holds ${ignored.length} tensor${ignored.length === 1 ? '' : 's'} the model would ignore (${list})${why}`,
    { file: ckpt.files.length === 1 ? ckpt.files[0] : ckpt.dir, tensor: first }, hint);
}

