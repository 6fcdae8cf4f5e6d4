import fs from 'node:fs';
import path from 'node:path';
import { compileDimExpr } from '../compiler/ir/dims.js';
import { entryOf, findStage } from '../compiler/ir/stages.js';
import type { Plan, PlanDispatch, PlanEntry, PlanKernel, PlanStage } from '../compiler/plan.js';
import { formatBytes } from '../compiler/summary.js';
import { CostModel, type CostTerms, type DispatchCost } from './inspect-cost.js';
import { esc } from './inspect-svg.js';

/**
 * The entry points table and one panel per kernel (WGSL, bytes and FLOPs per dispatch) of the
 * HTML view. Figures are for p = ctx/2: decode and draft run 1 row, verify k+1 rows (the graph's
 * default k), a prefill chunk T = prefillChunk rows.
 */
export const formatFlops = (n: number): string => {
  const [div, unit] = ([[1e12, 'TFLOP'], [1e9, 'GFLOP'], [1e6, 'MFLOP'], [1e3, 'kFLOP']] as [number, string][]).find(([d]) => n >= d) ?? [1, 'FLOP'];
  return div === 1 ? `${n} FLOP` : `${(n / div).toFixed(2)} ${unit}`;
};

/** The WGSL of an artifact's kernels (lsc compile wrote them next to plan.json; readArtifact checked them). */
export function artifactWgsl(plan: Plan, dir: string): Map<string, string> {
  return new Map(plan.kernels.map((k) => [k.id, fs.readFileSync(path.join(dir, ...k.file.split('/')), 'utf8')]));
}

export class PlanFigures {
  readonly position: number;
  readonly cost: CostModel;
  private readonly symbols: Record<string, number>;

  constructor(readonly plan: Plan, cost: CostModel) {
    this.cost = cost;
    this.position = Math.floor(plan.dims.ctx / 2);
    const p = this.position;
    this.symbols = { p, c0: p, i: 0, k: plan.exits.defaultNumSpeculations, T: plan.rows.prefillChunk };
  }

  /** Rows a stage runs at the stated symbols. */
  rows(st: PlanStage): number {
    return compileDimExpr(st.range.rowCount)((n) => this.symbols[n] ?? 0);
  }

  entryCost(e: PlanEntry): DispatchCost {
    const sum: DispatchCost = { readBytes: 0, writeBytes: 0, flops: 0 };
    for (const st of e.stages) {
      const R = this.rows(st);
      for (const d of st.dispatches) {
        const c = this.cost.cost(d, R, this.position);
        sum.readBytes += c.readBytes; sum.writeBytes += c.writeBytes; sum.flops += c.flops;
      }
    }
    return sum;
  }

  /** A kernel's first dispatch in decode, else draft/verify at the default exit, else anywhere. */
  firstUse(k: PlanKernel): { entry: PlanEntry; stage: PlanStage; dispatch: PlanDispatch } | undefined {
    const E = this.plan.exits.defaultExitLayer;
    const order = [entryOf(this.plan, 'decode'), entryOf(this.plan, 'draft', E), entryOf(this.plan, 'verify', E), entryOf(this.plan, 'prefill')];
    const entries = [...this.plan.entries].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
    for (const entry of entries) {
      for (const stage of entry.stages) {
        const dispatch = stage.dispatches.find((d) => d.kernel === k.id);
        if (dispatch) return { entry, stage, dispatch };
      }
    }
    return undefined;
  }
}

/** Notation of a stage's rows: "row i at position p+i", "k+1 rows from row 0, row r at position p+r". */
export function rowsText(st: PlanStage): string {
  const { rowStart: s, rowCount: n, posBase: b } = st.range;
  const pos = (r: string): string => (r === '0' ? b : `${b}+${r}`);
  if (n === '1') return `row ${s} at position ${pos(s)}`;
  return `${n} rows from row ${s}, row r at position ${pos('r')}`;
}

const ENTRY_WHAT: Record<PlanEntry['kind'], (e: PlanEntry, L: number) => string> = {
  prefill: (e, L) => `the prompt, T tokens per chunk, through layers 0..${(e.exitLayer ?? L) - 1}; then the ${e.exitLayer ? 'shared ' : ''}head on the chunk's last row${e.exitLayer ? ' (early exit)' : ''}`,
  decode: (_, L) => `one token per step: layers 0..${L - 1} + head`,
  draft: (e) => `one draft token per step: layers 0..${e.exitLayer! - 1} + the shared head (the early exit)`,
  verify: (e, L) => (findStage(e, 'newest')
    ? `checks the k drafts of a round: the newest draft through layers 0..${e.exitLayer! - 1}, then k+1 rows through layers ${e.exitLayer}..${L - 1} + head`
    : `checks the k drafts of a round: k+1 rows through layers 0..${L - 1} from the embedding + head`),
};

