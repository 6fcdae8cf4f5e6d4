import assert from 'node:assert/strict';
import { emitMatmul, type MatmulConfig, type MatmulContext } from '../../codegen/matmul.js';
import type { KernelSource } from '../../compiler/ir/kernel.js';
import type { MatmulKernel, Segment } from '../../compiler/ir/kernel.js';
import { ropeTable } from '../../runtime/rope-table.js';
import type { QuantFormat } from '../../compiler/ir/weight-formats.js';
import { dequantizeRows, planarBytes, quantizeRows } from '../../runtime/quant/quantize.js';
import {
  KernelHarness, Rng, describeMismatches, f16Ulp, f16Values, mismatches, toF16,
  type Dispatch, type RowRange,
} from '../helpers/kernel-harness.js';

/**
 * codegen/matmul.ts against a float64 reference that uses the same f16-rounded weights (and,
 * for the f16 KV cache, the f16 rounding of its result). The GPU accumulates in f32 over K ≤ 512
 * terms, so the error of an output is a few f32 ulps of Σ|w·x| (its "magnitude"): the tolerance
 * is 1e-4 × (|value| + magnitude), ~1000× the expected error yet far below what any indexing,
 * norm, RoPE or epilogue mistake gives (O(1) relative). KV values stored as f16 may land one f16
 * ulp away when the exact value sits near a rounding boundary, so they get that much more.
 * Everything a dispatch must not touch (rows outside the range, other KV positions) is checked
 * to be bit-unchanged, and activation rows outside the range are NaN so reading them shows.
 */


const CONFIGS: MatmulConfig[] = [
  { split: 1, units: 64, rowBlock: 1, subgroup: 0 },
  { split: 4, units: 16, rowBlock: 2, subgroup: 0 },
  { split: 8, units: 8, rowBlock: 4, subgroup: 1 },
  { split: 16, units: 4, rowBlock: 1, subgroup: 0 },
  { split: 1, units: 128, perThread: 4, rowBlock: 4, subgroup: 0 },
  { split: 2, units: 32, perThread: 2, rowBlock: 3, subgroup: 1 },
];

const CTX = 128;
/** Rows of every activation / output buffer (ranges stay inside). */
const ROWS = 24;
const RANGES: RowRange[] = [
  { rowStart: 5, rowCount: 1, posBase: 11 },
  { rowStart: 2, rowCount: 3, posBase: 30 },
  { rowStart: 7, rowCount: 9, posBase: 3 },
  { rowStart: 3, rowCount: 17, posBase: 100 },
];
const ROPE = { theta: 10000, style: 'rotate_half' as const };
const EPS = 1e-5;
const REL = 1e-4;

type SegDef =
  | { kind: 'store' | 'residual' | 'silu_mul'; n: number }
  | { kind: 'rope'; heads: number; hd: number }
  | { kind: 'kv'; plane: 'k' | 'v'; kvHeads: number; hd: number };

interface MmCase {
  label: string;
  K: number;
  /** RMSNorm prologue with this eps. */
  eps?: number;
  kvF16?: boolean;
  segs: SegDef[];
  /** Sliced weights: rows per slice (the last slice may be shorter), every slice its own binding. */
  chunkRows?: number;
  /** Sliced weights: the pieces split into this many kernels (as the scheduler does when the storage-buffer limit is low). */
  groups?: number;
  /** Scale of the activations (small: eps dominates the RMSNorm). */
  xScale?: number;
  /** Quantized weights (the reference uses their dequantized values); default f16. */
  format?: QuantFormat;
}

interface Built {
  fk: MatmulKernel;
  ctx: MatmulContext;
  kvDim: number;
  kvF16: boolean;
  hd: number;
  outWidth: number[];
}

const segLabel = (s: SegDef): string => {
  switch (s.kind) {
    case 'rope': return `rope(${s.heads}x${s.hd})`;
    case 'kv': return `kv-${s.plane}(${s.kvHeads}x${s.hd})`;
    default: return `${s.kind}(${s.n})`;
  }
};

