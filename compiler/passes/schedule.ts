import { createHash } from 'node:crypto';
import type { KernelSource } from '../../codegen/kernel.js';
import { emitMatmul, type MatmulConfig } from '../../codegen/matmul.js';
import { emitAttention, type AttentionConfig } from '../../codegen/attention.js';
import { emitEmbed } from '../../codegen/embed.js';
import { emitArgmax, type ArgmaxConfig } from '../../codegen/argmax.js';
import type { PlanDispatch, PlanKernel, PlanWeight } from '../plan.js';
import type { FusedKernel, Segment } from './fuse.js';

/** Picks tuning choices per kernel (undefined: the default). */
export interface TuningChoices {
  matmul(k: Extract<FusedKernel, { family: 'matmul' }>, key: string): MatmulConfig | undefined;
  attention(k: Extract<FusedKernel, { family: 'attention' }>, key: string): AttentionConfig | undefined;
  argmax(k: Extract<FusedKernel, { family: 'argmax' }>, key: string): ArgmaxConfig | undefined;
}

/** A kernel shape whose configuration the tuner can vary: re-emit it with another config. */
export interface Tunable {
  /** Structural key: the same for every layer and entry point that runs this shape. */
  key: string;
  family: 'matmul' | 'attention' | 'argmax';
  config: Record<string, number>;
  /** Kernel ids (one per chunking variant) emitted for this key with `config`. */
  kernelIds: Set<string>;
  emit(cfg: Record<string, number>): KernelSource;
}

export interface ScheduleContext {
  ctx: number;
  kvDim: number;
  kvF16: boolean;
  weights: Map<string, PlanWeight>;
  valueBuffer: Map<string, string>;
  width: (value: string) => number;
  tokenOutBase: number;
  tuning: { [F in keyof TuningChoices]: (...a: Parameters<TuningChoices[F]>) => NonNullable<ReturnType<TuningChoices[F]>> };
  ropeBuffer: string;
  tokensBuffer: string;
}

/** Turns fused kernels into dispatches, emitting (and de-duplicating) WGSL as it goes. */
export class Scheduler {
  readonly kernels = new Map<string, PlanKernel & { wgsl: string }>();
  /** Emitted sources by structural key: layers share kernels, so each shape is emitted once. */
  private readonly emitted = new Map<string, { id: string; src: KernelSource }>();
  readonly tunables = new Map<string, Tunable>();

  private tunable(key: string, family: Tunable['family'], config: object, id: string, emit: (cfg: Record<string, number>) => KernelSource): void {
    let t = this.tunables.get(key);
    if (!t) this.tunables.set(key, (t = { key, family, config: { ...config } as Record<string, number>, kernelIds: new Set(), emit }));
    t.kernelIds.add(id);
  }

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
        const key = `argmax:${k.n}`;
        const cfg = this.c.tuning.argmax(k, key);
        const { id } = this.memo(`${key}:${JSON.stringify(cfg)}`, k.nodes, () => emitArgmax(k, cfg));
        this.tunable(key, 'argmax', cfg, id, (c) => emitArgmax(k, c as unknown as ArgmaxConfig));
        return [{ kernel: id, buffers: [this.buf(k.x), this.c.tokensBuffer], params: [verify ? this.c.tokenOutBase : 1, 0, 0, 0], nodes: k.nodes }];
      }
      case 'attention': {
        const key = `attention:${k.heads}x${k.kvHeads}x${k.headDim}`;
        const cfg = this.c.tuning.attention(k, key);
        const ctxt = { ctx: this.c.ctx, kvF16: this.c.kvF16 };
        const { id } = this.memo(`${key}:${JSON.stringify(cfg)}`, k.nodes, () => emitAttention(k, ctxt, cfg));
        this.tunable(key, 'attention', cfg, id, (c) => emitAttention(k, ctxt, c as unknown as AttentionConfig));
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
      this.tunable(key, 'matmul', cfg, id, (c) => emitMatmul(k, base, c as unknown as MatmulConfig));
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
      this.tunable(`matmul:${shape(single)}:chunk${units}`, 'matmul', cfg, id,
        (c) => emitMatmul(single, { ...base, chunk: { units } }, c as unknown as MatmulConfig));
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
