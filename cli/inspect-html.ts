import type { Graph } from '../compiler/ir/graph.js';
import type { Plan } from '../compiler/plan.js';
import { entryOf, type EntryKind } from '../compiler/ir/stages.js';
import { formatBytes, summaryJson } from '../compiler/summary.js';
import { CostModel } from './inspect-cost.js';
import { entriesTable, kernelPanels, PlanFigures } from './inspect-kernels.js';
import { PAGE_CSP, PAGE_CSS, PAGE_SCRIPT, scriptJson } from './inspect-page.js';
import { groupBuffers } from './inspect-plan.js';
import type { KernelTimes } from './inspect-profile.js';
import { esc, layerStrip } from './inspect-svg.js';
import { COLORS, type ViewModel, type ViewNode } from './inspect-view.js';

/**
 * One self-contained HTML page (`lsc inspect --format html > model.html`): the layers with a
 * picker for every compiled exit and what draft and verify run there, the decoder block and body
 * with shapes and the kernels nodes are fused into, entry points, one panel per kernel (WGSL,
 * bytes and FLOPs per dispatch), buffers grouped across layers, and with `--profile` the kernels
 * coloured by measured GPU time. One inline script; nothing fetched; user text escaped.
 */
export interface HtmlOptions {
  /** Kernel id -> WGSL source. */
  wgsl?: Map<string, string>;
  profile?: KernelTimes;
  /** The graph file, named in errors. */
  file?: string;
}

function table(head: string[], rows: string[][], attrs = ''): string {
  return `<div class="scroll"><table${attrs}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>\n` +
    rows.map((r) => `<tr>${r.join('')}</tr>`).join('\n') + '\n</tbody></table></div>';
}
const td = (s: unknown, attrs = ''): string => `<td${attrs}>${esc(s)}</td>`;
const kernelLink = (id: string): string => `<a class="kernel-link" href="#kernel-${esc(id)}" data-kernel="${esc(id)}">${esc(id)}</a>`;

function nodeRows(nodes: ViewNode[], v: ViewModel): string[][] {
  return nodes.map((n, i) => {
    const k = n.kernel;
    // one kernel cell spanning the consecutive nodes it computes
    const first = i === 0 || nodes[i - 1].kernel !== k || k === undefined;
    let span = 1;
    while (first && k !== undefined && i + span < nodes.length && nodes[i + span].kernel === k) span++;
    const rowspan = span > 1 ? ` rowspan="${span}"` : '';
    const kernelCell = !first ? [] : [k === undefined ? `<td${rowspan}></td>`
      : `<td class="heat mono" data-kernel="${esc(v.kernels[k].id)}"${rowspan}>${kernelLink(v.kernels[k].id)}</td>`];
    return [
      td(n.id, ` style="background:${COLORS[n.category]}"`), td(n.op), td(n.inputs.join(', ')),
      td(n.weights.map((w) => `@${w}`).join(', ')), td(n.shape, ' class="mono"'), ...kernelCell,
    ];
  });
}

function buffersTable(plan: Plan): string {
  const rows: string[] = [];
  for (const { kind, bytes, groups } of groupBuffers(plan)) {
    const n = groups.reduce((a, g) => a + g.buffers.length, 0);
    rows.push(`<tr class="kind"><th colspan="4">${esc(kind)}: ${n} buffer${n === 1 ? '' : 's'}, ${esc(formatBytes(bytes, false))}</th></tr>`);
    for (const g of groups) {
      const count = g.buffers.length;
      rows.push(`<tr class="group" data-count="${count}"><td class="mono">${esc(g.id)}${count > 1 ? ` <b>×${count}</b>` : ''}</td>` +
        `<td class="num">${esc(formatBytes(g.bytes, false))}${count > 1 ? ' each' : ''}</td><td class="num">${esc(formatBytes(g.bytes * count, false))}</td><td>${esc(g.doc)}</td></tr>`);
    }
  }
  return `<div class="scroll"><table id="buffers"><thead><tr><th>buffer ({L} = layer)</th><th>bytes</th><th>total</th><th>what</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table></div>`;
}

function exitPicker(plan: Plan): string {
  const E0 = plan.exits.defaultExitLayer;
  const k = plan.exits.defaultNumSpeculations;
  const count = (kind: EntryKind, exitLayer?: number): number => entryOf(plan, kind, exitLayer).stages.reduce((a, s) => a + s.dispatches.length, 0);
  const options = plan.exits.candidates.map((E) => `<option value="${E}"${E === E0 ? ' selected' : ''}>E = ${E}${E === E0 ? ' (default)' : ''}</option>`).join('');
  const notes = plan.exits.candidates.map((E) => {
    const d = count('draft', E);
    const v = count('verify', E);
    return `<span class="exit-note" data-exit="${E}">draft@${E}: ${d} dispatches per draft token; verify@${E}: ${v} dispatches per round; ` +
      `a round of k = ${k} drafts is ${k * d + v} dispatches (decode: ${count('decode')} per token).</span>`;
  }).join('');
  return `<p class="picker"><label>Exit layer <select id="exit-picker">${options}</select></label> ${notes}</p>`;
}

