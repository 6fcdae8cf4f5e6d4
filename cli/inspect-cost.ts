import type { Graph } from '../compiler/ir/graph.js';
import { matrixBytes } from '../compiler/ir/weight-formats.js';
import type { Plan, PlanDispatch } from '../compiler/plan.js';
import { resolveDims } from '../compiler/ir/dims.js';
import { expandLayers, type FlatNode } from '../compiler/passes/expand-layers.js';
import { inferShapes, type TypedValue } from '../compiler/passes/infer-shapes.js';

/**
 * Bytes read and written and FLOPs of one dispatch, from the plan and the graph's shapes. Memory
 * traffic is what crosses the dispatch: values fused inside a kernel cost nothing; values read
 * from or written to other dispatches cost rows × width × element size; a matmul reads its whole
 * weight (or the row chunk bound, for weights split over buffers) once per dispatch, not per row;
 * embed reads one table row per row (counted in each chunk's dispatch, an upper bound); RoPE reads one table
 * row per row; attention reads the cached K and V of every position up to its own (causal), and
 * K and V consumed by attention are written to the KV cache at the KV dtype, one position per row.
 *
 * A stage runs rows r = 0..R-1 at positions p+r, so a dispatch costs
 *   fixed + R × perRow + (Σ_r (p + r + 1)) × perPosition
 * where perPosition is attention's KV reads and score FLOPs per attended position.
 *
 * FLOPs per row (a multiply-add is 2): matmul 2·n·k; rms_norm 4·n; rope 3·n; add, mul 1·n;
 * silu 4·n; argmax 1·n (compares); embed 0; attention per attended position 4·heads·headDim
 * (q·k and p·v) + 4·heads (softmax: max, exp, sum, scale).
 */
export interface CostTerms {
  /** Bytes read once per dispatch (matmul weights, norm gains). */
  fixedRead: number;
  /** Bytes read and written per row (activations, tokens, table rows, new K/V). */
  rowRead: number;
  rowWrite: number;
  /** KV bytes read per attended position. */
  positionRead: number;
  flopsPerRow: number;
  flopsPerPosition: number;
}

export interface DispatchCost {
  readBytes: number;
  writeBytes: number;
  flops: number;
}

/** Cached positions attended by rows r = 0..R-1 at positions p+r: Σ (p + r + 1). */
export const attendedPositions = (rows: number, position: number): number => rows * (position + 1) + (rows * (rows - 1)) / 2;

export function evaluateCost(t: CostTerms, rows: number, position: number): DispatchCost {
  const n = attendedPositions(rows, position);
  return {
    readBytes: t.fixedRead + rows * t.rowRead + n * t.positionRead,
    writeBytes: rows * t.rowWrite,
    flops: rows * t.flopsPerRow + n * t.flopsPerPosition,
  };
}

const ELEM: Record<string, number> = { f32: 4, i32: 4, u32: 4, f16: 2 };

/** Width of a row: the product of a value's dims after the row dim. */
const width = (v: TypedValue | undefined): number =>
  (v?.shape.slice(1) ?? []).reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);

export class CostModel {
  private readonly nodes = new Map<string, FlatNode>();
  private readonly values: Map<string, TypedValue>;
  /** For each value: the nodes reading it (and at which input index). */
  private readonly consumers = new Map<string, { node: FlatNode; index: number }[]>();
  private readonly weightBytes = new Map<string, { bytes: number; row: number; chunks: { buffer: string; bytes: number }[] }>();
  private readonly kvElem: number;
  private readonly ropeRow: number;
  private readonly memo = new Map<PlanDispatch, CostTerms>();

