import type { Graph } from '../ir/graph.js';
import { LscError } from '../errors.js';
import { dimValue, type DimTable } from '../ir/dims.js';
import { BOUNDS } from '../ir/bounds.js';
import type { FlatNode } from './expand-layers.js';
import type { TypedGraph } from './infer-shapes.js';

/**
 * Rows of the activation buffers a stage works on, as expressions over the runtime symbols
 *   p  position of the round's first token    i  step index within a submission
 *   k  drafts in this round                   T  rows of this prefill chunk
 *   c0 position of the chunk's first row
 * Row r of a stage sits at position posBase + r, so every entry point addresses the same
 * row-indexed buffers (the trunk rows double as the exit query cache).
 */
export interface RowRange {
  rowStart: string;
  rowCount: string;
  posBase: string;
}

export interface Stage {
  name: string;
  range: RowRange;
  nodes: FlatNode[];
}

export type EntryKind = 'prefill' | 'decode' | 'draft' | 'verify';

export interface EntryPoint {
  name: string;
  kind: EntryKind;
  exitLayer?: number;
  /** Repeated for steps i = 0.. within one submission. */
  stepped: boolean;
  stages: Stage[];
  /** Layers whose KV cache this entry writes. */
  kvLayers: [number, number];
}

/** Copies head nodes so that they read the trunk state after `layers` layers instead of the last. */
function rebindHead(head: FlatNode[], from: string, to: string): FlatNode[] {
  return head.map((n) => ({
    ...n,
    inputs: n.inputs.map((inp) => (inp.kind === 'value' && inp.id === from ? { kind: 'value', id: to } : inp)),
  }));
}

const sameList = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const squash = (e: string | number): string => String(e).replace(/\s+/g, '');

/**
 * The exit point and verify subgraph as this compiler builds them: verify runs layers [E, L) over
 * the k+1 positions of a round, and both apply the head: the body nodes after the trunk. A graph
 * that says otherwise would compile into a plan that computes something else, so it is an error.
 */
function checkExitAndVerify(graph: Graph, g: TypedGraph, L: number, dims: DimTable, file?: string): void {
  const v = graph.verify;
  if (squash(v.layers[0]) !== 'E') {
    throw new LscError(`verify_subgraph layers must start at the exit layer "E", got ${JSON.stringify(v.layers[0])}`,
      { file, pointer: '/verify/layers/0' }, 'write "layers": ["E", "layers"]');
  }
  const end = dimValue(dims, v.layers[1], { file, pointer: '/verify/layers/1' });
  if (end !== L) {
    throw new LscError(`verify_subgraph layers must end at the last layer (${L}), got ${JSON.stringify(v.layers[1])} = ${end}`,
      { file, pointer: '/verify/layers/1' }, 'write "layers": ["E", "layers"]');
  }
  if (squash(v.positions) !== 'k+1') {
    throw new LscError(`verify_subgraph positions must be "k+1" (the k drafts and the token before them), got ${JSON.stringify(v.positions)}`,
      { file, pointer: '/verify/positions' });
  }
  const repeatAt = graph.body.findIndex((n) => n.id === graph.exit.trunk);
  const after = graph.body.slice(repeatAt + 1).map((n) => n.id);
  if (!sameList(graph.exit.head, after)) {
    throw new LscError(`exit_point head ${JSON.stringify(graph.exit.head)} must list the body nodes after the trunk, in order: ${JSON.stringify(after)}`,
      { file, pointer: '/exit/head' }, 'the head (final norm, LM head, argmax) is what the early exit shares with the last layer');
  }
  if (!sameList(graph.verify.head, graph.exit.head)) {
    throw new LscError('verify_subgraph head must be the exit_point head (the shared head)', { file, pointer: '/verify/head' });
  }
  const last = g.nodes.find((n) => n.id === after[after.length - 1]);
  if (last?.op !== 'argmax') {
    throw new LscError('the head must end with an argmax node (the runtime reads its picks and its input logits)',
      { file, pointer: '/exit/head' });
  }
}