function mmCase(K: number, segs: SegDef[], opts: { eps?: number; kvF16?: boolean; chunkRows?: number; groups?: number; xScale?: number; format?: QuantFormat } = {}): MmCase {
  const label = `${opts.format ? `${opts.format} ` : ''}${segs.map(segLabel).join('+')} K=${K}${opts.eps !== undefined ? ` +norm(eps ${opts.eps})` : ''}${opts.xScale ? ` x~${opts.xScale}` : ''}${opts.kvF16 === false ? ' kv-f32' : ''}${opts.chunkRows ? ` slices of ${opts.chunkRows} rows` : ''}${opts.groups ? ` in ${opts.groups} kernels` : ''}`;
  return { label, K, segs, ...opts };
}

function build(c: MmCase): Built {
  let kvDim = 0;
  let hd = 0;
  const segments: Segment[] = c.segs.map((s, si): Segment => {
    const nodes = [`n${si}`];
    switch (s.kind) {
      case 'store':
        return { weights: [`W${si}`], pair: 'none', n: s.n, units: s.n, epilogue: { kind: 'store', out: `o${si}` }, nodes };
      case 'residual':
        return { weights: [`W${si}`], pair: 'none', n: s.n, units: s.n, epilogue: { kind: 'residual', out: `r${si}`, into: `o${si}` }, nodes };
      case 'silu_mul':
        return { weights: [`W${si}a`, `W${si}b`], pair: 'zip', n: s.n, units: s.n, epilogue: { kind: 'silu_mul', out: `o${si}` }, nodes };
      case 'rope':
        hd = s.hd;
        return { weights: [`W${si}`], pair: 'half', n: s.heads * s.hd, units: (s.heads * s.hd) / 2, epilogue: { kind: 'rope', out: `o${si}`, headDim: s.hd }, nodes };
      case 'kv': {
        const n = s.kvHeads * s.hd;
        if (kvDim && kvDim !== n) throw new Error('test setup: kv segments disagree on kvDim');
        kvDim = n;
        if (s.plane === 'k') hd = s.hd;
        return { weights: [`W${si}`], pair: 'half', n, units: n / 2, epilogue: { kind: 'kv', plane: s.plane, layer: 0, rope: s.plane === 'k', headDim: s.hd }, nodes };
      }
    }
  });
  const kvF16 = c.kvF16 ?? true;
  const outWidth = segments.map((s) => (s.epilogue.kind === 'kv' ? kvDim : s.n));
  const fk: MatmulKernel = {
    family: 'matmul', nodes: segments.flatMap((s) => s.nodes), x: 'x', k: c.K,
    norm: c.eps !== undefined ? { weight: 'g', eps: c.eps } : undefined, segments,
  };
  const ctx: MatmulContext = {
    ctx: CTX, kvDim: kvDim || 8, kvF16,
    outWidth: (seg) => outWidth[segments.indexOf(seg)],
    format: () => c.format ?? 'f16',
  };
  if (c.chunkRows) {
    const rows = c.chunkRows;
    ctx.pieces = segments.flatMap((seg, si) => Array.from({ length: Math.ceil(seg.n / rows) },
      (_, ci) => ({ segment: si, slice: ci, rowStart: ci * rows, rowCount: Math.min(rows, seg.n - ci * rows) })));
  }
  return { fk, ctx, kvDim, kvF16, hd, outWidth };
}

interface MmData {
  x: Float32Array;
  g: Float32Array;
  /** Weight values (f16-exact, or dequantized) and the GPU bytes of rows [r0, r0 + rows) (a slice of its own), by weight name. */
  w: Map<string, TestWeight>;
  /** Initial content of each segment's output buffer (kv segments: unused). */
  init: Float32Array[];
  kvInit: Float32Array;
  kvInitBits?: Uint16Array;
  rope?: Float32Array;
}