function profileSection(p: KernelTimes): string {
  const options = p.entries.map((e, i) => `<option value="${i}">${esc(e.entry)} (${e.rows} row${e.rows === 1 ? '' : 's'}, ${e.totalMs.toFixed(3)} ms)</option>`).join('');
  const tables = p.entries.map((e, i) => {
    const ks = [...e.byKernel].sort((a, b) => b[1].ms - a[1].ms);
    const max = Math.max(...ks.map(([, x]) => x.ms), 1e-9);
    const rows = ks.map(([id, x]) => [`<td class="heat mono" data-kernel="${esc(id)}">${kernelLink(id)}</td>`, td(x.count, ' class="num"'),
      td(`${x.ms.toFixed(3)} ms`, ' class="num"'), td(`${e.totalMs > 0 ? ((100 * x.ms) / e.totalMs).toFixed(1) : '0'}%`, ' class="num"'),
      `<td><span class="bar" style="width:${Math.round((120 * x.ms) / max)}px"></span></td>`]);
    return `<div data-profile-entry="${i}">${table(['kernel', 'dispatches', 'GPU time', 'share', ''], rows, ' class="profile"')}</div>`;
  }).join('');
  return `<h2>Measured GPU time</h2>
<p>From <span class="mono">lsc bench --profile</span>: each dispatch timed alone (GPU timestamps), one step or round at position p = ${p.position}.
Kernels are coloured by their time in <label><select id="profile-entry">${options}</select></label> (darker is slower).</p>
${tables}`;
}

export function formatHtml(graph: Graph, plan: Plan, v: ViewModel, o: HtmlOptions = {}): string {
  const s = summaryJson(plan);
  const sp = s.selfSpeculation;
  const fig = new PlanFigures(plan, new CostModel(graph, plan, o.file));
  const dims = Object.entries(plan.dims).map(([k, x]) => `<span class="dim"><b>${esc(k)}</b> ${esc(x)}</span>`).join(' ');
  const memory = table(['', 'bytes'], [
    [td('weights'), td(formatBytes(s.bytes.weights))],
    [td('KV cache'), td(formatBytes(s.bytes.kvCache))],
    [td('activations, I/O, constants'), td(formatBytes(s.bytes.activations))],
    [td('total'), td(formatBytes(s.bytes.total))],
    [td('exit query cache (in the trunk rows)'), td(formatBytes(sp.exitQueryCache.bytes))],
    [td('verify logits (in the logits rows)'), td(formatBytes(sp.verifyLogits.bytes))],
    [td('beyond autoregressive decoding'), td(formatBytes(sp.extraAllocatedBytes + sp.acceptStateBytes))],
  ]);
  const nodeHead = ['node', 'op', 'inputs', 'weights', 'shape', 'kernel (decode)'];
  const legend = Object.entries(COLORS).filter(([c]) => c !== 'repeat')
    .map(([c, col]) => `<span class="dim" style="background:${col}">${esc(c)}</span>`).join(' ');
  const data = {
    defaultExit: plan.exits.defaultExitLayer,
    profile: o.profile ? {
      position: o.profile.position,
      entries: o.profile.entries.map((e) => ({ entry: e.entry, rows: e.rows, totalMs: e.totalMs, kernels: Object.fromEntries(e.byKernel) })),
    } : null,
  };
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${PAGE_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${esc(v.name)} · lsc inspect</title>
<style>${PAGE_CSS}</style></head><body>
<h1>${esc(v.name)}</h1>
<p>${esc(graph.doc ?? '')} ${graph.source?.builder ? `Built by ${esc(graph.source.builder)}.` : ''} Plan hash <span class="mono">${esc(plan.graph.hash)}</span>.</p>
<p>${dims}</p>
<h2>Layers, exits and self-speculation</h2>
<p>Compiled exits E ∈ {${esc(v.exit.candidates.join(', '))}}; default E=${v.exit.defaultExitLayer}, k=${v.verify.defaultK} (k ≤ ${sp.kMax}).
Draft and verify share the weights and the KV cache with prefill and decode; a round at the defaults is ${sp.roundDispatches} dispatches.</p>
${exitPicker(plan)}
${layerStrip(v, plan.exits.candidates, plan.exits.defaultNumSpeculations)}
<h2>Memory</h2>
${memory}
<h2>Decoder block <span class="mono">${esc(v.block.name)}</span> (×${v.layers}; input ${esc(v.block.input)}, output ${esc(v.block.out)}; shapes of layer 0)</h2>
<p>${legend}</p>
${table(nodeHead, nodeRows(v.block.nodes, v), ' class="nodes"')}
<h2>Body</h2>
${table(nodeHead, nodeRows(v.body, v), ' class="nodes"')}
<p>Exit point: after layer E the trunk state goes through ${esc(v.exit.head.join(' → '))}. Verify subgraph: layers [${esc(v.verify.layers)}) over ${esc(v.verify.positions)} positions from the exit query cache, then ${esc(v.verify.head.join(' → '))}.</p>
<h2>Entry points</h2>
<p>Each entry point runs its stages in order. A stage runs rows of the activation buffers; row r holds the token at position base + r.
<b>p</b>: position of the step's (or round's) first token · <b>i</b>: step within a submission (0 ≤ i &lt; ${plan.rows.decodeSteps}) ·
<b>k</b>: drafts per round (≤ ${plan.rows.kMax}) · <b>T</b>: tokens in a prefill chunk (≤ ${plan.rows.prefillChunk}) · <b>c0</b>: position of the chunk's first token.
Draft and verify rows follow the exit picked above. Reads, writes and FLOPs are per run at p = c0 = ctx/2 = ${fig.position}, i = 0, k = ${plan.exits.defaultNumSpeculations}, T = ${plan.rows.prefillChunk}.</p>
${entriesTable(plan, fig)}
${o.profile ? profileSection(o.profile) : ''}
<h2>Kernels (${plan.kernels.length})</h2>
<p>One panel per kernel: its WGSL, and bytes read and written and FLOPs per dispatch (a multiply-add is 2 FLOPs; values fused inside the kernel cost no memory traffic).</p>
${kernelPanels(plan, fig, o.wgsl ?? new Map())}
<h2>Buffers (${plan.buffers.length})</h2>
${buffersTable(plan)}
<script type="application/json" id="lsc-data">${scriptJson(data)}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}
