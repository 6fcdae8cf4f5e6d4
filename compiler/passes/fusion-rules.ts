import type { Epilogue, Segment } from '../ir/kernel.js';
import type { FlatInput, FlatNode } from './expand-layers.js';

/**
 * The fusion rules, as named data: each has a matcher and an action, and the fusion pass
 * (fuse.ts) records every firing (rule name, nodes) for plan.fusion and the compile summary.
 * Ops have fusion kinds (matmul is out-fusable, rope/silu/mul/add are element-wise, rms_norm is a
 * row reduction, attention is opaque):
 *   - group rules shape a matmul kernel: an rms_norm read only by matmuls becomes their
 *     prologue; matmuls that read the same value run as one kernel (q/k/v, gate/up);
 *   - epilogue rules fold the element-wise consumer of one matmul into it: rope, the KV-cache
 *     write of k and v, silu(gate)·up, the residual add into the trunk (in place);
 *   - a node no rule takes runs as a kernel of its own, by the family that implements its op
 *     standalone (codegen/registry.ts).
 */
export interface Firing {
  rule: string;
  nodes: string[];
}

/** What the rules may ask about the stage being fused. */
export interface FuseContext {
  producer(id: string): FlatNode | undefined;
  consumers(id: string): FlatNode[];
  /** The only consumer of a value, if it has exactly one. */
  only(id: string): FlatNode | undefined;
  /** Values that live in the trunk buffer (the embedding, then each residual add). */
  trunk: Set<string>;
  numAttr(n: FlatNode, key: string, fallback?: number): number;
  /** A user error: no kernel can run this node. */
  unsupported(n: FlatNode, why: string): never;
}

export const valueId = (inp: FlatInput): string | undefined => (inp.kind === 'value' ? inp.id : undefined);

/** An epilogue rule's match: how the matmul's output rows pair up, the epilogue, and the nodes it folds in. */
export interface EpilogueMatch {
  pair: Segment['pair'];
  epilogue: Epilogue;
  /** Element-wise nodes the epilogue computes (covered by the kernel). */
  folded: FlatNode[];
  /** A sibling matmul whose rows pair with this one (gate/up): its weight is the segment's second. */
  partner?: FlatNode;
}

export interface EpilogueRule {
  name: string;
  /** `m` is a matmul of `group` (the matmuls of one input); undefined when the rule does not apply. */
  match(m: FlatNode, group: FlatNode[], cx: FuseContext): EpilogueMatch | undefined;
  /** What firing does to the stage beyond the segment (e.g. the residual's output joins the trunk). */
  apply?(m: FlatNode, match: EpilogueMatch, cx: FuseContext): void;
}

/** First match wins: rope into the K cache before plain rope. No match: the matmul stores its output. */
export const EPILOGUE_RULES: readonly EpilogueRule[] = [
  {
    name: 'rope + KV-cache write epilogue',
    match(m, _g, cx) {
      const c = cx.only(m.id);
      const user = c?.op === 'rope' ? cx.only(c.id) : undefined;
      if (!c || user?.op !== 'attention' || valueId(user.inputs[1]) !== c.id) return undefined;
      return { pair: 'half', epilogue: { kind: 'kv', plane: 'k', layer: user.layer!, rope: true, headDim: cx.numAttr(c, 'headDim') }, folded: [c] };
    },
  },
  {
    name: 'rope epilogue',
    match(m, _g, cx) {
      const c = cx.only(m.id);
      if (c?.op !== 'rope') return undefined;
      return { pair: 'half', epilogue: { kind: 'rope', out: c.id, headDim: cx.numAttr(c, 'headDim') }, folded: [c] };
    },
  },
  {
    name: 'KV-cache write epilogue',
    match(m, _g, cx) {
      const c = cx.only(m.id);
      if (c?.op !== 'attention' || valueId(c.inputs[2]) !== m.id) return undefined;
      return { pair: 'half', epilogue: { kind: 'kv', plane: 'v', layer: c.layer!, rope: false, headDim: cx.numAttr(c, 'headDim') }, folded: [] };
    },
  },
  {
    name: 'silu·mul epilogue',
    match(m, group, cx) {
      const c = cx.only(m.id);
      const mul = c?.op === 'silu' ? cx.only(c.id) : undefined;
      if (!c || mul?.op !== 'mul') return undefined;
      const otherId = mul.inputs.map(valueId).find((id) => id !== c.id);
      const up = group.find((o) => o.id === otherId);
      if (!up || cx.only(up.id) !== mul) cx.unsupported(mul, 'silu(gate)·up needs gate and up to be matmuls of the same input');
      return { pair: 'zip', epilogue: { kind: 'silu_mul', out: mul.id }, folded: [c, mul], partner: up };
    },
  },
  {
    name: 'residual add epilogue',
    match(m, _g, cx) {
      const c = cx.only(m.id);
      if (c?.op !== 'add') return undefined;
      const into = c.inputs.map(valueId).find((id) => id !== m.id);
      if (!into || !cx.trunk.has(into)) return undefined;
      return { pair: 'none', epilogue: { kind: 'residual', out: c.id, into }, folded: [c] };
    },
    apply: (_m, match, cx) => { cx.trunk.add((match.epilogue as { out: string }).out); },
  },
];

/** The rms_norm a matmul group's input comes from, when every reader of it is a matmul (it becomes their prologue). */
export function foldableNorm(id: string, cx: FuseContext): FlatNode | undefined {
  const p = cx.producer(id);
  if (p?.op !== 'rms_norm') return undefined;
  return cx.consumers(id).every((c) => c.op === 'matmul' && valueId(c.inputs[0]) === id) ? p : undefined;
}

/** A matmul kernel while the rules shape it: its input, its segments, and the norm prologue once a rule folds one in. */
export interface MatmulDraft {
  x: string;
  /** The matmuls of the kernel (all read x). */
  matmuls: FlatNode[];
  segments: Segment[];
  norm?: FlatNode;
}

export interface GroupRule {
  name: string;
  /** The nodes the rule joins into the kernel, or undefined when it does not apply. */
  match(d: MatmulDraft, cx: FuseContext): FlatNode[] | undefined;
  apply?(d: MatmulDraft, nodes: FlatNode[]): void;
}

/** Rules that shape a whole matmul kernel, applied (in this order) once its segments are built. */
export const GROUP_RULES: readonly GroupRule[] = [
  {
    name: 'rms_norm → matmul prologue',
    match: (d, cx) => { const n = foldableNorm(d.x, cx); return n ? [n] : undefined; },
    apply: (d, [n]) => { d.norm = n; },
  },
  {
    // gate and up of silu·mul pair up as one segment; q/k/v are three
    name: 'sibling matmuls → one kernel',
    match: (d) => (d.segments.length > 1 ? d.matmuls : undefined),
  },
];
