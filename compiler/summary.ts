import type { Plan, PlanEntry } from './plan.js';
import { plural } from './plural.js';
import { findStage, type EntryKind } from './ir/stages.js';
import { weightDecl } from './passes/expand-layers.js';

/**
 * What `lsc compile` prints: kernels, dispatches per entry point, memory, fusion, and what
 * self-speculation costs on top of autoregressive decoding. Computed from the plan alone.
 */
export interface PlanSummary {
  graph: { name: string; hash: string };
  dims: { layers: number; d: number; vocab: number; ctx: number; kMax: number };
  kernels: { id: string; family: string; name: string; fused: string[] }[];
  entries: {
    name: string; kind: PlanEntry['kind']; exitLayer?: number;
    dispatches: number; stages: Record<string, number>; kernels: number;
  }[];
  bytes: {
    weights: number; kvCache: number; activations: number; total: number;
    /** activations split by buffer kind (activation, io, constant) */
    activationsByKind: Record<string, number>;
  };
  fusion: Record<string, number>;
  selfSpeculation: {
    exitCandidates: number[];
    defaultExitLayer: number;
    defaultNumSpeculations: number;
    kMax: number;
    /** Dispatches of one round at the defaults: k drafts + one verify. */
    roundDispatches: number;
    /** Every buffer draft@E / verify@E bind is bound by prefill or decode too. */
    sharesBuffersWithDecode: boolean;
    /** Buffers only draft/verify entries bind (empty when shared). */
    ownBuffers: string[];
    /** Bytes of those buffers: what self-speculation allocates beyond autoregressive decoding. */
    extraAllocatedBytes: number;
    /** The state of greedy rounds chained on the GPU (codegen/accept.ts): a plan buffer only self-speculation uses. */
    acceptStateBytes: number;
    /** What verify@E starts from at the default exit: the exit query cache, or the embedding (every layer recomputed). */
    verifyFrom: 'exit_query_cache' | 'embedding';
    exitQueryCache: { bytes: number; buffer: string };
    verifyLogits: { bytes: number; buffer: string };
  };
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

function buffersOf(e: PlanEntry): Set<string> {
  return new Set(e.stages.flatMap((s) => s.dispatches.flatMap((d) => d.buffers)));
}

export function summaryJson(plan: Plan): PlanSummary {
  const v = plan.dims;
  const bytesOf = (kind: string): number => sum(plan.buffers.filter((b) => b.kind === kind).map((b) => b.bytes));
  const activationsByKind = { activation: bytesOf('activation'), io: bytesOf('io'), constant: bytesOf('constant') };
  const weights = bytesOf('weight');
  const kvCache = bytesOf('kv');
  const activations = sum(Object.values(activationsByKind));

  const entries = plan.entries.map((e) => ({
    name: e.name, kind: e.kind, ...(e.exitLayer !== undefined ? { exitLayer: e.exitLayer } : {}),
    dispatches: sum(e.stages.map((s) => s.dispatches.length)),
    stages: Object.fromEntries(e.stages.map((s) => [s.name, s.dispatches.length])),
    kernels: new Set(e.stages.flatMap((s) => s.dispatches.map((d) => d.kernel))).size,
  }));

  const base = new Set(plan.entries.filter((e) => e.kind === 'prefill' || e.kind === 'decode').flatMap((e) => [...buffersOf(e)]));
  const own = new Set(plan.entries.filter((e) => e.kind === 'draft' || e.kind === 'verify')
    .flatMap((e) => [...buffersOf(e)].filter((b) => !base.has(b))));
  const size = new Map(plan.buffers.map((b) => [b.id, b.bytes]));
  const E = plan.exits.defaultExitLayer;
  const K = plan.exits.defaultNumSpeculations;
  const count = (kind: EntryKind): number => entries.find((e) => e.kind === kind && e.exitLayer === E)?.dispatches ?? 0;
  const verify = plan.entries.find((e) => e.kind === 'verify' && e.exitLayer === E);
  const rows = plan.rows.kMax + 1;

  return {
    graph: plan.graph,
    dims: { layers: v.layers, d: v.d, vocab: v.vocab, ctx: v.ctx, kMax: plan.rows.kMax },
    kernels: plan.kernels.map((k) => ({ id: k.id, family: k.family, name: k.name, fused: k.fused })),
    entries,
    bytes: { weights, kvCache, activations, total: weights + kvCache + activations, activationsByKind },
    fusion: plan.fusion,
    selfSpeculation: {
      exitCandidates: plan.exits.candidates,
      defaultExitLayer: E,
      defaultNumSpeculations: K,
      kMax: plan.rows.kMax,
      roundDispatches: K * count('draft') + count('verify'),
      // verify reuses the exit query cache when it has a stage for the newest draft alone
      verifyFrom: verify && !findStage(verify, 'newest') ? 'embedding' : 'exit_query_cache',
      sharesBuffersWithDecode: own.size === 0,
      ownBuffers: [...own],
      extraAllocatedBytes: sum([...own].map((b) => size.get(b) ?? 0)),
      acceptStateBytes: size.get(plan.io.acceptState) ?? 0,
      // the draft stores the layer-E input of rows 0..k in the trunk buffer; verify reads it there
      exitQueryCache: { bytes: rows * v.d * 4, buffer: plan.io.trunk },
      verifyLogits: { bytes: rows * v.vocab * 4, buffer: plan.io.logits },
    },
  };
}

/** "12.55 GiB (13,477,363,712 bytes)" */
export function formatBytes(n: number, exact = true): string {
  const units: [number, string][] = [[2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
  const [div, unit] = units.find(([d]) => n >= d) ?? [1, 'B'];
  const human = div === 1 ? `${n} B` : `${(n / div).toFixed(2)} ${unit}`;
  return exact && div !== 1 ? `${human} (${n.toLocaleString('en-US')} bytes)` : human;
}

const pad = (s: string, n: number): string => s.padEnd(n);

export function formatSummary(plan: Plan): string {
  const s = summaryJson(plan);
  const sp = s.selfSpeculation;
  const out: string[] = [];
  const d = s.dims;
  out.push(`plan for '${s.graph.name}' (graph ${s.graph.hash}): ${plural(d.layers, 'layer')}, d ${d.d}, vocab ${d.vocab}, ctx ${d.ctx}`);

  out.push('', `Kernels: ${s.kernels.length} distinct`);
  const idWidth = Math.max(...s.kernels.map((k) => k.id.length));
  for (const k of s.kernels) out.push(`  ${pad(k.id, idWidth)}  ${pad(k.family, 9)}  ${k.fused.join(', ')}`);

  out.push('', 'Dispatches per entry point');
  const entry = (kind: EntryKind, exitLayer?: number) => s.entries.find((e) => e.kind === kind && e.exitLayer === exitLayer);
  const stages = (e: PlanSummary['entries'][number]) => Object.entries(e.stages).map(([n, c]) => `${n} ${c}`).join(', ');
  const pre = entry('prefill');
  const dec = entry('decode');
  const draft = entry('draft', sp.defaultExitLayer);
  const verify = entry('verify', sp.defaultExitLayer);
  if (pre) out.push(`  ${pad('prefill', 12)}${pad(String(pre.dispatches), 6)}per chunk of ≤${plan.rows.prefillChunk} tokens (${stages(pre)})`);
  if (dec) out.push(`  ${pad('decode', 12)}${pad(String(dec.dispatches), 6)}per token`);
  if (draft) out.push(`  ${pad(draft.name, 12)}${pad(String(draft.dispatches), 6)}per draft token (default exit E=${sp.defaultExitLayer})`);
  if (verify) out.push(`  ${pad(verify.name, 12)}${pad(String(verify.dispatches), 6)}per round (${stages(verify)})`);
  if (draft && verify) {
    out.push(`  ${pad('round', 12)}${pad(String(sp.roundDispatches), 6)}at E=${sp.defaultExitLayer}, k=${sp.defaultNumSpeculations}: ` +
      `${plural(sp.defaultNumSpeculations, 'draft')} + verify, up to ${plural(sp.defaultNumSpeculations + 1, 'token')}`);
  }
  const others = sp.exitCandidates.filter((e) => e !== sp.defaultExitLayer)
    .map((e) => `E=${e} ${entry('draft', e)?.dispatches}/${entry('verify', e)?.dispatches}`);
  if (others.length) out.push(`  ${pad('other exits', 12)}draft/verify: ${others.join(' · ')}`);

  out.push('', 'Memory');
  const kvDoc = plan.buffers.find((b) => b.kind === 'kv')?.doc.replace(/^layer \d+ /, '') ?? '';
  const a = s.bytes.activationsByKind;
  out.push(`  ${pad('weights', 13)}${formatBytes(s.bytes.weights)}${weightFormats(plan)}`);
  out.push(`  ${pad('KV cache', 13)}${formatBytes(s.bytes.kvCache)}: ${plural(plan.kvBuffers.length, 'layer')} × ${kvDoc}`);
  out.push(`  ${pad('activations', 13)}${formatBytes(s.bytes.activations)}: activations ${formatBytes(a.activation, false)}, ` +
    `I/O ${formatBytes(a.io, false)}, constants ${formatBytes(a.constant, false)}`);
  out.push(`  ${pad('total', 13)}${formatBytes(s.bytes.total)}`);

  out.push('', 'Fused');
  const fusion = Object.entries(s.fusion);
  const w = Math.max(0, ...fusion.map(([k]) => k.length));
  for (const [rule, n] of fusion) out.push(`  ${pad(rule, w)}  ×${n}`);
  if (!fusion.length) out.push('  nothing');

  out.push('', `Self-speculation (exits ${sp.exitCandidates.join(', ')}; default E=${sp.defaultExitLayer}, k=${sp.defaultNumSpeculations}; k ≤ ${sp.kMax})`);
  out.push(sp.sharesBuffersWithDecode
    ? '  draft@E and verify@E share the weight and KV-cache buffers with prefill and decode (no buffer of their own)'
    : `  draft/verify bind buffers decode does not: ${sp.ownBuffers.join(', ')} (${formatBytes(sp.extraAllocatedBytes)})`);
  out.push(sp.verifyFrom === 'embedding'
    ? '  verify recomputes every layer from the embedding over the k+1 positions (no exit query cache)'
    : `  exit query cache  ${formatBytes(sp.exitQueryCache.bytes)} = (kMax+1)·d·4, rows 0..k of ${sp.exitQueryCache.buffer}`);
  out.push(`  verify logits     ${formatBytes(sp.verifyLogits.bytes)} = (kMax+1)·vocab·4, rows 0..k of ${sp.verifyLogits.buffer}`);
  out.push(`  acceptance state  ${formatBytes(sp.acceptStateBytes)}: greedy rounds chained on the GPU (${plan.io.acceptState}, kernel ${plan.accept.kernel})`);
  out.push(`  memory beyond autoregressive decoding: ${formatBytes(sp.extraAllocatedBytes + sp.acceptStateBytes)}` +
    (sp.sharesBuffersWithDecode ? ' (the acceptance state; the cache and logits live in buffers decode already has)' : ''));
  return out.join('\n') + '\n';
}

/** ": matrices q4_0, lm_head q8_0, embed f16" when a matrix is not f16 (all-f16 plans print nothing more). */
function weightFormats(plan: Plan): string {
  const matrices = plan.weights.filter((w) => w.shape.length === 2 && !w.tiedTo);
  if (matrices.every((w) => w.gpuDtype === 'f16')) return '';
  // per declaration, not per layer's instance
  const other = new Map<string, string>();
  for (const w of matrices) if (w.gpuDtype !== plan.dtypes.weights) other.set(weightDecl(w.id), w.gpuDtype);
  return `: matrices ${plan.dtypes.weights}${[...other].map(([d, f]) => `, ${d} ${f}`).join('')}`;
}
