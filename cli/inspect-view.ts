import type { Graph, NodeDecl } from '../compiler/ir/graph.js';
import type { Plan } from '../compiler/plan.js';
import { resolveDims } from '../compiler/ir/dims.js';
import { expandLayers, layerNodeId } from '../compiler/passes/expand-layers.js';
import { inferShapes, type TypedValue } from '../compiler/passes/infer-shapes.js';

/**
 * The graph as people draw it, shared by the DOT and HTML views: the body, one decoder block (the
 * same for every layer) with inferred shapes, the kernel each node is fused into (from decode's
 * dispatches of layer 0), and the exit point and verify subgraph.
 */
export type Category = 'input' | 'embed' | 'norm' | 'matmul' | 'position' | 'attention' | 'elementwise' | 'select' | 'repeat';

export interface ViewNode {
  id: string;
  op: string;
  inputs: string[];
  weights: string[];
  category: Category;
  shape: string;
  /** Index into ViewModel.kernels of the dispatch computing this node (decode, layer 0). */
  kernel?: number;
}

export interface ViewModel {
  name: string;
  layers: number;
  body: ViewNode[];
  block: { name: string; input: string; out: string; nodes: ViewNode[] };
  /** Kernels of decode's dispatches that compute the nodes shown, in order. */
  kernels: { id: string; family: string; nodes: string[] }[];
  exit: { candidates: number[]; head: string[]; defaultExitLayer: number };
  verify: { layers: string; positions: string; from: Graph['verify']['from']; head: string[]; defaultK: number };
}

const CATEGORY: Record<string, Category> = {
  embed: 'embed', rms_norm: 'norm', matmul: 'matmul', rope: 'position', attention: 'attention',
  add: 'elementwise', mul: 'elementwise', silu: 'elementwise', argmax: 'select', repeat: 'repeat',
};

/** Netron-like colours per category. */
export const COLORS: Record<Category, string> = {
  input: '#eeeeee', embed: '#d9ead3', norm: '#fff2cc', matmul: '#cfe2f3', position: '#ead1dc',
  attention: '#f4cccc', elementwise: '#e6e6e6', select: '#d0e0e3', repeat: '#ffffff',
};

export function viewModel(graph: Graph, plan: Plan, file?: string): ViewModel {
  const table = resolveDims(graph, file);
  const typed = inferShapes(graph, expandLayers(graph, table, file), table, file);
  const shape = (v?: TypedValue): string => (v ? `[${v.shape.join(', ')}] ${v.dtype}` : '');
  const decode = plan.entries.find((e) => e.kind === 'decode');
  const kernels: ViewModel['kernels'] = [];
  const kernelOf = new Map<string, number>();
  for (const d of decode?.stages.flatMap((s) => s.dispatches) ?? []) {
    const nodes = d.nodes.filter((n) => !/^L\d+\./.test(n) || n.startsWith('L0.'));
    if (!nodes.length) continue;
    const family = plan.kernels.find((k) => k.id === d.kernel)?.family ?? '';
    kernels.push({ id: d.kernel, family, nodes });
    for (const n of nodes) kernelOf.set(n, kernels.length - 1);
  }
  const node = (n: NodeDecl, value: TypedValue | undefined, key: string): ViewNode => ({
    id: n.id, op: n.op,
    inputs: n.in.filter((i) => !i.startsWith('@')),
    weights: n.in.filter((i) => i.startsWith('@')).map((i) => i.slice(1)),
    category: CATEGORY[n.op] ?? 'elementwise',
    shape: shape(value),
    ...(kernelOf.has(key) ? { kernel: kernelOf.get(key) } : {}),
  });
  const body = graph.body.map((n) => {
    const trunk = typed.trunks.get(n.id);
    return node(n, typed.values.get(trunk ? trunk.stateAfter[trunk.stateAfter.length - 1] : n.id), n.id);
  });
  const repeat = graph.body.find((n) => n.op === 'repeat');
  const blockName = repeat?.block ?? Object.keys(graph.blocks)[0];
  const block = graph.blocks[blockName];
  return {
    name: graph.name,
    layers: table.values.layers,
    body,
    block: {
      name: blockName, input: Object.keys(block.in)[0], out: block.out,
      nodes: block.nodes.map((n) => node(n, typed.values.get(layerNodeId(0, n.id)), `L0.${n.id}`)),
    },
    kernels,
    exit: { candidates: graph.exit.candidates, head: graph.exit.head, defaultExitLayer: graph.defaults.exitLayer },
    verify: { layers: graph.verify.layers.join(', '), positions: graph.verify.positions, from: graph.verify.from, head: graph.verify.head, defaultK: graph.defaults.numSpeculations },
  };
}
