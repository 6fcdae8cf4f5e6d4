import type { Graph } from '../compiler/ir/graph.js';
import type { Plan } from '../compiler/plan.js';
import { formatBytes, summaryJson } from '../compiler/summary.js';
import { COLORS, type ViewModel, type ViewNode } from './inspect-view.js';

/**
 * One self-contained HTML page (`lsc inspect --format html > model.html`): the layers with the
 * exits and what draft and verify run, the decoder block and body with shapes and the kernels
 * nodes are fused into, entry points, kernels, buffers and memory. No scripts, no network.
 */
const esc = (s: unknown): string => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function table(head: string[], rows: string[][], cls = ''): string {
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>\n` +
    rows.map((r) => `<tr>${r.join('')}</tr>`).join('\n') + '\n</tbody></table>';
}
const td = (s: unknown, attrs = ''): string => `<td${attrs}>${esc(s)}</td>`;

/** Layers 0..L-1 as boxes; exits marked; the default E's draft and verify spans underneath. */
function layerStrip(v: ViewModel): string {
  const L = v.layers;
  const w = Math.max(8, Math.min(40, Math.floor(900 / L)));
  const x0 = 70;
  const width = x0 + L * w + 90;
  const E = v.exit.defaultExitLayer;
  const parts: string[] = [];
  for (let l = 0; l < L; l++) {
    parts.push(`<rect x="${x0 + l * w}" y="20" width="${w - 2}" height="24" fill="${l < E ? '#cfe2f3' : '#d9ead3'}" stroke="#666"><title>layer ${l}</title></rect>`);
    if (w >= 20 || l % 4 === 0) parts.push(`<text x="${x0 + l * w + (w - 2) / 2}" y="36" font-size="9" text-anchor="middle">${l}</text>`);
  }
  parts.push(`<rect x="${x0 + L * w + 6}" y="20" width="50" height="24" fill="#fff2cc" stroke="#666"/><text x="${x0 + L * w + 31}" y="36" font-size="10" text-anchor="middle">head</text>`);
  parts.push('<text x="0" y="36" font-size="11">layers</text>');
  for (const c of v.exit.candidates) {
    const x = x0 + c * w - 1;
    parts.push(`<line x1="${x}" y1="12" x2="${x}" y2="50" stroke="${c === E ? '#e69138' : '#bbb'}" stroke-width="${c === E ? 3 : 1}"><title>exit after layer ${c - 1} (E=${c})</title></line>`);
  }
  parts.push(`<text x="${x0 + E * w}" y="10" font-size="10" fill="#e69138">E=${E}</text>`);
  const span = (y: number, from: number, to: number, color: string, text: string, head: boolean): void => {
    const a = x0 + from * w;
    const b = head ? x0 + L * w + 56 : x0 + to * w - 2;
    parts.push(`<rect x="${a}" y="${y}" width="${Math.max(2, b - a)}" height="14" fill="${color}" opacity="0.8"/>`);
    parts.push(`<text x="${a + 4}" y="${y + 11}" font-size="10">${esc(text)}</text>`);
  };
  parts.push('<text x="0" y="68" font-size="11">draft</text>');
  span(58, 0, E, '#fce5cd', `layers 0..${E - 1}, 1 row`, false);
  parts.push(`<rect x="${x0 + L * w + 6}" y="58" width="50" height="14" fill="#fce5cd" opacity="0.8"/>`);
  parts.push('<text x="0" y="88" font-size="11">verify</text>');
  span(78, 0, E, '#ead1dc', 'newest draft', false);
  span(78, E, L, '#f4cccc', `layers ${E}..${L - 1} + head over k+1 = ${v.verify.defaultK + 1} rows`, true);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="100" font-family="Helvetica, Arial, sans-serif">${parts.join('')}</svg>`;
}

function nodeRows(nodes: ViewNode[], v: ViewModel): string[][] {
  return nodes.map((n, i) => {
    const k = n.kernel;
    // one kernel cell spanning the consecutive nodes it computes
    const first = i === 0 || nodes[i - 1].kernel !== k || k === undefined;
    let span = 1;
    while (first && k !== undefined && i + span < nodes.length && nodes[i + span].kernel === k) span++;
    const kernelCell = !first ? [] : [td(k === undefined ? '' : `${v.kernels[k].id}`, span > 1 ? ` rowspan="${span}"` : '')];
    return [
      td(n.id, ` style="background:${COLORS[n.category]}"`), td(n.op), td(n.inputs.join(', ')),
      td(n.weights.map((w) => `@${w}`).join(', ')), td(n.shape, ' class="mono"'), ...kernelCell,
    ];
  });
}

