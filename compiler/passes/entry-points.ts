import type { Graph } from '../ir/graph.js';
import { LscError } from '../errors.js';
import { compileDimExpr, dimValue, type DimTable } from '../ir/dims.js';
import { entryName, type EntryKind, type StageRole } from '../ir/stages.js';
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
  /** For people (plan.json, inspect); code goes by `role`. */
  name: string;
  role: StageRole;
  range: RowRange;
  nodes: FlatNode[];
}

export type { EntryKind } from '../ir/stages.js';

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

/** Where verify starts, as the runtime can run it. */
export type VerifyFrom = 'exit_query_cache' | 'embedding';

/**
 * The span the verify_subgraph declares, for every exit candidate: layers [from, to) with `from`
 * an expression over the exit layer E. Two spans run correctly on the in-place trunk (one buffer
 * holds every layer's state, row by row):
 *   - from E ("exit_query_cache"): rows 0..k-1 of the trunk still hold the drafts' state after
 *     layer E-1 (the exit query cache); only the newest draft goes through layers < E first;
 *   - from 0 ("embedding"): all k+1 positions are recomputed from their tokens; the KV of layers
 *     < E is written again with the values the drafts wrote (the kernels are batch-invariant).
 * A start strictly between 0 and E would need the trunk state after that layer, which the draft's
 * later layers have overwritten; a start above E would skip layers; an end before the last layer
 * would verify with another model than the one autoregressive decoding runs. All are refused.
 */
function verifySpan(graph: Graph, L: number, dims: DimTable, file?: string): VerifyFrom {
  const v = graph.verify;
  const end = dimValue(dims, v.layers[1], { file, pointer: '/verify/layers/1' }, 0);
  if (end !== L) {
    throw new LscError(`verify_subgraph layers must end at the last layer (${L}), got ${JSON.stringify(v.layers[1])} = ${end}`,
      { file, pointer: '/verify/layers/1' }, 'the verifier is the full model: write "layers": ["E", "layers"]');
  }
  const at = { file, pointer: '/verify/layers/0' };
  let fromOf: (E: number) => number;
  try {
    const f = compileDimExpr(v.layers[0]);
    fromOf = (E) => f((n) => {
      if (n === 'E') return E;
      if (!Object.hasOwn(dims.values, n)) throw new Error(`unknown dim '${n}' (the exit layer is "E")`);
      return dims.values[n];
    });
  } catch (e) {
    throw new LscError(`verify_subgraph layers start ${JSON.stringify(v.layers[0])}: ${(e as Error).message}`, at);
  }
  const kinds = new Set<VerifyFrom>();
  for (const E of graph.exit.candidates) {
    let from: number;
    try {
      from = fromOf(E);
    } catch (e) {
      throw new LscError(`verify_subgraph layers start ${JSON.stringify(v.layers[0])}: ${(e as Error).message}`, at);
    }
    const why = `verify_subgraph layers start ${JSON.stringify(v.layers[0])} is layer ${from} for exit ${E}`;
    const fix = 'write "layers": ["E", "layers"] (reuse the exit query cache) or ["0", "layers"] (recompute from the embedding)';
    if (from === E) kinds.add('exit_query_cache');
    else if (from === 0) kinds.add('embedding');
    else if (from > 0 && from < E) {
      throw new LscError(`${why}: verify would need the trunk state after layer ${from - 1}, which the draft's layers ${from}..${E - 1} overwrite in place`, at, fix);
    } else {
      throw new LscError(`${why}: ${from > E ? `layers ${E}..${from - 1} would never run for the drafts` : 'not a layer'}`, at, fix);
    }
  }
  if (kinds.size !== 1) {
    throw new LscError(`verify_subgraph layers start ${JSON.stringify(v.layers[0])} is E for some exits and 0 for others`, at,
      'write "E" or "0"');
  }
  const from = [...kinds][0];
  if (v.from !== from) {
    throw new LscError(`verify_subgraph from is ${JSON.stringify(v.from)}, but layers start at ${from === 'embedding' ? '0: verify starts from the embedding' : 'E: verify starts from the exit query cache'}`,
      { file, pointer: '/verify/from' }, `write "from": "${from}"`);
  }
  if (squash(v.positions) !== 'k+1') {
    throw new LscError(`verify_subgraph positions must be "k+1" (the k drafts and the token before them), got ${JSON.stringify(v.positions)}`,
      { file, pointer: '/verify/positions' });
  }
  return from;
}

