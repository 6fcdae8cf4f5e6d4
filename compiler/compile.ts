import { createHash } from 'node:crypto';
import type { Graph } from './ir/graph.js';
import { resolveDims } from './ir/dims.js';
import { validateGraph } from './ir/validate.js';
import { expandLayers } from './passes/expand-layers.js';
import { inferShapes } from './passes/infer-shapes.js';
import { deriveEntryPoints } from './passes/entry-points.js';
import { fuseStage } from './passes/fuse.js';
import type { FusedKernel } from './ir/kernel.js';
import { planBuffers } from './passes/plan-buffers.js';
import { planWeights } from './passes/plan-weights.js';
import { checkPairedFormats, chooseFormats } from './passes/choose-formats.js';
import { Scheduler, type Tunable, type TuningChoices } from './passes/schedule.js';
import { FAMILIES, acceptKernel, acceptStopKernel, draftGateBytes, draftGateKernel, acceptStateBytes, batchAcceptKernel, batchAcceptStateBytes, familyOf } from '../codegen/registry.js';
import type { Target } from '../codegen/family.js';
import type { Plan, PlanBuffer, PlanEntry, PlanLimits, PlanWeight } from './plan.js';
import type { TypedGraph } from './passes/infer-shapes.js';
import { LscError, pointer } from './errors.js';
import { SEQ_ROWS_MAX } from '../codegen/kernel.js';
import type { MatrixFormat } from './ir/weight-formats.js';
import { withWeightsSpec, type WeightsSpec } from './ir/weights-spec.js';
import { BOUNDS, checkBound } from './ir/bounds.js';
import { checkRuntimeDims } from './passes/check-dims.js';

/** WebGPU's default limits: a plan compiled for them runs on any adapter. */
export const DEFAULT_LIMITS: PlanLimits = {
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxBufferSize: 256 * 1024 * 1024,
};

export interface CompileOptions {
  /** Graph file path, named in errors. */
  file?: string;
  limits?: Partial<PlanLimits>;
  /** Override the KV context length of the graph. */
  ctx?: number;
  /** Override the graph's dtypes.weights (and the head's format): compiler/ir/weights-spec.ts. */
  weights?: MatrixFormat | WeightsSpec;
  prefillChunk?: number;
  decodeSteps?: number;
  /** Sequences the KV cache holds at once (default 1): each layer's KV buffer has a slot per sequence. */
  sequences?: number;
  tuning?: Partial<TuningChoices>;
  /** Kernel defaults for GPUs (default) or CPU drivers, where the tuning database has no decision. */
  target?: Target;
  /** Called after each phase with its name and output (IR dumps, timing). */
  instrument?: (phase: string, output: unknown) => void;
}

export interface CompiledPlan {
  plan: Plan;
  /** kernel id -> WGSL source */
  wgsl: Map<string, string>;
  /** Kernel shapes the tuner can re-emit with other configurations. */
  tunables: Tunable[];
}

export function graphHash(graph: Graph): string {
  return createHash('sha256').update(JSON.stringify(graph)).digest('hex').slice(0, 16);
}

/**
 * graph -> plan: validate, resolve dims, expand layers, infer shapes, derive entry points, fuse,
 * plan buffers and weights, schedule (compiler/passes/, one file per pass). Pure: no GPU, no weights.
 */
