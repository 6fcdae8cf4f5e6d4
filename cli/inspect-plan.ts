import type { Plan, PlanBuffer, PlanDispatch, PlanEntry, PlanKernel } from '../compiler/plan.js';
import { formatBytes } from '../compiler/summary.js';
import { plural } from '../compiler/plural.js';

/**
 * The plan for people. Layers that run the same dispatches (up to the layer number in buffer ids)
 * are printed once ("L0..L31: same 5 dispatches"); draft/verify entries of exits other than the
 * default are one line each unless `allEntries`.
 */
const layerOf = (d: PlanDispatch): number | undefined => {
  const m = /^L(\d+)\./.exec(d.nodes[0] ?? '');
  return m ? Number(m[1]) : undefined;
};

/** Replaces the layer number in buffer ids (w:wq.3, w:wq.3#1, kv:3) and node ids (L3.h). */
function normalize(d: PlanDispatch, l: number): PlanDispatch {
  const re = new RegExp(`(?<=[.:])${l}(?=$|#)`);
  return { ...d, buffers: d.buffers.map((b) => b.replace(re, '{L}')), nodes: d.nodes.map((n) => n.replace(`L${l}.`, '')) };
}

function dispatchLine(d: PlanDispatch, kernels: Map<string, PlanKernel>): string {
  const k = kernels.get(d.kernel);
  const names = k?.bindings.filter((b) => b.type === 'read' || b.type === 'rw') ?? [];
  const binds = d.buffers.map((b, i) => `${names[i]?.name ?? i}${names[i]?.type === 'rw' ? '⇄' : '='}${b}`);
  const params = d.params.length ? `  params ${d.params.join(',')}` : '';
  return `${d.kernel}  [${d.nodes.join(' ')}]  ${binds.join(' ')}${params}`;
}

function stageLines(dispatches: PlanDispatch[], kernels: Map<string, PlanKernel>, indent: string): string[] {
  // runs of consecutive dispatches of one layer (or of no layer)
  const runs: { layer?: number; ds: PlanDispatch[] }[] = [];
  for (const d of dispatches) {
    const l = layerOf(d);
    const last = runs[runs.length - 1];
    if (last && last.layer === l && l !== undefined) last.ds.push(d);
    else runs.push({ layer: l, ds: [d] });
  }
  const out: string[] = [];
  for (let i = 0; i < runs.length;) {
    const r = runs[i];
    if (r.layer === undefined) {
      out.push(indent + dispatchLine(r.ds[0], kernels));
      i++;
      continue;
    }
    const sig = JSON.stringify(r.ds.map((d) => normalize(d, r.layer!)));
    let j = i + 1;
    while (j < runs.length && runs[j].layer === runs[j - 1].layer! + 1
      && JSON.stringify(runs[j].ds.map((d) => normalize(d, runs[j].layer!))) === sig) j++;
    const last = runs[j - 1].layer!;
    const head = j - i > 1 ? `L${r.layer}..L${last}: same ${plural(r.ds.length, 'dispatch', 'dispatches')} per layer ({L} = layer)` : `L${r.layer}:`;
    out.push(indent + head);
    const shown = j - i > 1 ? r.ds.map((d) => normalize(d, r.layer!)) : r.ds;
    for (const d of shown) out.push(indent + '  ' + dispatchLine(d, kernels));
    i = j;
  }
  return out;
}

function entryLines(e: PlanEntry, kernels: Map<string, PlanKernel>): string[] {
  const n = e.stages.reduce((a, s) => a + s.dispatches.length, 0);
  const out = [`entry ${e.name} (${e.kind}${e.stepped ? ', repeated per step i' : ''}; writes KV of layers [${e.kvLayers.join(', ')})): ${plural(n, 'dispatch', 'dispatches')}`];
  for (const s of e.stages) {
    const r = s.range;
    out.push(`  stage ${s.name}: rows [${r.rowStart}, ${r.rowStart}+${r.rowCount}), row r at position ${r.posBase}+r: ${plural(s.dispatches.length, 'dispatch', 'dispatches')}`);
    out.push(...stageLines(s.dispatches, kernels, '    '));
  }
  return out;
}

function kernelLines(k: PlanKernel): string[] {
  const grid = k.grid.map((g) => (typeof g === 'number' ? String(g) : `${g.perRow}/${g.rowsPerGroup ? `${g.rowsPerGroup} rows` : 'row'}`)).join(' × ');
  const cfg = Object.entries(k.config).map(([a, b]) => `${a}=${b}`).join(' ');
  return [
    `  ${k.id} (${k.family}): workgroup ${k.workgroupSize}, grid ${grid}${cfg ? `, ${cfg}` : ''}${k.features.length ? `, needs ${k.features.join(', ')}` : ''}`,
    `    fuses    ${k.fused.join(', ')}`,
    `    binds    ${k.bindings.map((b) => `${b.name}:${b.type}`).join(' ')}${k.params.length ? `  params ${k.params.join(',')}` : ''}`,
    `    source   ${k.file}`,
  ];
}

