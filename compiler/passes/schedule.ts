import { createHash } from 'node:crypto';
import type { KernelSource } from '../../codegen/kernel.js';
import { emitMatmul, type MatmulConfig } from '../../codegen/matmul.js';
import { emitAttention, type AttentionConfig } from '../../codegen/attention.js';
import { emitEmbed } from '../../codegen/embed.js';
import { emitArgmax } from '../../codegen/argmax.js';
import type { PlanDispatch, PlanKernel, PlanWeight } from '../plan.js';
import type { FusedKernel, Segment } from './fuse.js';

/** Picks tuning choices per kernel (defaults, or decisions from the tuning database). */
export interface TuningChoices {
  matmul(k: Extract<FusedKernel, { family: 'matmul' }>, key: string): MatmulConfig;
  attention(k: Extract<FusedKernel, { family: 'attention' }>, key: string): AttentionConfig;
}

export interface ScheduleContext {
  ctx: number;
  kvDim: number;
  kvF16: boolean;
  weights: Map<string, PlanWeight>;
  valueBuffer: Map<string, string>;
  width: (value: string) => number;
  tokenOutBase: number;
  tuning: TuningChoices;
  ropeBuffer: string;
  tokensBuffer: string;
}

/** Turns fused kernels into dispatches, emitting (and de-duplicating) WGSL as it goes. */
export class Scheduler {
  readonly kernels = new Map<string, PlanKernel & { wgsl: string }>();
  /** Emitted sources by structural key: layers share kernels, so each shape is emitted once. */
  private readonly emitted = new Map<string, { id: string; src: KernelSource }>();

  constructor(private readonly c: ScheduleContext) {}

  private memo(key: string, fused: string[], emit: () => KernelSource): { id: string; src: KernelSource } {
    let e = this.emitted.get(key);
    if (!e) {
      const src = emit();
      e = { id: this.kernel(src, fused), src };
      this.emitted.set(key, e);
    }
    return e;
  }

  private kernel(src: KernelSource, fused: string[]): string {
    const hash = createHash('sha256').update(src.wgsl).digest('hex').slice(0, 10);
    const id = `${src.name}_${hash}`;
    if (!this.kernels.has(id)) {
      this.kernels.set(id, {
        id, family: src.family, name: src.name, file: `kernels/${id}.wgsl`, workgroupSize: src.workgroupSize,
        bindings: src.bindings, params: src.params, grid: src.grid, config: src.config, features: src.features,
        fused, wgsl: src.wgsl,
      });
    }
    return id;
  }

  private buf(value: string): string {
    const b = this.c.valueBuffer.get(value);
    if (!b) throw new Error(`internal: no buffer for ${value}`);
    return b;
  }

  private weight(id: string): PlanWeight {
    const w = this.c.weights.get(id);
    if (!w) throw new Error(`internal: no weight ${id}`);
    return w;
  }

  /** Dispatches for one fused kernel; `verify` routes argmax picks to the verify slots. */
  schedule(k: FusedKernel, verify: boolean): PlanDispatch[] {
    switch (k.family) {
      case 'embed': return this.embed(k);
      case 'argmax': {
        const { id } = this.memo(`argmax:${k.n}`, k.nodes, () => emitArgmax(k));
        return [{ kernel: id, buffers: [this.buf(k.x), this.c.tokensBuffer], params: [verify ? this.c.tokenOutBase : 1, 0, 0, 0], nodes: k.nodes }];
      }
      case 'attention': {
        const key = `attention:${k.heads}x${k.kvHeads}x${k.headDim}`;
        const cfg = this.c.tuning.attention(k, key);
        const { id } = this.memo(`${key}:${JSON.stringify(cfg)}`, k.nodes, () => emitAttention(k, { ctx: this.c.ctx, kvF16: this.c.kvF16 }, cfg));
        return [{ kernel: id, buffers: [this.buf(k.q), `kv:${k.layer}`, this.buf(k.out)], params: [], nodes: k.nodes }];
      }
      case 'matmul': return this.matmul(k);
    }
  }

