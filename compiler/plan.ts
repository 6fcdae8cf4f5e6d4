import type { GraphDtypes, RopeConfig } from './ir/graph.js';
import type { KernelSource } from './ir/kernel.js';
import type { WeightFormat } from './ir/weight-formats.js';
import type { RowRange } from './passes/entry-points.js';
import type { EntryKind, StageRole } from './ir/stages.js';

/**
 * The compiled plan: plain data, written as plan.json next to kernels/*.wgsl. The runtime needs
 * nothing else (plus weights) to run every entry point.
 */
export type BufferKind = 'weight' | 'kv' | 'activation' | 'io' | 'constant';

export interface PlanBuffer {
  id: string;
  kind: BufferKind;
  bytes: number;
  /** What lives here, for people (values, tensor rows, ...). */
  doc: string;
}

export interface WeightChunk {
  buffer: string;
  rowStart: number;
  rowCount: number;
}

export interface PlanWeight {
  /** Weight instance id, e.g. "wq.3". */
  id: string;
  /** Hugging Face tensor name. */
  hf: string;
  shape: number[];
  /** Format on the GPU (norm vectors f32, matrices f16 or a block format: compiler/ir/weight-formats.ts). */
  gpuDtype: WeightFormat;
  /** Row slices, each its own buffer, so no binding exceeds maxStorageBufferBindingSize. */
  chunks: WeightChunk[];
  /** Shares the buffers of this weight (tied embeddings). */
  tiedTo?: string;
}

/** A kernel of the plan: its source description without the WGSL text, which lives in `file`. */
export interface PlanKernel extends Omit<KernelSource, 'wgsl'> {
  id: string;
  /** Relative path of the WGSL file in the artifact. */
  file: string;
  /** Graph nodes this kernel computes in its first use (for inspect). */
  fused: string[];
}

export interface PlanDispatch {
  kernel: string;
  /** Buffer id for each non-uniform binding, in binding order. */
  buffers: string[];
  /** Values of the kernel's Params uniform. */
  params: number[];
  /** Graph nodes computed by this dispatch. */
  nodes: string[];
}

export interface PlanStage {
  /** For people; the runtime finds stages by role (compiler/ir/stages.ts). */
  name: string;
  role: StageRole;
  range: RowRange;
  dispatches: PlanDispatch[];
}

export interface PlanEntry {
  /** For people; the runtime finds entries by kind and exit layer (compiler/ir/stages.ts). */
  name: string;
  kind: EntryKind;
  exitLayer?: number;
  stepped: boolean;
  kvLayers: [number, number];
  stages: PlanStage[];
}

export interface PlanLimits {
  maxStorageBufferBindingSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxBufferSize: number;
}

export interface Plan {
  format: 'lsc.plan/1';
  graph: { name: string; hash: string };
  dims: Record<string, number>;
  dtypes: GraphDtypes;
  rope: RopeConfig;
  tokens: { bos?: number; eos: number[] };
  limits: PlanLimits;
  features: string[];
  rows: {
    /** Rows of every row-indexed activation buffer. */
    max: number;
    prefillChunk: number;
    /** Decode steps that can be encoded into one submission. */
    decodeSteps: number;
    kMax: number;
    /** Range slots per submission. */
    rangeSlots: number;
    /** KV slots: sequences the KV cache holds at once (absent in older artifacts: 1). */
    sequences?: number;
  };
  /** Layout of the token buffer: step tokens at [0, verifyBase), verify picks from verifyBase. */
  tokenSlots: { verifyBase: number; length: number };
  /** Named buffers the runtime reads and writes directly. */
  io: { tokens: string; logits: string; trunk: string; rope: string; acceptState: string };
  exits: { candidates: number[]; defaultExitLayer: number; defaultNumSpeculations: number };
  weights: PlanWeight[];
  buffers: PlanBuffer[];
  kvBuffers: string[];
  kernels: PlanKernel[];
  entries: PlanEntry[];
  /**
   * The greedy acceptance kernel (codegen/accept.ts) that chained speculation rounds run after
   * verify@E: its storage buffers in binding order; its params are the runtime's, per round.
   */
  accept: { kernel: string; buffers: string[] };
  /**
   * The batched greedy acceptance kernel (codegen/batch-accept.ts) that the batch engine's chained
   * rounds run after verify: its storage buffers in binding order (tokens, then its state).
   * Absent in plans compiled before it existed: the engine then reads back every round.
   */
  batchAccept?: { kernel: string; buffers: string[] };
  /**
   * Confidence-stopped drafting in chained greedy rounds (codegen/draft-gate.ts): the gate kernel
   * run before each draft step after the first and the acceptance kernel that replaces plan.accept
   * in such rounds (storage buffers in binding order), and the gate state buffer. Absent in plans
   * compiled before it existed: rounds then never stop early.
   */
  draftStop?: {
    gate: { kernel: string; buffers: string[] };
    accept: { kernel: string; buffers: string[] };
    state: string;
  };
  /** Which fusion rule fired how often, for the summary. */
  fusion: Record<string, number>;
}
