import fs from 'node:fs';
import { LscError } from '../compiler/errors.js';
import type { WeightSource } from './weight-source.js';
import type { TensorEntry } from './safetensors-header.js';
import { parseLlamaConfig, type LlamaHfConfig } from '../compiler/builder/hf-config.js';
import type { MatrixFormat } from '../compiler/ir/weight-formats.js';
import type { Graph } from '../compiler/ir/graph.js';
import { gatheredDecls } from '../compiler/ir/weights-spec.js';
import { f16BitsToF32, f32ToF16Bits } from './dtype-convert.js';
import { GgufFile, ggmlRowBytes, quantOfType, type GgmlType, type GgufTensor } from './gguf.js';
import { blocksToQuant } from './quant/gguf-blocks.js';
import { dequantizeRows } from './quant/quantize.js';

/**
 * A Llama GGUF file (llama.cpp's tensor names and metadata) as lsc's loader sees a Hugging Face
 * checkpoint: HF tensor names, a config.json equivalent, rows read as f16 / f32 (Q8_0 and Q4_0
 * dequantized: quantizing them again while loading gives back the same blocks). llama.cpp stores
 * the q/k projection rows of each head interleaved (its converter permutes them for its RoPE);
 * rows are read back in Hugging Face order.
 */

/** llama.cpp's tensor name for a Hugging Face Llama tensor name (undefined: not a Llama tensor). */
export function ggufTensorName(hf: string): string | undefined {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight', 'model.norm.weight': 'output_norm.weight', 'lm_head.weight': 'output.weight',
  };
  if (fixed[hf]) return fixed[hf];
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hf);
  if (!m) return undefined;
  const part: Record<string, string> = {
    input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm', 'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output', 'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
  };
  return part[m[2]] ? `blk.${m[1]}.${part[m[2]]}.weight` : undefined;
}

/** The Hugging Face name of a llama.cpp tensor name. */
export function hfTensorName(gguf: string, layers: number): string | undefined {
  for (const hf of ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']) if (ggufTensorName(hf) === gguf) return hf;
  const m = /^blk\.(\d+)\.(.+)\.weight$/.exec(gguf);
  if (!m || Number(m[1]) >= layers) return undefined;
  for (const p of ['input_layernorm', 'post_attention_layernorm', 'self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj',
    'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj']) {
    const hf = `model.layers.${m[1]}.${p}.weight`;
    if (ggufTensorName(hf) === gguf) return hf;
  }
  return undefined;
}

/**
 * Row `r` of a q/k projection in Hugging Face order lies at this row of llama.cpp's: within a head
 * of hd rows, HF row t·hd/2 + j (t: which half) is llama.cpp's row 2j + t.
 */
export function ggufRowOf(r: number, headDim: number): number {
  const h = Math.floor(r / headDim);
  const i = r % headDim;
  const t = i < headDim / 2 ? 0 : 1;
  const j = i - t * (headDim / 2);
  return h * headDim + 2 * j + t;
}

const num = (g: GgufFile, key: string, fallback?: number): number => {
  const v = g.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new LscError(`the GGUF metadata has no '${key}'`, { file: g.file }, 'use a Llama GGUF file written by llama.cpp or lsc quantize');
  }
  if (typeof v !== 'number' && typeof v !== 'bigint') throw new LscError(`GGUF metadata '${key}' is not a number`, { file: g.file }, 'use a Llama GGUF file');
  return Number(v);
};