/** Derives prefill, decode, and draft@E / verify@E for every exit candidate. */
export function deriveEntryPoints(graph: Graph, g: TypedGraph, dims: DimTable, file?: string): EntryPoint[] {
  const trunk = g.trunks.get(graph.exit.trunk);
  if (!trunk) {
    throw new LscError(`exit_point trunk '${graph.exit.trunk}' is not a repeat node of the body`, { file, pointer: '/exit/trunk' });
  }
  if (graph.verify.trunk !== graph.exit.trunk) {
    throw new LscError('verify_subgraph must verify the trunk the exit point leaves', { file, pointer: '/verify/trunk' });
  }
  const L = trunk.layers;
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const headOf = (ids: string[], ptr: string): FlatNode[] => ids.map((id, i) => {
    const n = byId.get(id);
    if (!n || n.layer !== undefined) throw new LscError(`head node '${id}' is not a body node`, { file, pointer: `${ptr}/${i}` });
    return n;
  });
  const exitHead = headOf(graph.exit.head, '/exit/head');
  const verifyHead = headOf(graph.verify.head, '/verify/head');
  checkExitAndVerify(graph, g, L, dims, file);
  graph.exit.candidates.forEach((E, ci) => {
    if (!Number.isInteger(E) || E < 1 || E >= L) {
      throw new LscError(L < 2 ? `exit candidate ${E}: a model of ${L} layer has no layer to exit after`
        : `exit candidate ${E} must be a layer in 1..${L - 1}`, { file, pointer: `/exit/candidates/${ci}` },
      L < 2 ? 'self-speculation needs at least 2 layers' : undefined);
    }
  });
  // every entry point copies node lists: bound their total before building them
  const perLayer = L ? (g.nodes.length - g.nodes.filter((n) => n.layer === undefined).length) / L : 0;
  const outside = g.nodes.length - perLayer * L;
  const copies = 2 * g.nodes.length + graph.exit.candidates.reduce((a, E) => a + 2 * outside + (E + L) * perLayer, 0);
  if (copies > BOUNDS.nodeCopies) {
    throw new LscError(`${graph.exit.candidates.length} exit candidates over ${L} layers make ${copies} node copies in the entry points, more than ${BOUNDS.nodeCopies}`,
      { file, pointer: '/exit/candidates' }, 'compile fewer exit candidates');
  }
  const layerNodes = (from: number, to: number): FlatNode[] =>
    g.nodes.filter((n) => n.layer !== undefined && n.layer >= from && n.layer < to);
  const pre = g.nodes.filter((n) => n.layer === undefined && !exitHead.includes(n) && !verifyHead.includes(n));
  const last = trunk.stateAfter[L - 1];
  const full = [...pre, ...layerNodes(0, L)];

  const entries: EntryPoint[] = [
    {
      name: 'prefill', kind: 'prefill', stepped: false, kvLayers: [0, L],
      stages: [
        { name: 'layers', range: { rowStart: '0', rowCount: 'T', posBase: 'c0' }, nodes: full },
        { name: 'head', range: { rowStart: 'T-1', rowCount: '1', posBase: 'c0' }, nodes: exitHead },
      ],
    },
    {
      name: 'decode', kind: 'decode', stepped: true, kvLayers: [0, L],
      stages: [{ name: 'step', range: { rowStart: 'i', rowCount: '1', posBase: 'p' }, nodes: [...full, ...exitHead] }],
    },
  ];
  graph.exit.candidates.forEach((E) => {
    const exitState = trunk.stateAfter[E - 1];
    entries.push({
      name: `draft@${E}`, kind: 'draft', exitLayer: E, stepped: true, kvLayers: [0, E],
      stages: [{
        name: 'step', range: { rowStart: 'i', rowCount: '1', posBase: 'p' },
        nodes: [...pre, ...layerNodes(0, E), ...rebindHead(exitHead, last, exitState)],
      }],
    });
    entries.push({
      name: `verify@${E}`, kind: 'verify', exitLayer: E, stepped: false, kvLayers: [0, L],
      stages: [
        // the newest draft has not been through layers < E yet
        { name: 'newest', range: { rowStart: 'k', rowCount: '1', posBase: 'p' }, nodes: [...pre, ...layerNodes(0, E)] },
        // every position of the round, from the exit query cache (trunk rows 0..k)
        { name: 'deep', range: { rowStart: '0', rowCount: 'k+1', posBase: 'p' }, nodes: layerNodes(E, L) },
        { name: 'head', range: { rowStart: '0', rowCount: 'k+1', posBase: 'p' }, nodes: verifyHead },
      ],
    });
  });
  return entries;
}