export function formatHtml(graph: Graph, plan: Plan, v: ViewModel): string {
  const s = summaryJson(plan);
  const sp = s.selfSpeculation;
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
  const entries = table(['entry point', 'kind', 'stages (dispatches; rows rowStart + rowCount at posBase)', 'dispatches', 'kernels'],
    plan.entries.map((e) => [
      td(e.name), td(e.kind),
      td(e.stages.map((st) => `${st.name}: ${st.dispatches.length} (${st.range.rowStart} + ${st.range.rowCount} at ${st.range.posBase})`).join(' · ')),
      td(s.entries.find((x) => x.name === e.name)?.dispatches ?? ''), td(s.entries.find((x) => x.name === e.name)?.kernels ?? ''),
    ]));
  const kernels = table(['kernel', 'family', 'workgroup', 'config', 'features', 'first fused nodes'],
    plan.kernels.map((k) => [td(k.id, ' class="mono"'), td(k.family), td(k.workgroupSize), td(JSON.stringify(k.config), ' class="mono"'),
      td(k.features.join(', ')), td(k.fused.join(' '))]));
  const buffers = table(['buffer', 'kind', 'bytes', 'what'],
    plan.buffers.map((b) => [td(b.id, ' class="mono"'), td(b.kind), td(b.bytes.toLocaleString('en-US'), ' class="num"'), td(b.doc)]));
  const nodeHead = ['node', 'op', 'inputs', 'weights', 'shape', 'kernel (decode)'];
  const legend = Object.entries(COLORS).filter(([c]) => c !== 'repeat')
    .map(([c, col]) => `<span class="dim" style="background:${col}">${esc(c)}</span>`).join(' ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(v.name)} · lsc inspect</title>
<style>
body { font: 13px/1.4 Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 15px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0; } th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } .mono { font-family: Menlo, Consolas, monospace; font-size: 12px; } .num { text-align: right; }
.dim { display: inline-block; padding: 1px 6px; margin: 2px; border: 1px solid #ddd; border-radius: 3px; }
details { margin: 8px 0; } summary { cursor: pointer; }
</style></head><body>
<h1>${esc(v.name)}</h1>
<p>${esc(graph.doc ?? '')} ${graph.source?.builder ? `Built by ${esc(graph.source.builder)}.` : ''} Plan hash <span class="mono">${esc(plan.graph.hash)}</span>.</p>
<p>${dims}</p>
<h2>Layers, exits and self-speculation</h2>
<p>Exit candidates E ∈ {${esc(v.exit.candidates.join(', '))}}; default E=${v.exit.defaultExitLayer}, k=${v.verify.defaultK} (k ≤ ${sp.kMax}).
Draft and verify share the weights and the KV cache with prefill and decode; a round at the defaults is ${sp.roundDispatches} dispatches.</p>
${layerStrip(v)}
<h2>Memory</h2>
${memory}
<h2>Decoder block <span class="mono">${esc(v.block.name)}</span> (×${v.layers}; input ${esc(v.block.input)}, output ${esc(v.block.out)}; shapes of layer 0)</h2>
<p>${legend}</p>
${table(nodeHead, nodeRows(v.block.nodes, v))}
<h2>Body</h2>
${table(nodeHead, nodeRows(v.body, v))}
<p>Exit point: after layer E the trunk state goes through ${esc(v.exit.head.join(' → '))}. Verify subgraph: layers [${esc(v.verify.layers)}) over ${esc(v.verify.positions)} positions from the exit query cache, then ${esc(v.verify.head.join(' → '))}.</p>
<h2>Entry points</h2>
${entries}
<details><summary><b>Kernels</b> (${plan.kernels.length})</summary>${kernels}</details>
<details><summary><b>Buffers</b> (${plan.buffers.length})</summary>${buffers}</details>
</body></html>
`;
}