/** The config.json a Llama GGUF file's metadata stands for. */
export function ggufLlamaConfig(g: GgufFile): LlamaHfConfig {
  const arch = g.get('general.architecture');
  if (arch !== 'llama') {
    throw new LscError(`the GGUF file's architecture is ${JSON.stringify(arch)}; lsc runs Llama models ("llama")`, { file: g.file }, 'use a Llama GGUF file');
  }
  const embed = g.tensors.get('token_embd.weight');
  if (!embed) throw new LscError("the GGUF file has no 'token_embd.weight'", { file: g.file, tensor: 'token_embd.weight' }, 'use a Llama GGUF file');
  const heads = num(g, 'llama.attention.head_count');
  const raw = {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_act: 'silu', torch_dtype: 'float16',
    hidden_size: num(g, 'llama.embedding_length'), intermediate_size: num(g, 'llama.feed_forward_length'),
    num_hidden_layers: num(g, 'llama.block_count'), num_attention_heads: heads,
    num_key_value_heads: num(g, 'llama.attention.head_count_kv', heads), vocab_size: embed.shape[0],
    rms_norm_eps: num(g, 'llama.attention.layer_norm_rms_epsilon', 1e-5), rope_theta: num(g, 'llama.rope.freq_base', 10000),
    max_position_embeddings: num(g, 'llama.context_length'), tie_word_embeddings: !g.tensors.has('output.weight'),
    bos_token_id: num(g, 'tokenizer.ggml.bos_token_id', 1), eos_token_id: num(g, 'tokenizer.ggml.eos_token_id', 2),
    attention_bias: false, mlp_bias: false,
  };
  return parseLlamaConfig(raw, g.file);
}


/** Matrix formats, widest first. */
const WIDEST: readonly MatrixFormat[] = ['f16', 'q8_0', 'q4_0'];

/** A path --model takes as a GGUF file. */
export function isGgufFile(p: string): boolean {
  return /\.gguf$/i.test(p) && fs.existsSync(p) && fs.statSync(p).isFile();
}

/** Opens a Llama GGUF file as a checkpoint with its config. */
export function openGgufModel(file: string): GgufCheckpoint {
  const g = GgufFile.open(file);
  try {
    return new GgufCheckpoint(g, ggufLlamaConfig(g));
  } catch (e) {
    g.close();
    throw e;
  }
}

/** A GGUF file read as a Hugging Face checkpoint (what runtime/weights.ts uploads from). */
export class GgufCheckpoint implements WeightSource {
  readonly dir: string;
  readonly files: string[];
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  private readonly ggufOf = new Map<string, GgufTensor>();

  constructor(readonly gguf: GgufFile, readonly config: LlamaHfConfig) {
    this.dir = gguf.file;
    this.files = [gguf.file];
    const tensors = new Map<string, TensorEntry>();
    for (const t of gguf.tensors.values()) {
      gguf.tensor(t.name); // a type lsc does not read fails here, before anything is allocated
      const hf = hfTensorName(t.name, config.num_hidden_layers);
      if (!hf) {
        if (t.name === 'rope_freqs.weight') continue; // llama 3 rope scaling factors: the graph has its own
        throw new LscError(`the GGUF file holds tensor '${t.name}', which a Llama model of ${config.num_hidden_layers} layers does not have`, { file: gguf.file, tensor: t.name },
          'use a Llama GGUF file');
      }
      // as read: F32 stays f32, the rest comes as f16 or f32 values (Q8_0 / Q4_0 dequantized)
      tensors.set(hf, { name: hf, dtype: t.type === 'F32' ? 'F32' : 'F16', shape: t.shape, file: gguf.file, dataStart: t.offset, byteLength: t.bytes });
      this.ggufOf.set(hf, t);
    }
    this.tensors = tensors;
  }

  get(name: string): TensorEntry | undefined {
    return this.tensors.get(name);
  }

  totalBytes(): number {
    return [...this.gguf.tensors.values()].reduce((a, t) => a + t.bytes, 0);
  }

  /** The matrix format of the file's layer weights (Q8_0 / Q4_0 files run quantized by default). */
  matrixFormat(): MatrixFormat {
    const t = this.ggufOf.get('model.layers.0.mlp.down_proj.weight');
    return (t?.type && quantOfType(t.type)) || 'f16';
  }