function seedOf(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

interface TestWeight {
  values: Float32Array;
  bytes(r0: number, rows: number): ArrayBufferView;
}

/** A weight of `rows` × K random values as the GPU holds it: f16, or quantized (codegen/weight-load.ts reads the planar layout). */
function testWeight(raw: Float32Array, rows: number, K: number, format?: QuantFormat): TestWeight {
  if (!format) {
    const h = toF16(raw);
    return { values: h.values, bytes: (r0, n) => h.bits.subarray(r0 * K, (r0 + n) * K) };
  }
  const q = quantizeRows(format, raw, rows, K);
  const qb = q.quants.length / rows;
  const nb = q.scales.length / rows;
  return {
    values: dequantizeRows(format, q, rows, K),
    bytes: (r0, n) => planarBytes(format, { quants: q.quants.subarray(r0 * qb, (r0 + n) * qb), scales: q.scales.subarray(r0 * nb, (r0 + n) * nb) }, n, K),
  };
}

function makeData(c: MmCase, b: Built): MmData {
  const rng = new Rng(seedOf(c.label));
  const x = rng.floats(ROWS * c.K, c.xScale ?? 1);
  const g = new Float32Array(c.K);
  for (let i = 0; i < c.K; i++) g[i] = 1 + 0.25 * rng.normal();
  const w = new Map<string, TestWeight>();
  for (const seg of b.fk.segments) {
    for (const name of seg.weights) w.set(name, testWeight(rng.floats(seg.n * c.K, 1 / Math.sqrt(c.K)), seg.n, c.K, c.format));
  }
  const init = b.fk.segments.map((s, si) => (s.epilogue.kind === 'kv' ? new Float32Array(0) : rng.floats(ROWS * b.outWidth[si])));
  const kvRaw = rng.floats(2 * CTX * Math.max(b.kvDim, 1));
  const data: MmData = { x, g, w, init, kvInit: kvRaw };
  if (b.kvF16) {
    const h = toF16(kvRaw);
    data.kvInit = h.values;
    data.kvInitBits = h.bits;
  }
  if (b.hd) data.rope = ropeTable(ROPE, b.hd, CTX);
  return data;
}

interface Expected {
  want: Float64Array;
  tol: Float64Array;
}

/** What the output buffers of each segment (and the KV buffer) must hold after a dispatch over `r`. */
function reference(c: MmCase, b: Built, d: MmData, r: RowRange): { outs: (Expected | undefined)[]; kv?: Expected } {
  const K = c.K;
  const outs = b.fk.segments.map((s, si) => (s.epilogue.kind === 'kv' ? undefined
    : { want: Float64Array.from(d.init[si]), tol: new Float64Array(d.init[si].length) }));
  const hasKv = b.fk.segments.some((s) => s.epilogue.kind === 'kv');
  const kv = hasKv ? { want: Float64Array.from(d.kvInit), tol: new Float64Array(d.kvInit.length) } : undefined;
  const xv = new Float64Array(K);
  for (let row = r.rowStart; row < r.rowStart + r.rowCount; row++) {
    const pos = r.posBase + row;
    let inv = 1;
    if (c.eps !== undefined) {
      let ss = 0;
      for (let k = 0; k < K; k++) ss += d.x[row * K + k] ** 2;
      inv = 1 / Math.sqrt(ss / K + c.eps);
    }
    for (let k = 0; k < K; k++) xv[k] = d.x[row * K + k] * (c.eps !== undefined ? d.g[k] : 1);
    /** (value, magnitude Σ|w·x|) of output row n of a weight, norm applied. */
    const y = (wname: string, n: number): [number, number] => {
      const wv = d.w.get(wname)!.values;
      let s = 0;
      let m = 0;
      for (let k = 0; k < K; k++) {
        const p = wv[n * K + k] * xv[k];
        s += p;
        m += Math.abs(p);
      }
      return [s * inv, m * inv];
    };
    b.fk.segments.forEach((seg, si) => {
      const ep = seg.epilogue;
      const ow = b.outWidth[si];
      const o = outs[si];
      if (ep.kind === 'store' || ep.kind === 'residual') {
        for (let n = 0; n < seg.n; n++) {
          const [v, m] = y(seg.weights[0], n);
          const i = row * ow + n;
          const prior = ep.kind === 'residual' ? o!.want[i] : 0;
          o!.want[i] = prior + v;
          o!.tol[i] = REL * (Math.abs(v) + m + Math.abs(prior));
        }
      } else if (ep.kind === 'silu_mul') {
        for (let n = 0; n < seg.n; n++) {
          const [gv, gm] = y(seg.weights[0], n);
          const [uv, um] = y(seg.weights[1], n);
          const silu = gv / (1 + Math.exp(-gv));
          const v = silu * uv;
          // |d silu/dg| ≤ 1.1
          o!.want[row * ow + n] = v;
          o!.tol[row * ow + n] = REL * (Math.abs(v) + 1.1 * gm * Math.abs(uv) + Math.abs(silu) * um);
        }
      } else {
        const hd = ep.headDim;
        const heads = seg.n / hd;
        const rope = ep.kind === 'rope' || ep.rope;
        for (let h = 0; h < heads; h++) {
          for (let j = 0; j < hd / 2; j++) {
            const c0 = h * hd + j;
            const c1 = c0 + hd / 2;
            const [v0, m0] = y(seg.weights[0], c0);
            const [v1, m1] = y(seg.weights[0], c1);
            let y0 = v0;
            let y1 = v1;
            let t0 = m0;
            let t1 = m1;
            if (rope) {
              const cs = d.rope![(pos * (hd / 2) + j) * 2];
              const sn = d.rope![(pos * (hd / 2) + j) * 2 + 1];
              y0 = v0 * cs - v1 * sn;
              y1 = v1 * cs + v0 * sn;
              t0 = Math.abs(cs) * m0 + Math.abs(sn) * m1;
              t1 = Math.abs(cs) * m1 + Math.abs(sn) * m0;
            }
            if (ep.kind === 'rope') {
              o!.want[row * ow + c0] = y0;
              o!.tol[row * ow + c0] = REL * (Math.abs(y0) + t0);
              o!.want[row * ow + c1] = y1;
              o!.tol[row * ow + c1] = REL * (Math.abs(y1) + t1);
            } else {
              const base = (ep.plane === 'v' ? CTX * b.kvDim : 0) + pos * b.kvDim;
              for (const [col, v, t] of [[c0, y0, t0], [c1, y1, t1]] as const) {
                const stored = b.kvF16 ? toF16(Float32Array.of(v)).values[0] : v;
                kv!.want[base + col] = stored;
                kv!.tol[base + col] = REL * (Math.abs(v) + t) + (b.kvF16 ? f16Ulp(v) : 0);
              }
            }
          }
        }
      }
    });
  }
  return { outs, kv };
}

interface RunBuffers {
  outs: (GPUBuffer | undefined)[];
  kv?: GPUBuffer;
}

/** The kernels of a case: one, or (sliced weights split into `groups`) one per run of pieces. */
function emitAll(c: MmCase, b: Built, cfg: MatmulConfig): KernelSource[] {
  if (!c.groups) return [emitMatmul(b.fk, b.ctx, cfg)];
  const pieces = b.ctx.pieces!;
  const per = Math.ceil(pieces.length / c.groups);
  return Array.from({ length: c.groups }, (_, i) => emitMatmul(b.fk, { ...b.ctx, pieces: pieces.slice(i * per, (i + 1) * per) }, cfg));
}

/** Output buffers (fresh, holding the initial content) and the dispatches of one run over `r`. */
function dispatchesFor(h: KernelHarness, srcs: KernelSource[], c: MmCase, b: Built, d: MmData, r: RowRange,
  x: GPUBuffer, shared: Map<string, GPUBuffer>): { dispatches: Dispatch[]; bufs: RunBuffers } {
  const bufs: RunBuffers = { outs: [] };
  const common: Record<string, GPUBuffer> = { x };
  if (srcs[0].bindings.some((bd) => bd.name === 'g')) common.g = shared.get('g')!;
  b.fk.segments.forEach((seg, si) => {
    if (seg.epilogue.kind === 'kv') {
      bufs.kv ??= h.buffer(b.kvF16 ? d.kvInitBits! : d.kvInit, 'kv');
      common.kv = bufs.kv;
      bufs.outs.push(undefined);
    } else {
      const o = h.buffer(d.init[si], `out${si}`);
      common[`out${si}`] = o;
      bufs.outs.push(o);
    }
  });
  const buffers: Record<string, GPUBuffer> = { ...common };
  b.fk.segments.forEach((seg, si) => seg.weights.forEach((w, wi) => {
    if (!c.chunkRows) buffers[`w${si}_${wi}`] = shared.get(w)!;
    else for (let r0 = 0, ci = 0; r0 < seg.n; r0 += c.chunkRows, ci++) buffers[`w${si}_${wi}_s${ci}`] = shared.get(`${w}#${r0}`)!;
  }));
  if (d.rope) buffers.rope = shared.get('rope')!;
  // each kernel gets the buffers of the bindings it declares
  const dispatches = srcs.map((src): Dispatch => ({
    src, range: r,
    buffers: Object.fromEntries(src.bindings.filter((bd) => buffers[bd.name]).map((bd) => [bd.name, buffers[bd.name]])),
  }));
  return { dispatches, bufs };
}

/** Read-only buffers of a case: norm weight, rope table, weights (whole, or each slice as `name#rowStart`). */
function sharedBuffers(h: KernelHarness, c: MmCase, b: Built, d: MmData): Map<string, GPUBuffer> {
  const m = new Map<string, GPUBuffer>();
  m.set('g', h.buffer(d.g, 'g'));
  if (d.rope) m.set('rope', h.buffer(d.rope, 'rope'));
  for (const seg of b.fk.segments) {
    for (const name of seg.weights) {
      const wt = d.w.get(name)!;
      if (!c.chunkRows) {
        m.set(name, h.buffer(wt.bytes(0, seg.n), name));
      } else {
        for (let r0 = 0; r0 < seg.n; r0 += c.chunkRows) {
          const rows = Math.min(c.chunkRows, seg.n - r0);
          m.set(`${name}#${r0}`, h.buffer(wt.bytes(r0, rows), `${name}#${r0}`));
        }
      }
    }
  }
  return m;
}

/** x with the rows outside `r` set to NaN, so a kernel that reads them poisons its results. */
function xFor(d: MmData, K: number, r: RowRange): Float32Array {
  const x = Float32Array.from(d.x);
  for (let row = 0; row < ROWS; row++) {
    if (row < r.rowStart || row >= r.rowStart + r.rowCount) x.fill(NaN, row * K, (row + 1) * K);
  }
  return x;
}

function readKv(b: Built, bytes: ArrayBuffer): Float32Array {
  const n = 2 * CTX * b.kvDim;
  return b.kvF16 ? f16Values(new Uint16Array(bytes, 0, n)) : new Float32Array(bytes, 0, n);
}

async function checkCase(h: KernelHarness, c: MmCase, cfg: MatmulConfig, ranges = RANGES): Promise<void> {
  const b = build(c);
  const srcs = emitAll(c, b, cfg);
  const src = srcs[0];
  // perThread falls back to 1 when segment (or slice) boundaries are not multiples of it
  const pt = cfg.perThread ?? 1;
  const units = b.ctx.pieces
    ? b.ctx.pieces.map((p) => (b.fk.segments[p.segment].pair === 'half' ? p.rowCount / 2 : p.rowCount))
    : b.fk.segments.map((sg) => sg.units);
  const aligned = units.slice(0, -1).every((n) => n % pt === 0);
  if (!c.groups) assert.deepEqual({ ...src.config, perThread: src.config.perThread ?? 1 }, { ...cfg, perThread: aligned ? pt : 1 } as Record<string, number>);
  const d = makeData(c, b);
  const shared = sharedBuffers(h, c, b, d);
  const runs = ranges.map((r) => ({ r, ...dispatchesFor(h, srcs, c, b, d, r, h.buffer(xFor(d, c.K, r), 'x'), shared) }));
  const reads = runs.flatMap((run) => [...run.bufs.outs.filter((o): o is GPUBuffer => !!o), ...(run.bufs.kv ? [run.bufs.kv] : [])]
    .map((buffer) => ({ buffer })));
  const bytes = await h.run(runs.flatMap((run) => run.dispatches), reads);
  let ri = 0;
  const problems: string[] = [];
  for (const run of runs) {
    const ref = reference(c, b, d, run.r);
    const tag = `rows ${run.r.rowStart}+${run.r.rowCount} @${run.r.posBase}`;
    b.fk.segments.forEach((seg, si) => {
      if (!run.bufs.outs[si]) return;
      const ow = b.outWidth[si];
      const got = new Float32Array(bytes[ri++], 0, ROWS * ow);
      const m = mismatches(got, ref.outs[si]!.want, (i) => ref.outs[si]!.tol[i]);
      if (m.count) problems.push(describeMismatches(`${tag} segment ${si} (${seg.epilogue.kind})`, m, (i) => `row ${Math.floor(i / ow)} col ${i % ow}`));
    });
    if (run.bufs.kv) {
      const got = readKv(b, bytes[ri++]);
      const m = mismatches(got, ref.kv!.want, (i) => ref.kv!.tol[i]);
      const kd = b.kvDim;
      if (m.count) {
        problems.push(describeMismatches(`${tag} kv`, m,
          (i) => `${i >= CTX * kd ? 'v' : 'k'} pos ${Math.floor((i % (CTX * kd)) / kd)} col ${i % kd}`));
      }
    }
  }
  assert.equal(problems.length, 0, `${src.name} ${JSON.stringify(cfg)} ${c.label}\n${problems.join('\n')}`);
}

/**
 * Batch invariance: each row of a 9-row dispatch must be bit-identical to the same row (same row
 * index, same position) computed in a dispatch of its own.
 */
async function checkBatchInvariance(h: KernelHarness, c: MmCase, cfg: MatmulConfig): Promise<void> {
  const b = build(c);
  const srcs = emitAll(c, b, cfg);
  const src = srcs[0];
  const d = makeData(c, b);
  const shared = sharedBuffers(h, c, b, d);
  const x = h.buffer(d.x, 'x');
  const batch: RowRange = { rowStart: 2, rowCount: 9, posBase: 5 };
  const singles: RowRange[] = Array.from({ length: batch.rowCount }, (_, i) => ({ rowStart: batch.rowStart + i, rowCount: 1, posBase: batch.posBase }));
  const runs = [batch, ...singles].map((r) => ({ r, ...dispatchesFor(h, srcs, c, b, d, r, x, shared) }));
  const reads = runs.flatMap((run) => [...run.bufs.outs.filter((o): o is GPUBuffer => !!o), ...(run.bufs.kv ? [run.bufs.kv] : [])]
    .map((buffer) => ({ buffer })));
  const bytes = await h.run(runs.flatMap((run) => run.dispatches), reads);
  const perRun = bytes.length / runs.length;
  const bitsOf = (run: number, k: number): Uint32Array | Uint16Array => {
    const buf = bytes[run * perRun + k];
    return b.kvF16 && k === perRun - 1 && runs[0].bufs.kv ? new Uint16Array(buf) : new Uint32Array(buf);
  };
  const outIdx = b.fk.segments.map((s, si) => si).filter((si) => runs[0].bufs.outs[si]);
  for (let i = 0; i < singles.length; i++) {
    const row = singles[i].rowStart;
    const pos = singles[i].posBase + row;
    outIdx.forEach((si, k) => {
      const ow = b.outWidth[si];
      const all = bitsOf(0, k).subarray(row * ow, (row + 1) * ow);
      const one = bitsOf(i + 1, k).subarray(row * ow, (row + 1) * ow);
      const init = new Uint32Array(d.init[si].buffer, row * ow * 4, ow);
      assert.ok(all.some((v, j) => v !== init[j]), `${c.label}: row ${row} of segment ${si} was not written`);
      const j = all.findIndex((v, jj) => v !== one[jj]);
      assert.equal(j, -1, `${src.name} ${JSON.stringify(cfg)} ${c.label}: segment ${si} row ${row} col ${j} differs: `
        + `rows 2..10 give bits ${all[j]?.toString(16)}, row alone gives ${one[j]?.toString(16)}`);
    });
    if (runs[0].bufs.kv) {
      const k = perRun - 1;
      for (const plane of [0, 1]) {
        const at = plane * CTX * b.kvDim + pos * b.kvDim;
        const all = bitsOf(0, k).subarray(at, at + b.kvDim);
        const one = bitsOf(i + 1, k).subarray(at, at + b.kvDim);
        const j = all.findIndex((v, jj) => v !== one[jj]);
        assert.equal(j, -1, `${src.name} ${JSON.stringify(cfg)} ${c.label}: kv plane ${plane} pos ${pos} col ${j} differs`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Single-segment kernels: every epilogue without and with the RMSNorm prologue, each on its own
 * shape (K and N mostly not multiples of the 64-thread workgroup, nor of the split; K=8 is
 * shorter than most splits). Compiling a pipeline on lavapipe takes ~1 s, so shapes are spread
 * over the kernels rather than crossed with them. Small K (68, 100) with split 1 makes LLVM unroll
 * the whole K loop and take 10-25 s, so K stays ≥ 132 except for the tiny K=8 case.
 */
const SINGLE: MmCase[] = [
  mmCase(132, [{ kind: 'store', n: 203 }]),
  mmCase(512, [{ kind: 'store', n: 520 }], { eps: EPS }),
  mmCase(256, [{ kind: 'residual', n: 132 }]),
  // activations so small that eps dominates the norm: the kernel must use the eps it was given
  mmCase(8, [{ kind: 'residual', n: 5 }], { eps: 2.5e-7, xScale: 3e-4 }),
  mmCase(260, [{ kind: 'rope', heads: 4, hd: 16 }]),
  mmCase(132, [{ kind: 'rope', heads: 5, hd: 24 }], { eps: EPS }),
  mmCase(132, [{ kind: 'kv', plane: 'k', kvHeads: 2, hd: 32 }], { kvF16: false }),
  mmCase(260, [{ kind: 'kv', plane: 'k', kvHeads: 3, hd: 64 }], { eps: EPS }),
  mmCase(132, [{ kind: 'kv', plane: 'v', kvHeads: 3, hd: 64 }]),
  mmCase(260, [{ kind: 'kv', plane: 'v', kvHeads: 2, hd: 32 }], { eps: 1e-6, kvF16: false }),
  mmCase(196, [{ kind: 'silu_mul', n: 77 }]),
  mmCase(132, [{ kind: 'silu_mul', n: 333 }], { eps: EPS }),
];

/** Several segments in one kernel: q/k/v sharing the one kv binding, and a mix of every pairing. */
const MULTI: MmCase[] = [
  mmCase(256, [{ kind: 'rope', heads: 6, hd: 32 }, { kind: 'kv', plane: 'k', kvHeads: 2, hd: 32 }, { kind: 'kv', plane: 'v', kvHeads: 2, hd: 32 }], { eps: 1e-6 }),
  mmCase(132, [{ kind: 'store', n: 37 }, { kind: 'silu_mul', n: 50 }, { kind: 'rope', heads: 3, hd: 8 }, { kind: 'residual', n: 21 }]),
];

/**
 * Sliced weights (row slices bound separately, the last one short): one kernel binds every
 * slice; or, as when the storage-buffer limit is low, the slices split over several kernels.
 * head_dim 96 slices at multiples of 96 (not of 128): RoPE pairs and KV halves stay in a slice.
 */
const SLICED: MmCase[] = [
  mmCase(132, [{ kind: 'store', n: 300 }], { eps: EPS, chunkRows: 128 }),
  mmCase(132, [{ kind: 'silu_mul', n: 200 }], { chunkRows: 64 }),
  mmCase(196, [{ kind: 'rope', heads: 6, hd: 32 }], { chunkRows: 128 }),
  mmCase(132, [{ kind: 'kv', plane: 'k', kvHeads: 2, hd: 96 }], { eps: EPS, chunkRows: 96 }),
  // q/k/v with every weight sliced: pieces of several segments, the kv binding shared
  mmCase(132, [{ kind: 'rope', heads: 2, hd: 32 }, { kind: 'kv', plane: 'k', kvHeads: 1, hd: 32 }, { kind: 'kv', plane: 'v', kvHeads: 1, hd: 32 }],
    { eps: EPS, chunkRows: 32 }),
  mmCase(132, [{ kind: 'silu_mul', n: 200 }], { eps: EPS, chunkRows: 64, groups: 2 }),
];

/** One kernel per epilogue kind (and q/k/v, sliced and not) for the batch-invariance check; all compiled above. */
const INVARIANCE: MmCase[] = [SINGLE[1], SINGLE[2], SINGLE[5], SINGLE[7], SINGLE[8], SINGLE[11], MULTI[0], SLICED[3], SLICED[5]];

/**
 * Quantized weights (Q8_0, Q4_0: codegen/weight-load.ts dequantizes in the load) against the
 * float64 reference on the dequantized weights: odd block counts per row (K = 160, 352) and odd
 * row counts (a slice's scales ending mid-word), sliced q/k/v, every epilogue kind.
 */
const QUANT: MmCase[] = (['q8_0', 'q4_0'] as const).flatMap((format) => [
  mmCase(160, [{ kind: 'store', n: 203 }], { format }),
  mmCase(352, [{ kind: 'residual', n: 132 }], { format, eps: EPS }),
  mmCase(256, [{ kind: 'silu_mul', n: 77 }], { format }),
  mmCase(128, [{ kind: 'rope', heads: 2, hd: 32 }, { kind: 'kv', plane: 'k', kvHeads: 1, hd: 32 }, { kind: 'kv', plane: 'v', kvHeads: 1, hd: 32 }],
    { format, eps: EPS, chunkRows: 32 }),
  mmCase(96, [{ kind: 'silu_mul', n: 75 }], { format, eps: EPS, chunkRows: 32 }),
]);
const QUANT_CONFIGS: MatmulConfig[] = [CONFIGS[1], CONFIGS[4]];

describe('matmul kernels (codegen/matmul.ts)', function () {
  let h: KernelHarness;

  before(async function () {
    h = await KernelHarness.create();
  });
  afterEach(function () {
    h?.release();
  });

  it('rejects K not a multiple of 4', function () {
    const b = build(mmCase(132, [{ kind: 'store', n: 10 }], { eps: 3e-6 }));
    assert.throws(() => emitMatmul({ ...b.fk, k: 130 }, b.ctx, CONFIGS[0]), /multiple of 4/);
  });

  for (const cfg of CONFIGS) {
    describe(`split ${cfg.split}, units ${cfg.units}, rowBlock ${cfg.rowBlock}, subgroup ${cfg.subgroup}`, function () {
      beforeEach(function () {
        // subgroup reduction: needs the feature and subgroups of at least `split` lanes (lavapipe: 8)
        if (cfg.subgroup === 1 && (!h.gpu.features.has('subgroups') || (h.device.adapterInfo.subgroupMinSize ?? 0) < cfg.split)) this.skip();
      });

      for (const c of [...SINGLE, ...MULTI, ...SLICED]) {
        it(`${c.label}: rows 1, 3, 9, 17 match the reference`, async function () {
          await checkCase(h, c, cfg);
        });
      }

      for (const c of INVARIANCE) {
        it(`${c.label}: batch invariant (each of 9 rows = the row alone, bit for bit)`, async function () {
          await checkBatchInvariance(h, c, cfg);
        });
      }
    });
  }

  for (const cfg of QUANT_CONFIGS) {
    describe(`quantized weights: split ${cfg.split}, units ${cfg.units}, perThread ${cfg.perThread ?? 1}, rowBlock ${cfg.rowBlock}`, function () {
      for (const c of QUANT) {
        it(`${c.label}: rows 1, 3, 9, 17 match the reference on the dequantized weights`, async function () {
          await checkCase(h, c, cfg);
        });
      }
      for (const c of [QUANT[3], QUANT[6], QUANT[9]]) {
        it(`${c.label}: batch invariant (each of 9 rows = the row alone, bit for bit)`, async function () {
          await checkBatchInvariance(h, c, cfg);
        });
      }
    });
  }
});
