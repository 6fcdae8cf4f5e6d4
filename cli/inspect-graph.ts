import type { Graph, NodeDecl, SymbolicDim } from '../compiler/ir/graph.js';
import { resolveDims } from '../compiler/ir/dims.js';
import { expandLayers, layerNodeId } from '../compiler/passes/expand-layers.js';
import { inferShapes, type TypedValue } from '../compiler/passes/infer-shapes.js';
import { plural } from '../compiler/plural.js';

/** The graph for people: dims, weights, body, one decoder layer with inferred shapes. */
export function formatGraph(graph: Graph, file?: string): string {
  const table = resolveDims(graph, file);
  const dims = table.values;
  const typed = inferShapes(graph, expandLayers(graph, table, file), table, file);
  const shape = (v?: TypedValue): string => (v ? `[${v.shape.join(', ')}] ${v.dtype}` : '');
  const out: string[] = [];

  out.push(`graph ${graph.name} (${graph.format}${graph.source?.builder ? `, built by ${graph.source.builder}` : ''})`);
  if (graph.doc) out.push(`  ${graph.doc}`);
  const dimText = Object.entries(graph.dims).map(([k, v]) => {
    const sym = typeof v === 'object' ? (v as SymbolicDim) : undefined;
    const expr = sym ? sym.max : v;
    const shown = typeof expr === 'string' && expr !== String(dims[k]) ? `${expr} = ${dims[k]}` : String(dims[k]);
    return sym ? `${k} ≤ ${shown}` : `${k} ${shown}`;
  });
  out.push(`  dims     ${dimText.join(' · ')}`);
  out.push(`  dtypes   ${Object.entries(graph.dtypes).map(([k, v]) => `${k} ${v}`).join(' · ')}`);
  const sc = graph.rope.scaling;
  out.push(`  rope     theta ${graph.rope.theta}, ${graph.rope.style}${sc ? `, scaling ${JSON.stringify(sc)}` : ''}`);
  out.push(`  tokens   ${graph.tokens.bos !== undefined ? `bos ${graph.tokens.bos} · ` : ''}eos ${graph.tokens.eos.join(', ') || 'none'}`);
  out.push(`  inputs   ${Object.entries(graph.inputs).map(([k, v]) => `${k} [${v.shape.join(', ')}] ${v.dtype}`).join(' · ')}`);

  const wNames = Object.keys(graph.weights);
  out.push('', `weights (${wNames.length} declared, ${plural(typed.weights.size, 'tensor')})`);
  const nw = Math.max(...wNames.map((n) => n.length));
  for (const [name, w] of Object.entries(graph.weights)) {
    const inst = [...typed.weights.values()].find((x) => x.decl === name)!;
    const s = `[${typed.weightShapes.get(inst.id)!.join(', ')}]`;
    out.push(`  ${name.padEnd(nw)}  ${s.padEnd(14)} ${(w.perLayer ? 'per layer' : '').padEnd(9)}  ${w.hf}${w.tiedTo ? `  (tied to ${w.tiedTo})` : ''}${w.format ? `  (format ${w.format})` : ''}`);
  }

  const call = (n: NodeDecl): string => {
    if (n.op === 'repeat') return `repeat ${n.block} over layers [${(n.layers ?? [0, 'layers']).join(', ')}) (${n.in.join(', ')})`;
    const attrs = Object.entries(n.attrs ?? {}).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    return `${n.op}(${n.in.join(', ')})${attrs.length ? ' ' + attrs.join(' ') : ''}`;
  };
  const nodeLines = (nodes: NodeDecl[], valueOf: (n: NodeDecl) => TypedValue | undefined): void => {
    const rows = nodes.map((n) => [n.id, call(n), shape(valueOf(n))]);
    const a = Math.max(...rows.map((r) => r[0].length));
    const b = Math.max(...rows.map((r) => r[1].length));
    for (const [id, c, s] of rows) out.push(`  ${id.padEnd(a)} = ${c.padEnd(b)}  ${s}`.trimEnd());
  };
  out.push('', 'body');
  nodeLines(graph.body, (n) => {
    const trunk = typed.trunks.get(n.id);
    return typed.values.get(trunk ? trunk.stateAfter[trunk.stateAfter.length - 1] : n.id);
  });
  for (const [name, block] of Object.entries(graph.blocks)) {
    const ins = Object.entries(block.in).map(([k, s]) => `${k} [${s.join(', ')}]`).join(', ');
    const first = [...typed.trunks.values()][0];
    const l0 = first ? Number(/^L(\d+)\./.exec(first.stateAfter[0] ?? '')?.[1] ?? 0) : 0;
    out.push('', `block ${name} (one layer; in: ${ins}; out: ${block.out}; shapes of layer ${l0})`);
    nodeLines(block.nodes, (n) => typed.values.get(layerNodeId(l0, n.id)));
  }
  const L = dims.layers;
  out.push('', `exit     after layer E ∈ {${graph.exit.candidates.join(', ')}} of ${graph.exit.trunk}, through ${graph.exit.head.join(' → ')}` +
    ` (shared with the full model)`);
  out.push(`verify   layers [${graph.verify.layers.join(', ')}) over ${graph.verify.positions} positions from the ${graph.verify.from.replace(/_/g, ' ')}, ` +
    `then ${graph.verify.head.join(' → ')}`);
  out.push(`defaults exit layer ${graph.defaults.exitLayer} of ${L}, ${graph.defaults.numSpeculations} speculations per round` +
    (graph.defaults.prefillChunk ? `, prefill chunk ${graph.defaults.prefillChunk}` : ''));
  return out.join('\n') + '\n';
}
