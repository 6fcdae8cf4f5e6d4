import type { MatmulKernel, Segment } from '../../compiler/ir/kernel.js';
import type { MatrixFormat } from '../../compiler/ir/weight-formats.js';
import { MATMUL_BINDING, emitMatmul, sliceRowAlign, type MatmulConfig, type MatmulContext, type MatmulPiece } from '../matmul.js';
import { requireMultipleOf4, type KernelFamily, type Launch, type ScheduleEnv } from '../family.js';

/**
 * Fused matmuls (built by the fusion rules of compiler/passes/fusion-rules.ts): an optional
 * RMSNorm prologue, sibling matmuls of one input as segments, element-wise epilogues.
 */
const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** Buffer of each storage binding the emitter may declare (see MATMUL_BINDING). */
function bindingBuffers(k: MatmulKernel, env: ScheduleEnv): Map<string, string> {
  const byName = new Map<string, string>([[MATMUL_BINDING.x, env.buffer(k.x)], [MATMUL_BINDING.rope, env.ropeBuffer]]);
  if (k.norm) byName.set(MATMUL_BINDING.norm, env.weight(k.norm.weight).chunks[0].buffer);
  k.segments.forEach((seg, si) => {
    seg.weights.forEach((w, wi) => {
      const chunks = env.weight(w).chunks;
      if (chunks.length === 1) byName.set(MATMUL_BINDING.weight(si, wi), chunks[0].buffer);
      chunks.forEach((ch, ci) => byName.set(MATMUL_BINDING.weight(si, wi, ci), ch.buffer));
    });
    const ep = seg.epilogue;
    if (ep.kind === 'kv') byName.set(MATMUL_BINDING.kv, env.kvBuffer(ep.layer));
    else byName.set(MATMUL_BINDING.out(si), env.buffer(ep.kind === 'residual' ? ep.into : ep.out));
  });
  return byName;
}

