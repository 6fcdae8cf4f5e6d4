import { LscError } from '../compiler/errors.js';
import type { FusedKernel, KernelNode, KernelSource } from '../compiler/ir/kernel.js';
import type { WeightFormat } from '../compiler/ir/weight-formats.js';

/**
 * A kernel family: everything lsc knows about one kind of kernel, in one module
 * (codegen/families/*.ts), listed once in codegen/registry.ts. The passes, the scheduler, the
 * tuner and the tuning database loop over the registry rather than switching on family names.
 */

/** Kernel defaults for GPUs (many threads per output) or CPU drivers such as lavapipe (few threads, few barriers). */
export type Target = 'gpu' | 'cpu';
export const TARGETS: readonly Target[] = ['gpu', 'cpu'];

/** A kernel's tuning choices (u32 knobs). */
export type KernelConfig = Record<string, number>;

/** Where a node's checked sizes come from, so a precondition names what the user edits. */
export interface NodeCheck {
  node: KernelNode;
  file?: string;
  /** Resolved shape of input i (symbolic dims as names). */
  inputShape(i: number): (number | string)[];
  /** Where axis `axis` of the weight at input i is set (the dim it names, else the weight's shape). */
  weightDimAt(i: number, axis: number): string;
  /** Where attribute `key` is set (the dim it names, else the attribute). */
  attrAt(key: string): string;
}

/** Kernels read activations and f16 weights four values at a time (vec4). */
export function requireMultipleOf4(c: NodeCheck, what: string, v: number, at: string, hint: string): void {
  if (v % 4 !== 0) {
    throw new LscError(`${what} ${v} must be a multiple of 4 (the kernels read four values at a time)`, { file: c.file, pointer: at }, hint);
  }
}

/** What a family may ask of the graph when it builds a kernel of its own for one node. */
export interface NodeGraph {
  /** Row width of a value. */
  width(value: string): number;
  weightShape(id: string): number[];
  /** The value ids a node reads (its 'value' inputs, in order). */
  valueInputs(node: KernelNode): (string | undefined)[];
}

/** Values with buffers of their own that outlive a kernel, by role. */
export interface PersistentValues {
  /** Trunk state: the embedding and each residual add (one buffer updated in place). */
  trunk?: string[];
  /** Logits the CPU reads. */
  logits?: string;
  /** Picked tokens. */
  picks?: string[];
}

/** A weight as planned: row slices, each its own buffer. */
export interface WeightSlices {
  chunks: { buffer: string; rowStart: number; rowCount: number }[];
  /** Its format on the GPU (compiler/ir/weight-formats.ts; PlanWeight.gpuDtype); default f16. */
  format?: WeightFormat;
}

/** What scheduling a kernel may ask of the compiler. */
export interface ScheduleEnv {
  ctx: number;
  kvDim: number;
  kvF16: boolean;
  /** Rows of the SeqRows uniform (the plan's rows.max; codegen/kernel.ts). */
  seqRows: number;
  /** The buffer holding an activation value. */
  buffer(value: string): string;
  weight(id: string): WeightSlices;
  /** K and V cache buffer of a layer. */
  kvBuffer(layer: number): string;
  width(value: string): number;
  ropeBuffer: string;
  tokensBuffer: string;
  /** First token slot of verify picks (token slots: step tokens first). */
  tokenOutBase: number;
  /** The dispatch belongs to a verify entry point. */
  verify: boolean;
  /** The dispatch belongs to a draft entry point. */
  draft: boolean;
  /** The draft-stop gate buffer (codegen/draft-gate.ts). */
  draftGate: string;
  /** Storage buffers one kernel may bind (maxStorageBuffersPerShaderStage). */
  maxStorageBuffers: number;
  /** The configuration for a tuning key: tuned, else the family's default for the target. Ask once per fused kernel. */
  config(key: string): KernelConfig;
}

/** One dispatch as a family describes it; the scheduler emits (once per source), names and binds it. */
export interface Launch {
  /** Sources with equal `source` (and config) are emitted once: layers share kernels. */
  source: string;
  config: KernelConfig;
  emit(cfg: KernelConfig): KernelSource;
  /** Structural tuning key when the tuner may vary `config` (the same for every layer and entry point). */
  tuningKey?: string;
  /** Buffer for each storage binding of the emitted source, by binding name. */
  buffers: Map<string, string>;
  /** Values of the kernel's Params uniform. */
  params: number[];
  nodes: string[];
}

export interface KernelFamily<K extends FusedKernel = FusedKernel> {
  /** The family name, FusedKernel.family. */
  readonly name: K['family'];
  /** Graph ops this family checks the preconditions of (the ops its kernels compute). */
  readonly ops: readonly string[];
  /** Ops it runs as a kernel of its own, one node per kernel, when no fusion rule took the node. */
  readonly standalone: readonly string[];
  /** Kernel of its own for one node (an op in `standalone`). */
  fromNode?(n: KernelNode, g: NodeGraph): K;
  /** Preconditions of a node it computes, as LscErrors naming the node and a fix (run at shape inference). */
  check?(c: NodeCheck): void;
  /** Row granularity at which its weights may be split into slices bound as separate buffers (default 1). */
  weightRowAlign?(dims: Record<string, number>): number;
  /** Activation values the kernel reads / writes (buffer planning). */
  reads(k: K): string[];
  writes(k: K): string[];
  persistent?(k: K): PersistentValues;
  /** Dispatches the kernel takes, given each weight's slice count (checked against the dispatch bound before scheduling). */
  dispatchCount(k: K, slices: (weight: string) => number): number;
  /** Its dispatches: bindings mapped by the names its emitter declares. */
  schedule(k: K, env: ScheduleEnv): Launch[];
  /** Tunable families: default configuration per target, and the configurations `lsc tune` tries. */
  defaultConfig?(target: Target, k: K): KernelConfig;
  candidates?(subgroupSize: number): KernelConfig[];
  /** A short name for one of its tuning keys (`lsc tune`'s tables); default: the key. */
  describeKey?(key: string): string;
}

/** Buffers of a source's storage bindings, in binding order, from a family's map by name. */
export function storageBuffers(src: KernelSource, byName: Map<string, string>): string[] {
  return src.bindings.filter((b) => b.type === 'read' || b.type === 'rw').map((b) => {
    const buf = byName.get(b.name);
    if (!buf) throw new Error(`internal: ${src.family} binding ${b.name} has no buffer`);
    return buf;
  });
}
