import { weightRef, type Graph, type NodeDecl, type OpName } from '../ir/graph.js';
import { dimValue, type DimTable } from '../ir/dims.js';
import { LscError, pointer } from '../errors.js';
import { BOUNDS } from '../ir/bounds.js';
import { own } from '../ir/own.js';

/** A value input: another node's output, a graph input, or a weight instance. */
export type FlatInput =
  | { kind: 'value'; id: string }
  | { kind: 'input'; name: string }
  | { kind: 'weight'; id: string };

export interface FlatNode {
  /** Unique id: body nodes keep theirs, block nodes become `L<layer>.<id>`. */
  id: string;
  op: Exclude<OpName, 'repeat'>;
  inputs: FlatInput[];
  attrs: Record<string, unknown>;
  /** Layer index for nodes expanded from a block. */
  layer?: number;
  /** Where the node is declared, for error messages. */
  pointer: string;
}

/** A weight as stored in the checkpoint: one per (declaration, layer). */
export interface WeightInstance {
  id: string;
  decl: string;
  hf: string;
  layer?: number;
  /** Weight instance this one shares storage with (tied embeddings). */
  tiedTo?: string;
}

export interface FlatGraph {
  nodes: FlatNode[];
  weights: Map<string, WeightInstance>;
  /** For each repeat node: the node id carrying the trunk state after layer l (index l) and its input (index 0). */
  trunks: Map<string, { layers: number; stateAfter: string[]; input: string }>;
}

export const weightId = (decl: string, layer?: number): string => (layer === undefined ? decl : `${decl}.${layer}`);

/** The declaration of a weight instance id made by weightId. */
export const weightDecl = (id: string): string => id.replace(/\.\d+$/, '');
export const layerNodeId = (layer: number, id: string): string => `L${layer}.${id}`;