  constructor(graph: Graph, private readonly plan: Plan, file?: string) {
    const table = resolveDims(graph, file);
    const typed = inferShapes(graph, expandLayers(graph, table, file), table, file);
    this.values = typed.values;
    for (const n of typed.nodes) {
      this.nodes.set(n.id, n);
      n.inputs.forEach((i, index) => {
        if (i.kind === 'value') this.consumers.set(i.id, [...(this.consumers.get(i.id) ?? []), { node: n, index }]);
      });
    }
    const bufferBytes = new Map(plan.buffers.map((b) => [b.id, b.bytes]));
    const byId = new Map(plan.weights.map((w) => [w.id, w]));
    for (const w of plan.weights) {
      const all = matrixBytes(w.gpuDtype, w.shape[0], w.shape.slice(1).reduce((a, b) => a * b, 1));
      const chunks = w.chunks.length ? w.chunks : byId.get(w.tiedTo ?? '')?.chunks ?? [];
      this.weightBytes.set(w.id, { bytes: all, row: all / w.shape[0], chunks: chunks.map((c) => ({ buffer: c.buffer, bytes: bufferBytes.get(c.buffer) ?? 0 })) });
    }
    this.kvElem = ELEM[graph.dtypes.kv] ?? 2;
    const rope = plan.buffers.find((b) => b.id === plan.io.rope);
    this.ropeRow = rope ? rope.bytes / plan.dims.ctx : 0;
  }

  private dim(node: FlatNode, key: string): number {
    const v = node.attrs[key];
    return typeof v === 'number' ? v : this.plan.dims[String(v)] ?? 0;
  }

  private bytesPerRow(id: string): number {
    const v = this.values.get(id);
    return width(v) * (ELEM[v?.dtype ?? 'f32'] ?? 4);
  }

  /** Whether `id` is read by an attention node as its K or V (it then lives in the KV cache). */
  private isKv(id: string): boolean {
    return (this.consumers.get(id) ?? []).some((c) => c.node.op === 'attention' && c.index > 0);
  }

  terms(d: PlanDispatch): CostTerms {
    const memo = this.memo.get(d);
    if (memo) return memo;
    const inside = new Set(d.nodes);
    const t: CostTerms = { fixedRead: 0, rowRead: 0, rowWrite: 0, positionRead: 0, flopsPerRow: 0, flopsPerPosition: 0 };
    const readOnce = new Set<string>();
    let rope = false;
    for (const id of d.nodes) {
      const n = this.nodes.get(id);
      if (!n) continue;
      const out = width(this.values.get(id));
      n.inputs.forEach((i, index) => {
        if (i.kind === 'weight') {
          const w = this.weightBytes.get(i.id);
          if (!w || readOnce.has(`@${i.id}`)) return;
          readOnce.add(`@${i.id}`);
          // a weight split into row chunks (one buffer each) takes one dispatch per chunk bound
          const bound = w.chunks.filter((c) => d.buffers.includes(c.buffer));
          if (n.op === 'embed') t.rowRead += w.row;
          else t.fixedRead += bound.length ? bound.reduce((a, c) => a + c.bytes, 0) : w.bytes;
        } else if (i.kind === 'input') {
          if (!readOnce.has(`in:${i.name}`)) t.rowRead += 4;
          readOnce.add(`in:${i.name}`);
        } else if (n.op === 'attention' && index > 0) {
          // K and V come from the cache, every attended position
          t.positionRead += width(this.values.get(i.id)) * this.kvElem;
        } else if (!inside.has(i.id) && !readOnce.has(i.id)) {
          readOnce.add(i.id);
          t.rowRead += this.bytesPerRow(i.id);
        }
      });
      const cons = this.consumers.get(id) ?? [];
      if (!cons.length || cons.some((c) => !inside.has(c.node.id))) {
        t.rowWrite += this.isKv(id) ? out * this.kvElem : this.bytesPerRow(id);
      }
      const inWidth = n.inputs[0]?.kind === 'value' ? width(this.values.get(n.inputs[0].id)) : 0;
      switch (n.op) {
        case 'matmul': t.flopsPerRow += 2 * inWidth * out; break;
        case 'rms_norm': t.flopsPerRow += 4 * out; break;
        case 'rope': t.flopsPerRow += 3 * out; rope = true; break;
        case 'add': case 'mul': t.flopsPerRow += out; break;
        case 'silu': t.flopsPerRow += 4 * out; break;
        case 'argmax': t.flopsPerRow += inWidth; break;
        case 'attention': {
          const heads = this.dim(n, 'heads');
          t.flopsPerPosition += 4 * heads * this.dim(n, 'headDim') + 4 * heads;
          break;
        }
        default: break;
      }
    }
    if (rope) t.rowRead += this.ropeRow;
    this.memo.set(d, t);
    return t;
  }

  cost(d: PlanDispatch, rows: number, position: number): DispatchCost {
    return evaluateCost(this.terms(d), rows, position);
  }
}
