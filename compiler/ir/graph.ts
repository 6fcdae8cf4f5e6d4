import type { MatrixFormat } from './weight-formats.js';
/**
 * The graph file format (lsc.graph/1): a model as typed dataflow IR. Shapes are lists of dims;
 * a dim is a number, the name of an entry in `dims`, or a product of those ("heads*headDim").
 * Symbolic dims (`{ "max": ... }`) vary per step and carry an upper bound for planning.
 */
export type DimExpr = number | string;
export type Shape = DimExpr[];

export type DType = 'f32' | 'f16' | 'i32';

export interface SymbolicDim {
  max: DimExpr;
  /** What the dim counts, for people reading the graph. */
  doc?: string;
}

export interface GraphDtypes {
  /**
   * Format of the weight matrices the matmuls read (compiler/ir/weight-formats.ts): the embedding
   * table stays f16, the LM head takes HEAD_FORMAT (q4_0: q8_0), a declaration's `format` overrides.
   */
  weights: MatrixFormat;
  activations: 'f32';
  kv: 'f16' | 'f32';
  accumulate: 'f32';
}

export interface WeightDecl {
  /** Hugging Face tensor name; `{layer}` is replaced by the layer index for per-layer weights. */
  hf: string;
  shape: Shape;
  perLayer?: boolean;
  /** This weight is stored in another weight's tensor (tied embeddings). */
  tiedTo?: string;
  /**
   * This matrix's format on the GPU, overriding `dtypes.weights` (and the LM head's default,
   * compiler/ir/weight-formats.ts HEAD_FORMAT) for every layer's instance; matrices only.
   */
  format?: MatrixFormat;
}

export interface RopeConfig {
  theta: number;
  /** rotate_half pairs element i with i + headDim/2 (Hugging Face Llama q/k layout). */
  style: 'rotate_half';
  scaling?: {
    type: 'llama3';
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  } | {
    type: 'linear';
    factor: number;
  };
}

/** Operators of the IR. `@name` inputs refer to weights. */
export type OpName =
  | 'embed'          // tokens[T] i32, @table[vocab,d] -> [T,d]
  | 'rms_norm'       // x[T,n], @g[n] -> [T,n]                     attrs: eps
  | 'matmul'         // x[T,k], @w[n,k] -> [T,n]   (x · wᵀ, HF layout)
  | 'rope'           // x[T,h*hd] -> same                          attrs: heads, headDim
  | 'attention'      // q[T,H*hd], k[T,Hkv*hd], v[T,Hkv*hd] -> [T,H*hd]  attrs: heads, kvHeads, headDim, causal, kvCache
  | 'add' | 'mul'    // element-wise, same shape
  | 'silu'           // element-wise
  | 'argmax'         // x[T,n] -> [T] i32
  | 'repeat';        // a block applied to layers [from, to)

/** A node input naming a weight declaration: `@name` (anything else names a value or a graph input). */
export function weightRef(input: string): string | undefined {
  return input.startsWith('@') ? input.slice(1) : undefined;
}

/** The weight declarations a node reads, in input order. */
export function weightRefs(n: Pick<NodeDecl, 'in'>): string[] {
  return n.in.flatMap((i) => { const w = weightRef(i); return w === undefined ? [] : [w]; });
}

export interface NodeDecl {
  id: string;
  op: OpName;
  in: string[];
  attrs?: Record<string, unknown>;
  /** `repeat` only */
  block?: string;
  layers?: [DimExpr, DimExpr];
  doc?: string;
}

export interface BlockDecl {
  /** Inputs of the block with their shapes; the first is carried from layer to layer. */
  in: Record<string, Shape>;
  nodes: NodeDecl[];
  /** The node whose value leaves the block (and enters the next layer). */
  out: string;
}

/** Early exit after layer E: the trunk state goes through the head nodes (shared final norm + LM head). */
export interface ExitPointDecl {
  op: 'exit_point';
  /** The repeat node whose per-layer output can exit. */
  trunk: string;
  candidates: number[];
  /** Body nodes from the trunk output to the logits, applied to the exit state as well. */
  head: string[];
}

/**
 * Verification: layers [from, to) over the k+1 positions of a round, `from` an expression over the
 * exit layer E. ["E", "layers"] from the exit query cache (the drafts' state after layer E-1), or
 * ["0", "layers"] from the embedding (every layer recomputed); see passes/entry-points.ts.
 */
export interface VerifySubgraphDecl {
  op: 'verify_subgraph';
  trunk: string;
  layers: [DimExpr, DimExpr];
  /** "k+1": the k drafts and the token before them. */
  positions: string;
  /** What verify starts from; must agree with `layers`. */
  from: 'exit_query_cache' | 'embedding';
  head: string[];
}

export interface Graph {
  format: 'lsc.graph/1';
  name: string;
  doc?: string;
  /** Where the graph came from (for graphs built from a config.json). */
  source?: { hfConfig?: Record<string, unknown>; builder?: string };
  dims: Record<string, DimExpr | SymbolicDim>;
  dtypes: GraphDtypes;
  rope: RopeConfig;
  tokens: { bos?: number; eos: number[] };
  inputs: Record<string, { shape: Shape; dtype: DType }>;
  weights: Record<string, WeightDecl>;
  blocks: Record<string, BlockDecl>;
  body: NodeDecl[];
  outputs: string[];
  exit: ExitPointDecl;
  verify: VerifySubgraphDecl;
  defaults: { exitLayer: number; numSpeculations: number; prefillChunk?: number };
}
