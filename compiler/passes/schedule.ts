import { createHash } from 'node:crypto';
import { kernelHeader } from '../../codegen/kernel.js';
import type { KernelSource } from '../ir/kernel.js';
import { emitMatmul, type MatmulConfig, type MatmulPiece } from '../../codegen/matmul.js';
import { emitAttention, type AttentionConfig } from '../../codegen/attention.js';
import { emitEmbed } from '../../codegen/embed.js';
import { emitArgmax, type ArgmaxConfig } from '../../codegen/argmax.js';
import type { PlanDispatch, PlanKernel, PlanWeight } from '../plan.js';
import type { ArgmaxKernel, AttentionKernel, EmbedKernel, FusedKernel, MatmulKernel, Segment } from '../ir/kernel.js';

/** Picks tuning choices per kernel (undefined: the default). */
export interface TuningChoices {
  matmul(k: MatmulKernel, key: string): MatmulConfig | undefined;
  attention(k: AttentionKernel, key: string): AttentionConfig | undefined;
  argmax(k: ArgmaxKernel, key: string): ArgmaxConfig | undefined;
}

/** A kernel shape whose configuration the tuner can vary: re-emit it with another config. */
export interface Tunable {
  /** Structural key: the same for every layer and entry point that runs this shape. */
  key: string;
  family: 'matmul' | 'attention' | 'argmax';
  config: Record<string, number>;
  /** Kernel ids emitted for this key with `config`. */
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
  /** Storage buffers one kernel may bind (maxStorageBuffersPerShaderStage). */
  maxStorageBuffers: number;
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

  private kernel(emitted: KernelSource, fused: string[]): string {
    const src = { ...emitted, wgsl: kernelHeader(emitted, fused) + emitted.wgsl };
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

  private embed(k: EmbedKernel): PlanDispatch[] {
    const w = this.weight(k.table);
    const chunked = w.chunks.length > 1;
    const { id } = this.memo(`embed:${k.vocab}x${k.d}:${chunked}`, k.nodes, () => emitEmbed(k, chunked));
    return w.chunks.map((ch) => ({
      kernel: id, buffers: [this.c.tokensBuffer, ch.buffer, this.buf(k.out)],
      params: chunked ? [ch.rowStart, ch.rowCount, 0, 0] : [], nodes: k.nodes,
    }));
  }

  /** Buffers of a matmul kernel's bindings, by binding name (see codegen/matmul.ts). */
  private matmulBuffers(src: KernelSource, k: MatmulKernel): string[] {
    const byName = new Map<string, string>([['x', this.buf(k.x)], ['rope', this.c.ropeBuffer]]);
    if (k.norm) byName.set('g', this.weight(k.norm.weight).chunks[0].buffer);
    k.segments.forEach((seg, si) => {
      seg.weights.forEach((w, wi) => {
        const chunks = this.weight(w).chunks;
        if (chunks.length === 1) byName.set(`w${si}_${wi}`, chunks[0].buffer);
        chunks.forEach((ch, ci) => byName.set(`w${si}_${wi}_s${ci}`, ch.buffer));
      });
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

  /** Storage buffers a matmul kernel over `pieces` binds (see codegen/matmul.ts emitMatmul). */
  private matmulStorage(k: MatmulKernel, pieces: MatmulPiece[]): number {
    const segs = [...new Set(pieces.map((p) => k.segments[p.segment]))];
    const outs = new Set(segs.map((s) => (s.epilogue.kind === 'kv' ? 'kv' : s)));
    const rope = segs.some((s) => s.epilogue.kind === 'rope' || (s.epilogue.kind === 'kv' && s.epilogue.rope));
    return 1 + (k.norm ? 1 : 0) + (rope ? 1 : 0) + outs.size + pieces.reduce((a, p) => a + k.segments[p.segment].weights.length, 0);
  }

  /**
   * The pieces of a matmul whose weights are split into row slices, in as few kernels as the
   * storage-buffer limit allows: one binding every slice when it fits (one dispatch, the norm
   * once), else consecutive runs of pieces.
   */
  private pieceGroups(k: MatmulKernel): MatmulPiece[][] {
    const pieces = k.segments.flatMap((seg, si) => {
      const chunks = this.weight(seg.weights[0]).chunks;
      const layout = JSON.stringify(chunks.map((c) => [c.rowStart, c.rowCount]));
      for (const w of seg.weights) {
        if (JSON.stringify(this.weight(w).chunks.map((c) => [c.rowStart, c.rowCount])) !== layout) {
          throw new Error(`internal: the paired weights ${seg.weights.join(', ')} are sliced differently`);
        }
      }
      return chunks.map((ch, ci): MatmulPiece => ({ segment: si, slice: ci, rowStart: ch.rowStart, rowCount: ch.rowCount }));
    });
    const groups: MatmulPiece[][] = [[]];
    for (const p of pieces) {
      const last = groups[groups.length - 1];
      if (last.length && this.matmulStorage(k, [...last, p]) > this.c.maxStorageBuffers) groups.push([p]);
      else last.push(p);
    }
    return groups;
  }

  private matmul(k: MatmulKernel): PlanDispatch[] {
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
    const sliced = k.segments.some((s) => s.weights.some((w) => this.weight(w).chunks.length > 1));
    const base = { ctx: this.c.ctx, kvDim: this.c.kvDim, kvF16: this.c.kvF16, outWidth };
    if (!sliced) {
      const { id, src } = this.memo(`${key}:${JSON.stringify(cfg)}`, k.nodes, () => emitMatmul(k, base, cfg));
      this.tunable(key, 'matmul', cfg, id, (c) => emitMatmul(k, base, c as unknown as MatmulConfig));
      return [{ kernel: id, buffers: this.matmulBuffers(src, k), params: [], nodes: k.nodes }];
    }
    const groups = this.pieceGroups(k);
    return groups.map((pieces) => {
      const segs = [...new Set(pieces.map((p) => p.segment))];
      const nodes = groups.length === 1 ? k.nodes : [...(k.norm ? k.nodes.slice(0, 1) : []), ...segs.flatMap((si) => k.segments[si].nodes)];
      const pkey = `${key}:pieces${JSON.stringify(pieces.map((p) => [p.segment, p.rowStart, p.rowCount]))}`;
      const ctx = { ...base, pieces };
      const { id, src } = this.memo(`${pkey}:${JSON.stringify(cfg)}`, nodes, () => emitMatmul(k, ctx, cfg));
      this.tunable(pkey, 'matmul', cfg, id, (c) => emitMatmul(k, ctx, c as unknown as MatmulConfig));
      return { kernel: id, buffers: this.matmulBuffers(src, k), params: [], nodes };
    });
  }
}