export function compileGraph(input: Graph, opts: CompileOptions = {}): CompiledPlan {
  const file = opts.file;
  const graph = validateGraph(input, file);
  const note = opts.instrument ?? (() => {});
  const sized: Graph = opts.ctx ? { ...graph, dims: { ...graph.dims, ctx: { max: opts.ctx } } } : graph;
  const withCtx: Graph = withWeightsSpec(sized, opts.weights);
  const dims = resolveDims(withCtx, file);
  note('dims', dims.values);
  const flat = expandLayers(withCtx, dims, file);
  note('expand-layers', flat);
  const typed = inferShapes(withCtx, flat, dims, file);
  note('infer-shapes', typed);
  checkRuntimeDims(withCtx, typed, dims, file);
  const entries = deriveEntryPoints(withCtx, typed, dims, file);
  note('entry-points', entries);

  const limits: PlanLimits = { ...DEFAULT_LIMITS, ...(opts.limits ?? {}) };
  const v = dims.values;
  const kMax = v.k ?? 8;
  const prefillChunk = opts.prefillChunk ?? withCtx.defaults.prefillChunk ?? 64;
  checkBound('prefill chunk', prefillChunk, BOUNDS.ctx, { file, pointer: '/defaults/prefillChunk' });
  const decodeSteps = opts.decodeSteps ?? 16;
  const maxRows = Math.max(prefillChunk, decodeSteps, kMax + 1);
  if (maxRows > SEQ_ROWS_MAX) {
    throw new LscError(`${maxRows} activation rows (the prefill chunk, decode steps or k + 1) exceed the ${SEQ_ROWS_MAX} a kernel's row table describes`,
      { file, pointer: '/defaults/prefillChunk' }, `use a prefill chunk of at most ${SEQ_ROWS_MAX}`);
  }
  const sequences = opts.sequences ?? 1;
  checkBound('sequences', sequences, 4096, { file });
  const verifyBase = maxRows + 1;
  const tokenSlots = verifyBase + maxRows;
  const kvF16 = withCtx.dtypes.kv === 'f16';
  const kvDim = v.kvHeads * v.headDim;
  const ctx = v.ctx;

  // fuse every stage of every entry point
  const fused = entries.map((e) => ({ entry: e, stages: e.stages.map((s) => ({ stage: s, ...fuseStage(s.nodes, typed, file) })) }));
  const decodeStages = fused.find((f) => f.entry.kind === 'decode' && f.entry.exitLayer === undefined)!.stages;
  const decodeKernels = decodeStages.flatMap((s) => s.kernels);
  // which fusion rule fired how often in decode (the firings the fusion pass recorded)
  const fusion: Record<string, number> = {};
  for (const f of decodeStages.flatMap((s) => s.fired)) fusion[f.rule] = (fusion[f.rule] ?? 0) + 1;
  note('fuse', fused);

  const all: FusedKernel[] = fused.flatMap((f) => f.stages.flatMap((s) => s.kernels));
  const assign = planBuffers(decodeKernels, all, typed, maxRows, tokenSlots);
  const formats = chooseFormats(withCtx, typed, file);
  checkPairedFormats(all, formats, typed, file);
  const w = planWeights(typed, formats, limits.maxStorageBufferBindingSize, weightRowAlign(v), file);
  note('plan-buffers', assign);

  const kvSlotBytes = 2 * ctx * kvDim * (kvF16 ? 2 : 4);
  const kvBytes = sequences * kvSlotBytes;
  if (kvBytes > limits.maxStorageBufferBindingSize) {
    throw new LscError(`the KV cache of one layer (${kvBytes} bytes at ctx ${ctx}${sequences > 1 ? ` for ${sequences} sequences` : ''}) exceeds the binding limit ${limits.maxStorageBufferBindingSize}`,
      { file, pointer: '/dims/ctx' }, sequences > 1 ? 'load for fewer sequences, or with a smaller --ctx' : 'compile with a smaller --ctx');
  }
  const kvBuffers: PlanBuffer[] = Array.from({ length: v.layers }, (_, l) => ({
    id: `kv:${l}`, kind: 'kv', bytes: kvBytes, doc: `layer ${l} K and V [${sequences > 1 ? `${sequences}, ` : ''}2, ${ctx}, ${kvDim}] ${kvF16 ? 'f16' : 'f32'}`,
  }));
  const target = opts.target ?? 'gpu';
  const ropeBuffer: PlanBuffer = { id: 'const:rope', kind: 'constant', bytes: ctx * (v.headDim / 2) * 8, doc: `RoPE cos/sin [${ctx}, ${v.headDim / 2}] f32` };
  const acceptState: PlanBuffer = {
    id: 'io:accept', kind: 'io', bytes: acceptStateBytes(kMax),
    doc: 'greedy acceptance state u32: position, accepted counts and tokens of chained rounds',
  };
  const batchAcceptState: PlanBuffer = {
    id: 'io:batch-accept', kind: 'io', bytes: batchAcceptStateBytes(maxRows, kMax),
    doc: 'batched greedy acceptance state u32: the SeqRows image, per sequence its position, accepted counts and tokens',
  };
  const draftGate: PlanBuffer = {
    id: 'io:draft-gate', kind: 'io', bytes: draftGateBytes(maxRows),
    doc: 'draft stop of chained greedy rounds u32: threshold (f32), drafts made, drafts made per round, probability (f32) of each draft row\'s pick',
  };
  checkBuffers([...w.buffers, ...kvBuffers, ...assign.buffers, ropeBuffer, acceptState, batchAcceptState, draftGate], limits, typed, file);
  const dispatches = countDispatches(fused.flatMap((f) => f.stages.flatMap((s) => s.kernels)), w.weights);
  if (dispatches > BOUNDS.dispatches) {
    throw new LscError(`the plan would have ${dispatches} dispatches, more than ${BOUNDS.dispatches}`, { file, pointer: '/exit/candidates' },
      'compile fewer exit candidates, or for an adapter with a larger maxStorageBufferBindingSize (fewer weight slices)');
  }

  const scheduler = new Scheduler({
    ctx, kvDim, kvF16, seqRows: maxRows, weights: new Map(w.weights.map((x) => [x.id, x])), valueBuffer: assign.valueBuffer,
    width: (id) => (typed.values.get(id)!.shape[1] as number) ?? 1, tokenOutBase: verifyBase,
    ropeBuffer: ropeBuffer.id, tokensBuffer: 'io:tokens', kvBuffer: (l) => kvBuffers[l].id, maxStorageBuffers: limits.maxStorageBuffersPerShaderStage,
    draftGateBuffer: draftGate.id,
    tuning: (k, key) => {
      const family = familyOf(k);
      const cfg = opts.tuning?.[family.name]?.(k, key) ?? family.defaultConfig?.(target, k);
      if (!cfg) throw new Error(`internal: family ${family.name} asked for a config it has no default for`);
      return cfg;
    },
  });
  const planEntries: PlanEntry[] = fused.map(({ entry, stages }) => ({
    name: entry.name, kind: entry.kind, exitLayer: entry.exitLayer, stepped: entry.stepped, kvLayers: entry.kvLayers,
    stages: stages.map(({ stage, kernels }) => ({
      name: stage.name, role: stage.role, range: stage.range,
      dispatches: kernels.flatMap((k) => scheduler.schedule(k, entry.kind)),
    })),
  }));
  note('schedule', planEntries);

  const accept = acceptKernel();
  const batchAccept = batchAcceptKernel(maxRows, kMax);
  const [gate, acceptStop] = [draftGateKernel(), acceptStopKernel()];
  const kernels = [...scheduler.kernels.values(), ...[accept, batchAccept, gate, acceptStop].map((k) => ({ ...k, id: k.name, file: `kernels/${k.name}.wgsl`, fused: [] }))];
  for (const k of kernels) {
    const storage = k.bindings.filter((b) => b.type === 'read' || b.type === 'rw' || b.type === 'ranges').length;
    if (storage > limits.maxStorageBuffersPerShaderStage) {
      throw new LscError(`kernel ${k.id} binds ${storage} storage buffers; the target allows ${limits.maxStorageBuffersPerShaderStage}`,
        { file }, 'compile for an adapter with a higher maxStorageBuffersPerShaderStage');
    }
  }
  const plan: Plan = {
    format: 'lsc.plan/1',
    graph: { name: withCtx.name, hash: graphHash(withCtx) },
    dims: v,
    dtypes: withCtx.dtypes,
    rope: withCtx.rope,
    tokens: withCtx.tokens,
    limits,
    features: [...new Set(kernels.flatMap((k) => k.features))].sort(),
    rows: { max: maxRows, prefillChunk, decodeSteps, kMax, rangeSlots: Math.max(decodeSteps, kMax + 3, 64), ...(sequences > 1 ? { sequences } : {}) },
    tokenSlots: { verifyBase, length: tokenSlots },
    io: { tokens: 'io:tokens', logits: 'io:logits', trunk: 'act:trunk', rope: ropeBuffer.id, acceptState: acceptState.id },
    exits: {
      candidates: withCtx.exit.candidates,
      defaultExitLayer: withCtx.defaults.exitLayer,
      defaultNumSpeculations: withCtx.defaults.numSpeculations,
    },
    weights: w.weights,
    buffers: [...w.buffers, ...kvBuffers, ...assign.buffers, ropeBuffer, acceptState, batchAcceptState, draftGate],
    kvBuffers: kvBuffers.map((b) => b.id),
    kernels: kernels.map(({ wgsl: _w, ...k }) => k),
    entries: planEntries,
    accept: { kernel: accept.name, buffers: ['io:tokens', acceptState.id] },
    batchAccept: { kernel: batchAccept.name, buffers: ['io:tokens', batchAcceptState.id] },
    draftStop: {
      gate: { kernel: gate.name, buffers: [draftGate.id] },
      accept: { kernel: acceptStop.name, buffers: ['io:tokens', acceptState.id, draftGate.id] },
      state: draftGate.id,
    },
    fusion,
  };
  return { plan, wgsl: new Map(kernels.map((k) => [k.id, k.wgsl])), tunables: [...scheduler.tunables.values()] };
}

