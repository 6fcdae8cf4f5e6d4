import { LscError } from '../errors.js';
import type { FlatNode } from './expand-layers.js';
import type { TypedGraph } from './infer-shapes.js';
import type { FusedKernel, MatmulKernel, Segment } from '../ir/kernel.js';
import { standaloneFamily } from '../../codegen/registry.js';
import type { NodeGraph } from '../../codegen/family.js';
import { EPILOGUE_RULES, GROUP_RULES, foldableNorm, valueId, type Firing, type FuseContext, type MatmulDraft } from './fusion-rules.js';

/**
 * Fusion: groups a stage's nodes into kernels by the rules of fusion-rules.ts, recording each
 * rule that fires. A node no rule takes runs as a kernel of its own through the family that
 * implements its op standalone (codegen/registry.ts).
 */
export interface FusedStage {
  kernels: FusedKernel[];
  /** Every firing of a fusion rule, in kernel order. */
  fired: Firing[];
}

export function fuseStage(nodes: FlatNode[], g: TypedGraph, file?: string): FusedStage {
  // the trunk state (embedding, then each residual add) lives in one buffer updated in place
  const trunk = new Set<string>();
  for (const t of g.trunks.values()) for (const id of [t.input, ...t.stateAfter]) trunk.add(id);
  const consumers = new Map<string, FlatNode[]>();
  const producer = new Map<string, FlatNode>();
  const matmulsOf = new Map<string, FlatNode[]>(); // matmuls by input value
  for (const n of nodes) {
    producer.set(n.id, n);
    for (const inp of n.inputs) {
      const id = valueId(inp);
      if (!id) continue;
      let list = consumers.get(id);
      if (!list) consumers.set(id, (list = []));
      list.push(n);
    }
    const x = n.op === 'matmul' ? valueId(n.inputs[0]) : undefined;
    if (x) {
      let list = matmulsOf.get(x);
      if (!list) matmulsOf.set(x, (list = []));
      list.push(n);
    }
  }
  const width = (id: string): number => g.values.get(id)!.shape[1] as number;
  const cx: FuseContext = {
    producer: (id) => producer.get(id),
    consumers: (id) => consumers.get(id) ?? [],
    only: (id) => {
      const c = consumers.get(id) ?? [];
      return c.length === 1 ? c[0] : undefined;
    },
    trunk,
    numAttr: (n, key, fallback) => {
      const v = n.attrs[key];
      if (typeof v === 'number') return v;
      if (fallback !== undefined) return fallback;
      throw new Error(`internal: ${n.id}.${key} not resolved`);
    },
    unsupported: (n, why) => {
      throw new LscError(`no kernel can run ${n.op} '${n.id}' here: ${why}`, { file, pointer: n.pointer },
        'lsc fuses element-wise ops into the matmul that produces their input; keep the decoder pattern of the Llama graphs');
    },
  };
  const covered = new Set<string>();
  const kernels: FusedKernel[] = [];
  const fired: Firing[] = [];
  const weightOf = (m: FlatNode): string => (m.inputs[1] as { id: string }).id;

  /** One matmul kernel for every matmul of `first`'s input: a segment per matmul (or gate/up pair), then the group rules. */
  const matmulKernel = (first: FlatNode): void => {
    const xid = valueId(first.inputs[0]);
    if (!xid) cx.unsupported(first, 'matmul input must be an activation');
    const group = (matmulsOf.get(xid!) ?? []).filter((n) => !covered.has(n.id));
    const draft: MatmulDraft = { x: xid!, matmuls: group, segments: [] };
    const epilogueFirings: Firing[] = [];
    const paired = new Set<string>();
    for (const m of group) {
      if (paired.has(m.id)) continue;
      const n = width(m.id);
      const rule = EPILOGUE_RULES.map((r) => ({ r, match: r.match(m, group, cx) })).find((x) => x.match);
      const match = rule?.match ?? { pair: 'none' as const, epilogue: { kind: 'store' as const, out: m.id }, folded: [] };
      const partner = match.partner ? [match.partner] : [];
      for (const p of partner) paired.add(p.id);
      const segment: Segment = {
        weights: [m, ...partner].map(weightOf), pair: match.pair, n, units: match.pair === 'half' ? n / 2 : n, epilogue: match.epilogue,
        nodes: [m.id, ...partner.map((p) => p.id), ...match.folded.map((e) => e.id)],
      };
      draft.segments.push(segment);
      for (const e of match.folded) covered.add(e.id);
      if (rule) {
        rule.r.apply?.(m, match, cx);
        epilogueFirings.push({ rule: rule.r.name, nodes: segment.nodes });
      }
    }
    for (const m of group) covered.add(m.id);
    for (const r of GROUP_RULES) {
      const joined = r.match(draft, cx);
      if (!joined) continue;
      r.apply?.(draft, joined);
      fired.push({ rule: r.name, nodes: joined.map((n) => n.id) });
    }
    fired.push(...epilogueFirings);
    const norm = draft.norm;
    const x = norm ? valueId(norm.inputs[0])! : draft.x;
    const kernel: MatmulKernel = {
      family: 'matmul', nodes: [...(norm ? [norm.id] : []), ...draft.segments.flatMap((s) => s.nodes)], x, k: width(x),
      norm: norm ? { weight: weightOf(norm), eps: cx.numAttr(norm, 'eps', 1e-5) } : undefined,
      segments: draft.segments,
    };
    kernels.push(kernel);
  };

  const nodeGraph: NodeGraph = { width, weightShape: (id) => g.weightShapes.get(id)!, valueInputs: (n) => n.inputs.map(valueId) };
  for (const n of nodes) {
    if (covered.has(n.id)) continue;
    if (n.op === 'matmul') {
      matmulKernel(n);
    } else if (n.op === 'rms_norm' && foldableNorm(n.id, cx)) {
      // runs as the prologue of its consumers
    } else {
      // a family that runs this op as a kernel of its own
      const family = standaloneFamily(n.op);
      if (!family) {
        cx.unsupported(n, n.op === 'rms_norm' ? 'an rms_norm must feed only matmuls' : 'it has no producer kernel to fuse into');
      }
      const k = family!.fromNode!(n, nodeGraph);
      kernels.push(k);
      for (const t of family!.persistent?.(k).trunk ?? []) trunk.add(t);
    }
    covered.add(n.id);
  }
  return { kernels, fired };
}