export interface BufferGroup {
  /** Id with the layer number as {L} when the group has several buffers (w:wq.{L}). */
  id: string;
  kind: PlanBuffer['kind'];
  buffers: PlanBuffer[];
  /** Bytes of each buffer. */
  bytes: number;
  doc: string;
}

/** Buffers by kind, runs of per-layer buffers (w:wq.0..31, kv:0..31) as one group each. */
export function groupBuffers(plan: Plan): { kind: PlanBuffer['kind']; bytes: number; groups: BufferGroup[] }[] {
  const key = (id: string) => id.replace(/(?<=[.:])\d+(?=$|#)/, '{L}');
  const docKey = (doc: string) => doc.replace(/\b(layers\.|layer )\d+/, '$1{L}');
  const out: ReturnType<typeof groupBuffers> = [];
  for (const kind of ['weight', 'kv', 'activation', 'io', 'constant'] as const) {
    const bs = plan.buffers.filter((b) => b.kind === kind);
    if (!bs.length) continue;
    const groups = new Map<string, PlanBuffer[]>();
    for (const b of bs) {
      const k = `${key(b.id)}|${b.bytes}|${docKey(b.doc)}`;
      groups.set(k, [...(groups.get(k) ?? []), b]);
    }
    out.push({
      kind, bytes: bs.reduce((a, b) => a + b.bytes, 0),
      groups: [...groups.values()].map((g) => ({
        id: g.length > 1 ? key(g[0].id) : g[0].id, kind, buffers: g, bytes: g[0].bytes, doc: g.length > 1 ? docKey(g[0].doc) : g[0].doc,
      })),
    });
  }
  return out;
}

function bufferLines(plan: Plan): string[] {
  const out: string[] = [];
  for (const { kind, bytes, groups } of groupBuffers(plan)) {
    out.push(`  ${kind}: ${plural(groups.reduce((a, g) => a + g.buffers.length, 0), 'buffer')}, ${formatBytes(bytes)}`);
    for (const g of groups) {
      const id = g.buffers.length > 1 ? `${g.id} ×${g.buffers.length}` : g.id;
      out.push(`    ${id.padEnd(24)} ${formatBytes(g.bytes, false).padStart(10)}${g.buffers.length > 1 ? ' each' : ''}  ${g.doc}`);
    }
  }
  return out;
}

export function formatPlan(plan: Plan, allEntries = false): string {
  const kernels = new Map(plan.kernels.map((k) => [k.id, k]));
  const out: string[] = [];
  const r = plan.rows;
  out.push(`plan of ${plan.graph.name} (graph hash ${plan.graph.hash}), features: ${plan.features.join(', ') || 'none'}`);
  out.push(`  rows: ${r.max} per activation buffer · prefill chunk ${r.prefillChunk} · ${r.decodeSteps} decode steps per submission · k ≤ ${r.kMax}`);
  out.push(`  limits: ${Object.entries(plan.limits).map(([k, v]) => `${k} ${v}`).join(' · ')}`);
  out.push(`  exits: ${plan.exits.candidates.join(', ')} (default E=${plan.exits.defaultExitLayer}, k=${plan.exits.defaultNumSpeculations})`);
  const E = plan.exits.defaultExitLayer;
  const detailed = (e: PlanEntry) => allEntries || e.exitLayer === undefined || e.exitLayer === E;
  for (const e of plan.entries.filter(detailed)) out.push('', ...entryLines(e, kernels));
  const rest = plan.entries.filter((e) => !detailed(e));
  if (rest.length) {
    out.push('', `other exits (as draft@${E} / verify@${E} over other layer ranges; --all-entries lists them):`);
    for (const e of rest) {
      const stages = e.stages.map((s) => `${s.name} ${s.dispatches.length}`).join(', ');
      out.push(`  ${e.name.padEnd(11)} ${plural(e.stages.reduce((a, s) => a + s.dispatches.length, 0), 'dispatch', 'dispatches').padStart(16)} (${stages}), KV layers [${e.kvLayers.join(', ')})`);
    }
  }
  out.push('', `kernels (${plan.kernels.length})`);
  for (const k of plan.kernels) out.push(...kernelLines(k));
  out.push('', `buffers (${plan.buffers.length})`, ...bufferLines(plan));
  return out.join('\n') + '\n';
}