/** The head both declarations share: the body nodes after the trunk, ending in an argmax. */
function checkHeads(graph: Graph, g: TypedGraph, file?: string): void {
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

/**
 * Derives prefill and decode of the full model and, for every exit candidate E, prefill@E (the
 * early-exit model over a prompt chunk), draft@E and verify@E over the span the graph declares.
 */
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
  checkHeads(graph, g, file);
  graph.exit.candidates.forEach((E, ci) => {
    if (!Number.isInteger(E) || E < 1 || E >= L) {
      throw new LscError(L < 2 ? `exit candidate ${E}: a model of ${L} layer has no layer to exit after`
        : `exit candidate ${E} must be a layer in 1..${L - 1}`, { file, pointer: `/exit/candidates/${ci}` },
      L < 2 ? 'self-speculation needs at least 2 layers' : undefined);
    }
  });
  const verifyFrom = verifySpan(graph, L, dims, file);
  // every entry point copies node lists: bound their total before building them
  const perLayer = L ? (g.nodes.length - g.nodes.filter((n) => n.layer === undefined).length) / L : 0;
  const outside = g.nodes.length - perLayer * L;
  const copies = 2 * g.nodes.length + graph.exit.candidates.reduce((a, E) => a + 3 * outside + (2 * E + L) * perLayer, 0);
  if (copies > BOUNDS.nodeCopies) {
    throw new LscError(`${graph.exit.candidates.length} exit candidates over ${L} layers make ${copies} node copies in the entry points, more than ${BOUNDS.nodeCopies}`,
      { file, pointer: '/exit/candidates' }, 'compile fewer exit candidates');
  }
  const layerNodes = (from: number, to: number): FlatNode[] =>
    g.nodes.filter((n) => n.layer !== undefined && n.layer >= from && n.layer < to);
  const pre = g.nodes.filter((n) => n.layer === undefined && !exitHead.includes(n) && !verifyHead.includes(n));
  const last = trunk.stateAfter[L - 1];
  const full = [...pre, ...layerNodes(0, L)];
  const chunk: RowRange = { rowStart: '0', rowCount: 'T', posBase: 'c0' };
  const lastRow: RowRange = { rowStart: 'T-1', rowCount: '1', posBase: 'c0' };
  const stepRow: RowRange = { rowStart: 'i', rowCount: '1', posBase: 'p' };
  const round: RowRange = { rowStart: '0', rowCount: 'k+1', posBase: 'p' };

  const entries: EntryPoint[] = [
    {
      name: entryName('prefill'), kind: 'prefill', stepped: false, kvLayers: [0, L],
      stages: [
        { name: 'layers', role: 'trunk', range: chunk, nodes: full },
        { name: 'head', role: 'head', range: lastRow, nodes: exitHead },
      ],
    },
    {
      name: entryName('decode'), kind: 'decode', stepped: true, kvLayers: [0, L],
      stages: [{ name: 'step', role: 'step', range: stepRow, nodes: [...full, ...exitHead] }],
    },
  ];
  graph.exit.candidates.forEach((E) => {
    // the head on the state after layer E-1 (the same buffer as the last state: the trunk is in place)
    const exitHeadE = rebindHead(exitHead, last, trunk.stateAfter[E - 1]);
    entries.push({
      name: entryName('prefill', E), kind: 'prefill', exitLayer: E, stepped: false, kvLayers: [0, E],
      stages: [
        { name: 'layers', role: 'trunk', range: chunk, nodes: [...pre, ...layerNodes(0, E)] },
        { name: 'head', role: 'head', range: lastRow, nodes: exitHeadE },
      ],
    });
    entries.push({
      name: entryName('draft', E), kind: 'draft', exitLayer: E, stepped: true, kvLayers: [0, E],
      stages: [{ name: 'step', role: 'step', range: stepRow, nodes: [...pre, ...layerNodes(0, E), ...exitHeadE] }],
    });
    entries.push({
      name: entryName('verify', E), kind: 'verify', exitLayer: E, stepped: false, kvLayers: [0, L],
      stages: verifyFrom === 'exit_query_cache' ? [
        // the newest draft has not been through layers < E yet
        { name: 'newest', role: 'newest', range: { rowStart: 'k', rowCount: '1', posBase: 'p' }, nodes: [...pre, ...layerNodes(0, E)] },
        // every position of the round, from the exit query cache (trunk rows 0..k)
        { name: 'deep', role: 'deep', range: round, nodes: layerNodes(E, L) },
        { name: 'head', role: 'head', range: round, nodes: verifyHead },
      ] : [
        // every position of the round from its token: the drafts' trunk state is not reused
        { name: 'layers', role: 'trunk', range: round, nodes: full },
        { name: 'head', role: 'head', range: round, nodes: verifyHead },
      ],
    });
  });
  return entries;
}