export function entriesTable(plan: Plan, fig: PlanFigures): string {
  const L = plan.dims.layers;
  const rows = plan.entries.map((e) => {
    const n = e.stages.reduce((a, s) => a + s.dispatches.length, 0);
    const kernels = new Set(e.stages.flatMap((s) => s.dispatches.map((d) => d.kernel))).size;
    const stages = e.stages.map((st) => `<li><b>${esc(st.name)}</b>: ${esc(rowsText(st))} — ${st.dispatches.length} dispatch${st.dispatches.length === 1 ? '' : 'es'}</li>`).join('');
    const c = fig.entryCost(e);
    const exit = e.exitLayer !== undefined ? ` data-exit="${e.exitLayer}"` : '';
    return `<tr class="entry"${exit} data-entry="${esc(e.name)}"><td class="mono">${esc(e.name)}</td>` +
      `<td>${esc(ENTRY_WHAT[e.kind](e, L))}${e.stepped ? '; repeated per step i' : ''}; writes the KV of layers ${e.kvLayers[0]}..${e.kvLayers[1] - 1}</td>` +
      `<td><ul class="stages">${stages}</ul></td><td class="num">${n}</td><td class="num">${kernels}</td>` +
      `<td class="num">${formatBytes(c.readBytes, false)}</td><td class="num">${formatBytes(c.writeBytes, false)}</td><td class="num">${formatFlops(c.flops)}</td></tr>`;
  });
  const head = ['entry point', 'what it runs', 'stages: rows → positions', 'dispatches', 'kernels', 'reads', 'writes', 'FLOPs'];
  return `<div class="scroll"><table id="entries"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table></div>`;
}

function termsText(t: CostTerms): string {
  const b = (n: number): string => formatBytes(n, false);
  const read = [t.fixedRead ? `${b(t.fixedRead)}` : '', t.rowRead ? `${b(t.rowRead)} × R` : '', t.positionRead ? `${b(t.positionRead)} × N` : ''].filter(Boolean).join(' + ') || '0';
  const flops = [t.flopsPerRow ? `${t.flopsPerRow.toLocaleString('en-US')} × R` : '', t.flopsPerPosition ? `${t.flopsPerPosition.toLocaleString('en-US')} × N` : ''].filter(Boolean).join(' + ') || '0';
  return `reads ${read}; writes ${t.rowWrite ? `${b(t.rowWrite)} × R` : '0'}; FLOPs ${flops}`;
}

export function kernelPanels(plan: Plan, fig: PlanFigures, wgsl: Map<string, string>): string {
  return plan.kernels.map((k) => {
    const use = fig.firstUse(k);
    const R = use ? fig.rows(use.stage) : 0;
    const c = use ? fig.cost.cost(use.dispatch, R, fig.position) : undefined;
    const counts = plan.entries.map((e) => [e, e.stages.reduce((a, s) => a + s.dispatches.filter((d) => d.kernel === k.id).length, 0)] as const)
      .filter(([, n]) => n > 0);
    const E = plan.exits.defaultExitLayer;
    const shownCounts = counts.filter(([e]) => e.exitLayer === undefined || e.exitLayer === E).map(([e, x]) => `${e.name} ×${x}`).join(', ');
    const inDecode = counts.find(([e]) => e.kind === 'decode')?.[1] ?? 0;
    const grid = k.grid.map((g) => (typeof g === 'number' ? String(g) : `${g.perRow} per ${g.rowsPerGroup ? `${g.rowsPerGroup} rows` : 'row'}`)).join(' × ');
    const where = use ? `one dispatch in ${use.entry.name} / ${use.stage.name} (${use.dispatch.nodes.join(' ')}): R = ${R} row${R === 1 ? '' : 's'} at positions from p = ctx/2 = ${fig.position}` : 'not dispatched';
    const summary = `<summary class="heat" data-kernel="${esc(k.id)}"><code>${esc(k.id)}</code> <span class="family">${esc(k.family)}</span>` +
      (c ? ` · ${inDecode}× per decode step · reads <span class="cost-read" data-bytes="${c.readBytes}">${formatBytes(c.readBytes, false)}</span>` +
        ` · writes <span class="cost-write" data-bytes="${c.writeBytes}">${formatBytes(c.writeBytes, false)}</span>` +
        ` · <span class="cost-flops" data-flops="${c.flops}">${formatFlops(c.flops)}</span> per dispatch` : '') +
      ` <span class="kernel-time" data-kernel="${esc(k.id)}"></span></summary>`;
    const dl: [string, string][] = [
      ['per dispatch', c ? `${esc(where)}: reads ${formatBytes(c.readBytes)}, writes ${formatBytes(c.writeBytes)}, ${c.flops.toLocaleString('en-US')} FLOPs` : 'not dispatched'],
      ['formula', use ? `${esc(termsText(fig.cost.terms(use.dispatch)))} <span class="note">(R rows; N = Σ (p+r+1) cached positions attended)</span>` : ''],
      ['dispatched by', esc(shownCounts)],
      ['workgroup · grid', `${k.workgroupSize} · ${esc(grid)}`],
      ['config', `<span class="mono">${esc(Object.entries(k.config).map(([a, b]) => `${a}=${b}`).join(' ') || '—')}</span>`],
      ['features', esc(k.features.join(', ') || '—')],
      ['fuses', `<span class="mono">${esc(k.fused.join(' '))}</span>`],
      ['bindings', `<span class="mono">${esc(k.bindings.map((b) => `${b.name}:${b.type}`).join(' '))}</span>${k.params.length ? ` params ${esc(k.params.join(', '))}` : ''}`],
      ['source', `<span class="mono">${esc(k.file)}</span>`],
    ];
    const code = wgsl.get(k.id);
    return `<details class="kernel" id="kernel-${esc(k.id)}" data-kernel="${esc(k.id)}">${summary}<div class="panel">` +
      `<dl>${dl.map(([a, b]) => `<dt>${esc(a)}</dt><dd>${b}</dd>`).join('')}</dl>` +
      (code === undefined ? '<p>WGSL not available.</p>' : `<pre class="wgsl"><code>${esc(code)}</code></pre>`) + '</div></details>';
  }).join('\n');
}
