/**
 * The kernel IR: what the fusion pass makes of a stage's graph nodes (one FusedKernel per
 * kernel) and what an emitter returns for one (KernelSource). The compiler's passes, the
 * kernel families in codegen/ and the plan all read these types; this module imports nothing.
 */

/** What a fused kernel has in common whatever its family: the family (codegen/registry.ts) and the graph nodes it computes. */
export interface KernelBase {
  family: string;
  nodes: string[];
}

/** What a matmul segment does with its outputs. */
export type Epilogue =
  | { kind: 'store'; out: string }
  | { kind: 'residual'; out: string; into: string }
  | { kind: 'rope'; out: string; headDim: number }
  | { kind: 'kv'; plane: 'k' | 'v'; layer: number; rope: boolean; headDim: number }
  | { kind: 'silu_mul'; out: string };

export interface Segment {
  /** One weight, or two whose rows pair up (gate/up). */
  weights: string[];
  /** none: unit n is row n; half: unit pairs rows j and j+headDim/2 of a head; zip: row n of both weights. */
  pair: 'none' | 'half' | 'zip';
  /** Output rows of each weight. */
  n: number;
  units: number;
  epilogue: Epilogue;
  nodes: string[];
}

export interface EmbedKernel extends KernelBase { family: 'embed'; out: string; table: string; vocab: number; d: number }
export interface MatmulKernel extends KernelBase { family: 'matmul'; x: string; k: number; norm?: { weight: string; eps: number }; segments: Segment[] }
export interface AttentionKernel extends KernelBase { family: 'attention'; q: string; out: string; layer: number; heads: number; kvHeads: number; headDim: number }
export interface ArgmaxKernel extends KernelBase { family: 'argmax'; x: string; out: string; n: number }

/**
 * A fused kernel of any registered family: the passes handle kernels through their family
 * (codegen/registry.ts); only the fusion rules that build matmul kernels read their fields.
 */
export type FusedKernel = KernelBase;

/** A graph node as a kernel family sees it (the fusion pass's flat nodes have this shape). */
export interface KernelNode {
  id: string;
  op: string;
  inputs: ({ kind: 'value'; id: string } | { kind: 'input'; name: string } | { kind: 'weight'; id: string })[];
  attrs: Record<string, unknown>;
  /** Layer index for nodes expanded from a block. */
  layer?: number;
  /** Where the node is declared, for error messages. */
  pointer: string;
}

/**
 * Bindings of a kernel, in order; binding 0 of every kernel is the `Range` uniform (one slot of
 * the range table, bound at a static offset) that tells which activation rows a dispatch works
 * on, so one pipeline serves decode, draft and verify. A `ranges` binding is the whole range table
 * as storage: the acceptance kernel (codegen/accept.ts) writes the positions of the stages encoded
 * after it.
 */
export type BindingType = 'range' | 'params' | 'seq' | 'read' | 'rw' | 'ranges';

export interface BindingDecl {
  name: string;
  type: BindingType;
}

/** Launch size per dimension: a constant, or a count that grows with the dispatch's rows. */
export type GridDim = number | { perRow: number; rowsPerGroup?: number };

/** Workgroups along a grid dimension for `rows` rows: perRow per group of rowsPerGroup (default 1) rows. */
export function gridSize(g: GridDim, rows: number): number {
  return typeof g === 'number' ? g : g.perRow * Math.ceil(rows / (g.rowsPerGroup ?? 1));
}

/** What every kernel emitter returns: WGSL plus the binding layout and launch shape. */
export interface KernelSource {
  family: string;
  /** Human-readable name, e.g. "matmul_norm_qkv_rope". */
  name: string;
  wgsl: string;
  workgroupSize: number;
  bindings: BindingDecl[];
  /** Fields of the static `Params` uniform, in order (u32 each). */
  params: string[];
  grid: [GridDim, GridDim, GridDim];
  /** Tuning choices this source was generated with. */
  config: Record<string, number>;
  /** WebGPU features the shader needs (shader-f16, subgroups). */
  features: string[];
}