/**
 * Every buffer is bound whole, so each must fit the binding limit (and the buffer limit) of the
 * target. Weight matrices were split into row slices already; what is left is sized by the dims.
 */
function checkBuffers(buffers: PlanBuffer[], limits: PlanLimits, g: TypedGraph, file?: string): void {
  const max = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  for (const b of buffers) {
    if (b.bytes <= max) continue;
    const weight = b.kind === 'weight' ? [...g.weights.values()].find((x) => b.id === `w:${x.id}`) : undefined;
    const at = weight ? pointer('weights', weight.decl, 'shape')
      : b.kind === 'kv' || b.kind === 'constant' ? '/dims/ctx' : b.id === 'io:logits' ? '/dims/vocab' : b.id === 'act:trunk' ? '/dims/d' : '/dims';
    throw new LscError(`buffer ${b.id} (${b.doc}) needs ${b.bytes} bytes; the target binds at most ${max}`, { file, pointer: at },
      b.kind === 'kv' || b.kind === 'constant' ? 'compile with a smaller --ctx' : 'use smaller dims, or compile for an adapter with larger limits');
  }
}

/** Dispatches the scheduler will emit, as each kernel's family counts them (one per weight slice where a weight is split). */
function countDispatches(kernels: FusedKernel[], weights: PlanWeight[]): number {
  const chunks = new Map(weights.map((w) => [w.id, w.chunks.length]));
  return kernels.reduce((n, k) => n + familyOf(k).dispatchCount(k, (id) => chunks.get(id) ?? 1), 0);
}

/** Row granularity of weight slices: what every family's kernels need of them (their least common multiple). */
function weightRowAlign(dims: Record<string, number>): number {
  const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
  return FAMILIES.reduce((a, f) => {
    const r = f.weightRowAlign?.(dims) ?? 1;
    return (a / gcd(a, r)) * r;
  }, 1);
}
