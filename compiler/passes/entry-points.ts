import type { Graph } from '../ir/graph.js';
import { LscError } from '../errors.js';
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

/** Derives prefill, decode, and draft@E / verify@E for every exit candidate. */
export function deriveEntryPoints(graph: Graph, g: TypedGraph, file?: string): EntryPoint[] {
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
  graph.exit.candidates.forEach((E, ci) => {
    if (!Number.isInteger(E) || E < 1 || E >= L) {
      throw new LscError(`exit candidate ${E} must be a layer in 1..${L - 1}`, { file, pointer: `/exit/candidates/${ci}` });
    }
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