  private embed(k: Extract<FusedKernel, { family: 'embed' }>): PlanDispatch[] {
    const w = this.weight(k.table);
    const chunked = w.chunks.length > 1;
    const { id } = this.memo(`embed:${k.vocab}x${k.d}:${chunked}`, k.nodes, () => emitEmbed(k, chunked));
    return w.chunks.map((ch) => ({
      kernel: id, buffers: [this.c.tokensBuffer, ch.buffer, this.buf(k.out)],
      params: chunked ? [ch.rowStart, ch.rowCount, 0, 0] : [], nodes: k.nodes,
    }));
  }

  /** Buffers of a matmul kernel's bindings, by binding name (see codegen/matmul.ts). */
  private matmulBuffers(src: KernelSource, k: Extract<FusedKernel, { family: 'matmul' }>, chunk?: number): string[] {
    const byName = new Map<string, string>([['x', this.buf(k.x)], ['rope', this.c.ropeBuffer]]);
    if (k.norm) byName.set('g', this.weight(k.norm.weight).chunks[0].buffer);
    k.segments.forEach((seg, si) => {
      seg.weights.forEach((w, wi) => byName.set(`w${si}_${wi}`, this.weight(w).chunks[chunk ?? 0].buffer));
      const ep = seg.epilogue;
      if (ep.kind === 'kv') byName.set('kv', `kv:${ep.layer}`);
      else byName.set(`out${si}`, this.buf(ep.kind === 'residual' ? ep.into : ep.out));
    });
    return src.bindings.filter((b) => b.type === 'read' || b.type === 'rw').map((b) => {
      const buf = byName.get(b.name);
      if (!buf) throw new Error(`internal: matmul binding ${b.name} has no buffer`);
      return buf;
    });
  }

  private matmul(k: Extract<FusedKernel, { family: 'matmul' }>): PlanDispatch[] {
    const outWidth = (seg: Segment): number => {
      const ep = seg.epilogue;
      if (ep.kind === 'kv') return this.c.kvDim;
      return this.c.width(ep.kind === 'residual' ? ep.into : ep.out);
    };
    const shape = (kk: typeof k): string => JSON.stringify({
      k: kk.k, eps: kk.norm?.eps,
      segs: kk.segments.map((sg) => ({ pair: sg.pair, n: sg.n, units: sg.units, ...sg.epilogue, out: undefined, into: undefined, layer: undefined, w: outWidth(sg) })),
    });
    const key = `matmul:${shape(k)}`;
    const cfg = this.c.tuning.matmul(k, key);
    const chunked = k.segments.some((s) => s.weights.some((w) => this.weight(w).chunks.length > 1));
    const base = { ctx: this.c.ctx, kvDim: this.c.kvDim, kvF16: this.c.kvF16, outWidth };
    if (!chunked) {
      const { id, src } = this.memo(`${key}:${JSON.stringify(cfg)}`, k.nodes, () => emitMatmul(k, base, cfg));
      return [{ kernel: id, buffers: this.matmulBuffers(src, k), params: [], nodes: k.nodes }];
    }
    // a weight is split across bindings: each segment runs alone, one dispatch per row slice
    const out: PlanDispatch[] = [];
    for (const seg of k.segments) {
      const chunks = this.weight(seg.weights[0]).chunks;
      const maxRows = Math.max(...chunks.map((c) => c.rowCount));
      const unitsOf = (rows: number): number => (seg.pair === 'half' ? rows / 2 : rows);
      const nodes = [...(k.norm ? k.nodes.slice(0, 1) : []), ...seg.nodes];
      const single = { ...k, segments: [seg], nodes };
      const units = unitsOf(maxRows);
      const { id, src } = this.memo(`matmul:${shape(single)}:chunk${units}:${JSON.stringify(cfg)}`, nodes,
        () => emitMatmul(single, { ...base, chunk: { units } }, cfg));
      chunks.forEach((ch, ci) => {
        out.push({
          kernel: id, buffers: this.matmulBuffers(src, single, ci),
          params: [unitsOf(ch.rowStart), unitsOf(ch.rowCount), ch.rowStart, 0], nodes,
        });
      });
    }
    return out;
  }
}