  /**
   * The graph with each matrix in its tensor's type in the file, no conversion: Q8_0 / Q4_0 as
   * themselves, F16 (and F32) as f16; `dtypes.weights` the layers' format (matrixFormat). Not the
   * embedding table (gathered as f16 rows) nor a tied weight; a declaration whose layers differ
   * takes the widest of their formats (the others are converted while loading).
   */
  withFileFormats(graph: Graph): Graph {
    const gathered = new Set(gatheredDecls(graph));
    const layers = this.config.num_hidden_layers;
    const weights = { ...graph.weights };
    for (const [name, d] of Object.entries(graph.weights)) {
      if (d.shape.length !== 2 || d.tiedTo !== undefined || gathered.has(name)) continue;
      const hfs = d.perLayer ? Array.from({ length: layers }, (_, l) => d.hf.replace('{layer}', String(l))) : [d.hf];
      const formats = hfs.flatMap((hf) => { const t = this.ggufOf.get(hf); return t?.type ? [(quantOfType(t.type) ?? 'f16') as MatrixFormat] : []; });
      if (formats.length) weights[name] = { ...d, format: WIDEST.find((f) => formats.includes(f))! };
    }
    return { ...graph, dtypes: { ...graph.dtypes, weights: this.matrixFormat() }, weights };
  }

  /** Rows [rowStart, rowStart + rowCount) in Hugging Face order, as f16 bits or f32, to onChunk at once. */
  readRows(name: string, target: 'f16' | 'f32', rowStart: number, rowCount: number, onChunk: (data: Uint16Array | Float32Array, elementOffset: number) => void): void {
    const t = this.ggufOf.get(name);
    if (!t) throw new LscError(`no tensor named '${name}' in the GGUF file`, { file: this.dir, tensor: name });
    const g = this.gguf.tensor(t.name); // its type checked
    if (t.shape.length === 1) {
      // a vector's "rows" are its elements (as in safetensors.ts)
      const all = new Float32Array(t.shape[0]);
      this.readMatrixRows(t, g.type, 0, 1, t.shape[0], all);
      const v = all.slice(rowStart, rowStart + rowCount);
      onChunk(target === 'f32' ? v : f32ToF16Bits(v), 0);
      return;
    }
    const cols = t.shape[t.shape.length - 1];
    const f32 = new Float32Array(rowCount * cols);
    this.readMatrixRows(t, g.type, rowStart, rowCount, cols, f32, /self_attn\.[qk]_proj/.test(name));
    onChunk(target === 'f32' ? f32 : f32ToF16Bits(f32), 0);
  }

  /** Rows of a tensor as f32 (q/k projections: in Hugging Face order). */
  private readMatrixRows(t: GgufTensor, type: GgmlType, rowStart: number, rowCount: number, cols: number, f32: Float32Array, permuted = false): void {
    const hd = this.config.head_dim;
    // whole heads of a permuted weight, else just the rows
    const [from, to] = permuted ? [Math.floor(rowStart / hd) * hd, Math.ceil((rowStart + rowCount) / hd) * hd] : [rowStart, rowStart + rowCount];
    const raw = this.gguf.readRows(t.name, from, to - from);
    const rb = ggmlRowBytes(type, cols);
    const rowOf = (r: number): number => (permuted ? ggufRowOf(r, hd) : r) - from;
    const q = quantOfType(type);
    for (let i = 0; i < rowCount; i++) {
      const src = raw.subarray(rowOf(rowStart + i) * rb, (rowOf(rowStart + i) + 1) * rb);
      const row = f32.subarray(i * cols, (i + 1) * cols);
      if (q) row.set(dequantizeRows(q, blocksToQuant(q, src, 1, cols), 1, cols));
      else if (type === 'F16') f16BitsToF32(new Uint16Array(src.slice().buffer), row);
      else row.set(new Float32Array(src.slice().buffer));
    }
  }

  close(): void {
    this.gguf.close();
  }
}