/** Unrolls `repeat` nodes into per-layer copies of their block, binding per-layer weights. */
export function expandLayers(graph: Graph, dims: DimTable, file?: string): FlatGraph {
  const nodes: FlatNode[] = [];
  const weights = new Map<string, WeightInstance>();
  const trunks: FlatGraph['trunks'] = new Map();
  const alias = new Map<string, string>(); // body-level name -> flat id
  const useWeight = (name: string, layer: number | undefined, at: string): FlatInput => {
    const decl = own(graph.weights, name);
    if (!decl) throw new LscError(`unknown weight '@${name}'`, { file, pointer: at }, 'declare it under "weights"');
    const l = decl.perLayer ? layer : undefined;
    if (decl.perLayer && layer === undefined) {
      throw new LscError(`per-layer weight '@${name}' used outside a layer block`, { file, pointer: at });
    }
    const id = weightId(name, l);
    if (!weights.has(id)) {
      const tied = decl.tiedTo !== undefined ? weightId(decl.tiedTo, l) : undefined;
      weights.set(id, { id, decl: name, hf: decl.hf.replace('{layer}', String(l)), layer: l, tiedTo: tied });
    }
    return { kind: 'weight', id };
  };
  const resolveInput = (name: string, scope: Map<string, string>, layer: number | undefined, at: string): FlatInput => {
    const w = weightRef(name);
    if (w !== undefined) return useWeight(w, layer, at);
    const local = scope.get(name);
    if (local !== undefined) return { kind: 'value', id: local };
    if (Object.hasOwn(graph.inputs, name)) return { kind: 'input', name };
    throw new LscError(`input '${name}' is not produced by any earlier node`, { file, pointer: at },
      'check the node ids and their order');
  };
  const emit = (decl: NodeDecl, id: string, scope: Map<string, string>, layer: number | undefined, at: string): void => {
    if (decl.op === 'repeat') throw new LscError('repeat nodes cannot be nested in blocks', { file, pointer: at });
    nodes.push({
      id, op: decl.op, attrs: { ...(decl.attrs ?? {}) }, layer, pointer: at,
      inputs: decl.in.map((name, i) => resolveInput(name, scope, layer, `${at}/in/${i}`)),
    });
  };

  // entry points split one stack of layers at the exit: a second repeat would be left out of them
  const second = graph.body.map((n, i) => (n.op === 'repeat' ? i : -1)).filter((i) => i >= 0)[1];
  if (second !== undefined) {
    throw new LscError('the body has more than one repeat node; lsc compiles one stack of decoder layers', { file, pointer: pointer('body', second) },
      'repeat one block over all layers');
  }
  graph.body.forEach((decl, bi) => {
    const at = pointer('body', bi);
    if (decl.op !== 'repeat') {
      emit(decl, decl.id, alias, undefined, at);
      alias.set(decl.id, decl.id);
      return;
    }
    const block = decl.block !== undefined ? own(graph.blocks, decl.block) : undefined;
    if (!block) {
      throw new LscError(`repeat refers to unknown block '${decl.block ?? ''}'`, { file, pointer: `${at}/${decl.block === undefined ? 'op' : 'block'}` },
        'name a block declared under "blocks"');
    }
    const [from, to] = (decl.layers ?? [0, 'layers']).map((e, i) => dimValue(dims, e, { file, pointer: `${at}/layers${decl.layers ? `/${i}` : ''}` }, 0));
    // exit layers, KV caches and weights are numbered by dims.layers: the stack must be exactly that
    const L = Object.hasOwn(dims.values, 'layers') ? dims.values.layers : undefined;
    if (L === undefined) throw new LscError('dims has no \'layers\' (the number of decoder layers)', { file, pointer: '/dims' }, 'declare "layers" under "dims"');
    if (from !== 0 || to !== L) {
      throw new LscError(`repeat layers [${from}, ${to}) must be [0, ${L}): the decoder layers 0..dims.layers-1`,
        { file, pointer: `${at}/layers` }, 'write "layers": [0, "layers"]');
    }
    const copies = (to - from) * block.nodes.length;
    if (copies > BOUNDS.nodeCopies) {
      throw new LscError(`repeating block '${decl.block}' (${block.nodes.length} nodes) over ${to - from} layers makes ${copies} nodes, more than ${BOUNDS.nodeCopies}`,
        { file, pointer: pointer('blocks', decl.block!, 'nodes') }, 'fewer nodes per block or fewer layers');
    }
    const blockIns = Object.keys(block.in);
    if (decl.in.length !== blockIns.length) {
      throw new LscError(`block '${decl.block}' takes ${blockIns.length} inputs, repeat gives ${decl.in.length}`,
        { file, pointer: `${at}/in` });
    }
    const start = resolveInput(decl.in[0], alias, undefined, `${at}/in/0`);
    // the carried state is the trunk buffer, written in place: it must start as a node's output
    if (start.kind !== 'value') {
      throw new LscError(`a repeat must carry a node's output (the embedding), not ${start.kind} '${decl.in[0]}'`,
        { file, pointer: `${at}/in/0` });
    }
    const input = start.id;
    let carried = start.id;
    const stateAfter: string[] = [];
    for (let l = from; l < to; l++) {
      const scope = new Map<string, string>();
      scope.set(blockIns[0], carried);
      block.nodes.forEach((n, ni) => {
        const id = layerNodeId(l, n.id);
        emit(n, id, scope, l, pointer('blocks', decl.block!, 'nodes', ni));
        scope.set(n.id, id);
      });
      const out = scope.get(block.out);
      if (!out) throw new LscError(`block output '${block.out}' is not a node of the block`, { file, pointer: pointer('blocks', decl.block!, 'out') });
      stateAfter.push(out);
      carried = out;
    }
    trunks.set(decl.id, { layers: to - from, stateAfter, input });
    alias.set(decl.id, stateAfter[stateAfter.length - 1] ?? input);
  });
  return { nodes, weights, trunks };
}