/** Storage buffers a matmul kernel over `pieces` binds (as emitMatmul declares them). */
function storageCount(k: MatmulKernel, pieces: MatmulPiece[]): number {
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
function pieceGroups(k: MatmulKernel, env: ScheduleEnv): MatmulPiece[][] {
  const layoutOf = (w: string): string => JSON.stringify(env.weight(w).chunks.map((c) => [c.rowStart, c.rowCount]));
  const pieces = k.segments.flatMap((seg, si) => {
    const layout = layoutOf(seg.weights[0]);
    for (const w of seg.weights) {
      if (layoutOf(w) !== layout) throw new Error(`internal: the paired weights ${seg.weights.join(', ')} are sliced differently`);
    }
    return env.weight(seg.weights[0]).chunks.map((ch, ci): MatmulPiece => ({ segment: si, slice: ci, rowStart: ch.rowStart, rowCount: ch.rowCount }));
  });
  const groups: MatmulPiece[][] = [[]];
  for (const p of pieces) {
    const last = groups[groups.length - 1];
    if (last.length && storageCount(k, [...last, p]) > env.maxStorageBuffers) groups.push([p]);
    else last.push(p);
  }
  return groups;
}

export const matmulFamily: KernelFamily<MatmulKernel> = {
  name: 'matmul',
  ops: ['matmul', 'rms_norm', 'rope', 'silu', 'mul', 'add'],
  standalone: [],
  check(c) {
    if (c.node.op !== 'matmul') return;
    requireMultipleOf4(c, `matmul '${c.node.id}': inner dimension`, c.inputShape(1)[1] as number, c.weightDimAt(1, 1),
      'use a hidden size (and MLP width) that is a multiple of 4');
  },
  reads: (k) => [k.x, ...k.segments.flatMap((s) => (s.epilogue.kind === 'residual' ? [s.epilogue.into] : []))],
  writes: (k) => k.segments.flatMap((s) => (s.epilogue.kind === 'kv' ? [] : [s.epilogue.out])),
  persistent: (k) => ({ trunk: k.segments.flatMap((s) => (s.epilogue.kind === 'residual' ? [s.epilogue.into, s.epilogue.out] : [])) }),
  weightRowAlign: (dims) => sliceRowAlign(dims.headDim),
  dispatchCount(k, slices) {
    if (k.segments.every((s) => s.weights.every((w) => slices(w) === 1))) return 1;
    return k.segments.reduce((n, s) => n + slices(s.weights[0]), 0);
  },
  describeKey(key) {
    try {
      const k = JSON.parse(key.slice(key.indexOf(':') + 1)) as { k: number; eps?: number; segs: { n: number; kind: string }[] };
      const n = k.segs.reduce((a, s) => a + s.n, 0);
      return `matmul ${k.k}→${n}${k.eps !== undefined ? ' norm' : ''} ${k.segs.map((s) => s.kind).join('+')}`;
    } catch {
      // sliced kernels: the key goes on with the pieces
      return key.length > 40 ? key.slice(0, 39) + '…' : key;
    }
  },
  schedule(k, env) {
    const format = (seg: Segment): MatrixFormat => {
      const fmts = new Set(seg.weights.map((w) => env.weight(w).format ?? 'f16'));
      if (fmts.size !== 1) throw new Error(`internal: the paired weights ${seg.weights.join(', ')} have different formats`);
      const f = [...fmts][0];
      if (f === 'f32') throw new Error(`internal: matmul weight ${seg.weights[0]} is f32`);
      return f;
    };
    const outWidth = (seg: Segment): number => {
      const ep = seg.epilogue;
      if (ep.kind === 'kv') return env.kvDim;
      return env.width(ep.kind === 'residual' ? ep.into : ep.out);
    };
    const shape = JSON.stringify({
      k: k.k, eps: k.norm?.eps,
      segs: k.segments.map((sg) => ({
        pair: sg.pair, n: sg.n, units: sg.units, ...sg.epilogue, out: undefined, into: undefined, layer: undefined, w: outWidth(sg),
        // f16 keys stay as they were (tuning databases hold them)
        fmt: format(sg) === 'f16' ? undefined : format(sg),
      })),
    });
    const key = `matmul:${shape}`;
    const config = env.config(key);
    const sliced = k.segments.some((s) => s.weights.some((w) => env.weight(w).chunks.length > 1));
    const base: MatmulContext = { ctx: env.ctx, kvDim: env.kvDim, kvF16: env.kvF16, seqRows: env.seqRows, outWidth, format };
    const buffers = bindingBuffers(k, env);
    if (!sliced) {
      return [{ source: key, config, tuningKey: key, emit: (c) => emitMatmul(k, base, c as unknown as MatmulConfig), buffers, params: [], nodes: k.nodes }];
    }
    const groups = pieceGroups(k, env);
    return groups.map((pieces): Launch => {
      const segs = [...new Set(pieces.map((p) => p.segment))];
      const nodes = groups.length === 1 ? k.nodes : [...(k.norm ? k.nodes.slice(0, 1) : []), ...segs.flatMap((si) => k.segments[si].nodes)];
      const pkey = `${key}:pieces${JSON.stringify(pieces.map((p) => [p.segment, p.rowStart, p.rowCount]))}`;
      const ctx = { ...base, pieces };
      return { source: pkey, config, tuningKey: pkey, emit: (c) => emitMatmul(k, ctx, c as unknown as MatmulConfig), buffers, params: [], nodes };
    });
  },
  defaultConfig: (target) => (target === 'gpu'
    ? { split: 32, units: 8, perThread: 1, rowBlock: 2, subgroup: 0 }
    : { split: 1, units: 256, perThread: 4, rowBlock: 4, subgroup: 0 }),
  candidates(subgroupSize) {
    const out: Record<string, number>[] = [];
    const add = (split: number, perThread: number, threads: number, rowBlock: number): void => {
      const base = { split, units: (threads / split) * perThread, perThread, rowBlock, subgroup: 0 };
      out.push(base);
      if (split > 1 && subgroupSize >= split && pow2(split)) out.push({ ...base, subgroup: 1 });
    };
    // one thread per output group (CPU drivers like this), a few split-K shapes (GPUs like these)
    for (const perThread of [1, 2, 4, 8]) for (const threads of [32, 64]) for (const rowBlock of [2, 4]) add(1, perThread, threads, rowBlock);
    for (const perThread of [1, 2]) for (const threads of [64, 128]) add(4, perThread, threads, 2);
    for (const threads of [64, 256]) for (const rowBlock of [1, 2]) add(8, 1, threads, rowBlock);
    for (const threads of [128, 256]) add(32, 1, threads, 1);
    return out;
  },
};
