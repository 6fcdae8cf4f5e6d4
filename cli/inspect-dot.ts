import { COLORS, type ViewModel, type ViewNode } from './inspect-view.js';

/**
 * Graphviz DOT of the graph (`lsc inspect --format dot | dot -Tsvg > graph.svg`): the body, the
 * decoder block as a cluster drawn once for all layers, each fused kernel as a dashed sub-cluster
 * around the nodes it computes, and the exit point and verify subgraph with the edges they add.
 */
const q = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
/** A quoted label of several lines. */
const lines = (...ls: string[]): string => `"${ls.map((l) => q(l).slice(1, -1)).join('\\n')}"`;

function nodeLine(id: string, n: ViewNode): string {
  const label = lines(`${n.id} = ${n.op}`, ...(n.weights.length ? [`@${n.weights.join(', @')}`] : []), n.shape);
  return `${q(id)} [label=${label}, fillcolor=${q(COLORS[n.category])}];`;
}

export function formatDot(v: ViewModel): string {
  const out: string[] = [];
  const ind = (depth: number, s: string): void => { out.push('  '.repeat(depth) + s); };
  out.push(`digraph ${q(v.name)} {`);
  ind(1, 'rankdir=TB; compound=true; newrank=true;');
  ind(1, 'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];');
  ind(1, 'edge [fontname="Helvetica", fontsize=9];');
  ind(1, `label=${q(`${v.name}: ${v.layers} layers; exit E ∈ {${v.exit.candidates.join(', ')}}, default E=${v.exit.defaultExitLayer}, k=${v.verify.defaultK}`)}; labelloc=t;`);

  const bodyIds = new Set(v.body.map((n) => n.id));
  const inputs = new Set(v.body.flatMap((n) => n.inputs).filter((i) => !bodyIds.has(i)));
  for (const i of inputs) ind(1, `${q(`in:${i}`)} [label=${q(i)}, shape=ellipse, fillcolor=${q(COLORS.input)}];`);
  const ref = (id: string): string => (bodyIds.has(id) ? q(id) : q(`in:${id}`));

  // one kernel's nodes in a dashed cluster (only clusters of several nodes: fusion is the point)
  const clustered = (nodes: ViewNode[], idOf: (n: ViewNode) => string, depth: number, prefix: string): void => {
    const groups = new Map<number | undefined, ViewNode[]>();
    for (const n of nodes) groups.set(n.kernel, [...(groups.get(n.kernel) ?? []), n]);
    for (const [k, ns] of groups) {
      if (k === undefined || ns.length < 2) { for (const n of ns) ind(depth, nodeLine(idOf(n), n)); continue; }
      const kern = v.kernels[k];
      ind(depth, `subgraph ${q(`cluster_${prefix}k${k}`)} {`);
      ind(depth + 1, `label=${q(`kernel ${kern.id}`)}; style=dashed; color="#888888"; fontsize=9;`);
      for (const n of ns) ind(depth + 1, nodeLine(idOf(n), n));
      ind(depth, '}');
    }
  };

  const trunk = v.body.find((n) => n.op === 'repeat');
  clustered(v.body.filter((n) => n.op !== 'repeat'), (n) => n.id, 1, 'body');
  const blk = (id: string): string => `${v.block.name}/${id}`;
  const blockIds = new Set(v.block.nodes.map((n) => n.id));
  if (trunk) {
    ind(1, `subgraph ${q('cluster_block')} {`);
    ind(2, `label=${q(`${trunk.id}: ${v.block.name} × ${v.layers} layers (layer 0 shown; shapes ${trunk.shape})`)}; style="rounded"; color="#444444";`);
    ind(2, `${q(blk(v.block.input))} [label=${q(`${v.block.input} (layer input)`)}, shape=ellipse, fillcolor=${q(COLORS.input)}];`);
    clustered(v.block.nodes, (n) => blk(n.id), 2, 'block');
    ind(1, '}');
    for (const n of v.block.nodes) {
      for (const i of n.inputs) ind(1, `${q(blk(blockIds.has(i) ? i : v.block.input))} -> ${q(blk(n.id))};`);
    }
    // the layer's output is the next layer's input
    ind(1, `${q(blk(v.block.out))} -> ${q(blk(v.block.input))} [style=dotted, constraint=false, label="next layer"];`);
  }
  for (const n of v.body) {
    if (n.op === 'repeat') {
      for (const i of n.inputs) ind(1, `${ref(i)} -> ${q(blk(v.block.input))};`);
      continue;
    }
    for (const i of n.inputs) {
      const from = trunk && i === trunk.id ? q(blk(v.block.out)) : ref(i);
      ind(1, `${from} -> ${q(n.id)}${trunk && i === trunk.id ? ' [label="after the last layer"]' : ''};`);
    }
  }
  if (trunk) {
    const head = v.exit.head[0];
    ind(1, `"exit_point" [shape=diamond, fillcolor="#fce5cd", label=${lines('exit_point', `after layer E ∈ {${v.exit.candidates.join(', ')}}`, 'draft: layers 0..E-1 + shared head')}];`);
    ind(1, `"verify_subgraph" [shape=hexagon, fillcolor="#fce5cd", label=${lines('verify_subgraph', `layers [${v.verify.layers}) over ${v.verify.positions} positions`, 'from the exit query cache')}];`);
    ind(1, `${q(blk(v.block.out))} -> "exit_point" [style=dashed, color="#e69138", label="layer E-1"];`);
    if (head) ind(1, `"exit_point" -> ${q(head)} [style=dashed, color="#e69138", label="exit state"];`);
    ind(1, `"exit_point" -> "verify_subgraph" [style=dashed, color="#e69138", label="exit query cache"];`);
    ind(1, `"verify_subgraph" -> ${q(blk(v.block.input))} [style=dashed, color="#e69138", label="layers E.., k+1 rows"];`);
  }
  out.push('}');
  return out.join('\n') + '\n';
}
