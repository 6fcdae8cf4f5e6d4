import { LscError } from '../errors.js';
import type { FlatInput, FlatNode } from './expand-layers.js';
import type { TypedGraph } from './infer-shapes.js';
import type { Epilogue, FusedKernel, Segment } from '../ir/kernel.js';

/**
 * Fusion: groups a stage's nodes into kernels. Ops have fusion kinds (matmul is out-fusable,
 * rope/silu/mul/add are element-wise, rms_norm is a row reduction, attention is opaque); the
 * rules are
 *   - an rms_norm read only by matmuls becomes their prologue,
 *   - matmuls that read the same value run as one kernel (q/k/v, gate/up),
 *   - element-wise consumers become the matmul's epilogue: rope, the KV-cache write of k and v,
 *     silu(gate)·up, and the residual add into the trunk (in place),
 *   - attention, embed and argmax are kernels of their own.
 */
const valueId = (inp: FlatInput): string | undefined => (inp.kind === 'value' ? inp.id : undefined);

export function fuseStage(nodes: FlatNode[], g: TypedGraph, file?: string): FusedKernel[] {
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
  const only = (id: string): FlatNode | undefined => {
    const c = consumers.get(id) ?? [];
    return c.length === 1 ? c[0] : undefined;
  };
  const width = (id: string): number => g.values.get(id)!.shape[1] as number;
  const numAttr = (n: FlatNode, key: string, fallback?: number): number => {
    const v = n.attrs[key];
    if (typeof v === 'number') return v;
    if (fallback !== undefined) return fallback;
    throw new Error(`internal: ${n.id}.${key} not resolved`);
  };
  const covered = new Set<string>();
  const kernels: FusedKernel[] = [];
  const unsupported = (n: FlatNode, why: string): never => {
    throw new LscError(`no kernel can run ${n.op} '${n.id}' here: ${why}`, { file, pointer: n.pointer },
      'lsc fuses element-wise ops into the matmul that produces their input; keep the decoder pattern of the Llama graphs');
  };

  const foldableNorm = (id: string): FlatNode | undefined => {
    const p = producer.get(id);
    if (p?.op !== 'rms_norm') return undefined;
    const cs = consumers.get(id) ?? [];
    return cs.every((c) => c.op === 'matmul' && valueId(c.inputs[0]) === id) ? p : undefined;
  };

  const matmulGroup = (first: FlatNode): void => {
    const xid = valueId(first.inputs[0]);
    if (!xid) unsupported(first, 'matmul input must be an activation');
    const group = (matmulsOf.get(xid!) ?? []).filter((n) => !covered.has(n.id));
    const norm = foldableNorm(xid!);
    const segments: Segment[] = [];
    const weightOf = (m: FlatNode): string => (m.inputs[1] as { id: string }).id;
    const paired = new Set<string>();
    for (const m of group) {
      if (paired.has(m.id)) continue;
      const n = width(m.id);
      const c = only(m.id);
      const seg = (pair: Segment['pair'], epilogue: Epilogue, extra: FlatNode[], weights = [weightOf(m)], others: string[] = []): void => {
        segments.push({ weights, pair, n, units: pair === 'half' ? n / 2 : n, epilogue, nodes: [m.id, ...others, ...extra.map((e) => e.id)] });
        for (const e of extra) covered.add(e.id);
      };
      if (c?.op === 'rope') {
        const hd = numAttr(c, 'headDim');
        const user = only(c.id);
        if (user?.op === 'attention' && valueId(user.inputs[1]) === c.id) {
          seg('half', { kind: 'kv', plane: 'k', layer: user.layer!, rope: true, headDim: hd }, [c]);
        } else {
          seg('half', { kind: 'rope', out: c.id, headDim: hd }, [c]);
        }
      } else if (c?.op === 'attention' && valueId(c.inputs[2]) === m.id) {
        seg('half', { kind: 'kv', plane: 'v', layer: c.layer!, rope: false, headDim: numAttr(c, 'headDim') }, []);
      } else if (c?.op === 'silu' && only(c.id)?.op === 'mul') {
        const mul = only(c.id)!;
        const otherId = mul.inputs.map(valueId).find((id) => id !== c.id);
        const up = group.find((o) => o.id === otherId);
        if (!up || only(up.id) !== mul) unsupported(mul, 'silu(gate)·up needs gate and up to be matmuls of the same input');
        paired.add(up!.id);
        seg('zip', { kind: 'silu_mul', out: mul.id }, [c, mul], [weightOf(m), weightOf(up!)], [up!.id]);
      } else if (c?.op === 'add') {
        const other = c.inputs.map(valueId).find((id) => id !== m.id);
        if (other && trunk.has(other)) {
          seg('none', { kind: 'residual', out: c.id, into: other }, [c]);
          trunk.add(c.id);
        } else {
          seg('none', { kind: 'store', out: m.id }, []);
        }
      } else {
        seg('none', { kind: 'store', out: m.id }, []);
      }
    }
    for (const m of group) covered.add(m.id);
    const nodesOf = [...(norm ? [norm.id] : []), ...segments.flatMap((s) => s.nodes)];
    kernels.push({
      family: 'matmul', nodes: nodesOf, x: norm ? valueId(norm.inputs[0])! : xid!, k: width(norm ? valueId(norm.inputs[0])! : xid!),
      norm: norm ? { weight: (norm.inputs[1] as { id: string }).id, eps: numAttr(norm, 'eps', 1e-5) } : undefined,
      segments,
    });
  };

  for (const n of nodes) {
    if (covered.has(n.id)) continue;
    switch (n.op) {
      case 'embed': {
        const table = (n.inputs[1] as { id: string }).id;
        const [vocab, d] = g.weightShapes.get(table)!;
        kernels.push({ family: 'embed', nodes: [n.id], out: n.id, table, vocab, d });
        trunk.add(n.id);
        break;
      }
      case 'rms_norm':
        if (!foldableNorm(n.id)) unsupported(n, 'an rms_norm must feed only matmuls');
        break; // runs as the prologue of its consumers
      case 'matmul':
        matmulGroup(n);
        break;
      case 'attention':
        kernels.push({
          family: 'attention', nodes: [n.id], q: valueId(n.inputs[0])!, out: n.id, layer: n.layer!,
          heads: numAttr(n, 'heads'), kvHeads: numAttr(n, 'kvHeads'), headDim: numAttr(n, 'headDim'),
        });
        break;
      case 'argmax':
        kernels.push({ family: 'argmax', nodes: [n.id], x: valueId(n.inputs[0])!, out: n.id, n: width(valueId(n.inputs[0])!) });
        break;
      default:
        unsupported(n, 'it has no producer kernel to fuse into');
    }
    covered.add(n.id);
  }
  return kernels;
}
