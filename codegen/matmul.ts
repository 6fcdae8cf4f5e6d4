import type { KernelSource, MatmulKernel, Segment } from '../compiler/ir/kernel.js';
import type { MatrixFormat } from '../compiler/ir/weight-formats.js';
import { RANGE_STRUCT, UNPACK4, bindingDecls, bindingsWgsl, plus, u, type BindingSpec, SEQ_DECL, SEQ_ROWS_MAX, seqRowsStruct } from './kernel.js';
import { DEQUANT_WGSL, weightReader } from './weight-load.js';

/**
 * Fused matmul y = x · Wᵀ over the rows of a step, with an optional RMSNorm prologue and
 * per-segment epilogues (RoPE, KV-cache write, SiLU·mul, residual add).
 *
 * Work split: a workgroup owns `units` outputs; each thread computes `perThread` of them (they
 * share every load of x) for `rowBlock` rows at a time (sharing every weight load), and `split`
 * threads share each output's K loop, reduced in a fixed butterfly/tree. The RMSNorm sum of
 * squares rides along the same K loop. A row's arithmetic never depends on how many rows run
 * together, so verify over k+1 rows reproduces decode bit for bit.
 *
 * A weight larger than the binding limit is bound as several row slices (MatmulContext.pieces):
 * each piece is a range of the kernel's outputs read from one slice, so one dispatch covers
 * every slice and the RMSNorm prologue runs once.
 */
export interface MatmulConfig {
  /** Threads cooperating on one output (power of two). */
  split: number;
  /** Outputs per workgroup (a multiple of perThread). */
  units: number;
  /** Outputs each thread computes (they share every load of x); default 1. */
  perThread?: number;
  /** Rows computed together, sharing each weight load. */
  rowBlock: number;
  /** 1: reduce the split with subgroup shuffles (needs split ≤ subgroup size); 0: workgroup memory. */
  subgroup: number;
}


/** Outputs one thread may compute (the tuner's perThread candidates go up to this). */
export const MAX_PER_THREAD = 8;

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);

/**
 * Row granularity at which a weight may be split into slices bound as separate buffers: a 'half'
 * pair (RoPE, the KV-cache write) reads rows j and j + headDim/2 of a head from one slice, so a
 * slice holds whole heads; and a thread's perThread consecutive outputs lie in one slice (2 rows
 * per output for half pairs).
 */
export function sliceRowAlign(headDim: number): number {
  const m = 2 * MAX_PER_THREAD;
  return (headDim / gcd(headDim, m)) * m;
}

/** Part of a kernel's work: output rows [rowStart, rowStart + rowCount) of one segment, read from one slice of its weights. */
export interface MatmulPiece {
  segment: number;
  /** Index of the weight slice: its bindings are `w{segment}_{weight}_s{slice}`. */
  slice: number;
  rowStart: number;
  rowCount: number;
}

export interface MatmulContext {
  ctx: number;
  kvDim: number;
  kvF16: boolean;
  /** Rows the SeqRows uniform describes (the plan's rows.max; default SEQ_ROWS_MAX). */
  seqRows?: number;
  /** Full output width of each segment's destination. */
  outWidth: (seg: Segment) => number;
  /**
   * Weights split into row slices (see sliceRowAlign): the pieces this kernel computes, in
   * order, each slice its own binding. Absent: every segment whole, weights bound as `w{si}_{wi}`.
   */
  pieces?: MatmulPiece[];
  /** Format of a segment's weights (codegen/weight-load.ts reads them); default f16. */
  format?: (seg: Segment) => MatrixFormat;
}

type Decl = BindingSpec;

/**
 * Storage binding names (codegen/families/matmul.ts binds buffers to them): the input, the
 * norm weight, the RoPE table, weight w of segment s (slice i when sliced), segment s's
 * destination, and the layer's KV cache.
 */
export const MATMUL_BINDING = {
  x: 'x',
  norm: 'g',
  rope: 'rope',
  kv: 'kv',
  // the SeqRows uniform (codegen/kernel.ts): bound by the runtime, not a plan buffer
  seq: 'seq',
  weight: (segment: number, weight: number, slice?: number): string => `w${segment}_${weight}${slice === undefined ? '' : `_s${slice}`}`,
  out: (segment: number): string => `out${segment}`,
} as const;

/** A piece placed in the kernel: its outputs are kernel units [start, end). */
interface PieceCode {
  start: number;
  end: number;
  /** Computes, for output p of the thread: col0_<p>/col1_<p> (output columns) and, for loads, r0_<p>/r1_<p> (weight rows in the bound slice). */
  rows: (p: number, loads: boolean) => string;
  /** Loads the weights of output p for k4 into wa<p> (and wb<p>). */
  load: (p: number) => string;
  /** Stores output p of one row from v0 (and v1); `row`, `pos` in scope. */
  epilogue: (p: number) => string;
  pair: boolean;
  /** The epilogue reads `pos` (RoPE, the KV-cache write). */
  pos: boolean;
  /** The epilogue writes the KV cache (reads `slot`). */
  kv: boolean;
}

const usesRope = (s: Segment): boolean => s.epilogue.kind === 'rope' || (s.epilogue.kind === 'kv' && s.epilogue.rope);
const usesPos = (s: Segment): boolean => s.epilogue.kind === 'rope' || s.epilogue.kind === 'kv';

/** What a segment computes, for kernel names and headers. */
function segmentName(s: Segment): string {
  const ep = s.epilogue;
  switch (ep.kind) {
    case 'store': return 'store';
    case 'residual': return 'residual';
    case 'rope': return 'rope';
    case 'silu_mul': return 'silu_mul';
    case 'kv': return ep.rope ? 'rope_kcache' : `${ep.plane}cache`;
  }
}

function pieceCode(seg: Segment, si: number, piece: MatmulPiece | undefined, start: number, c: MatmulContext, K4: number,
  PT: number, declared: Set<string>, decls: Decl[]): PieceCode {
  const sliced = piece !== undefined;
  const rowBase = piece?.rowStart ?? 0;
  const rowsHere = piece?.rowCount ?? seg.n;
  const half = seg.pair === 'half';
  const hd = half ? (seg.epilogue as { headDim: number }).headDim : 0;
  if (half && rowBase % hd !== 0) throw new Error(`internal: a weight slice at row ${rowBase} cuts a head of ${hd} rows`);
  const units = half ? rowsHere / 2 : rowsHere;
  const unitBase = half ? rowBase / 2 : rowBase;
  const wNames = seg.weights.map((_, wi) => MATMUL_BINDING.weight(si, wi, sliced ? piece.slice : undefined));
  const reader = weightReader(c.format?.(seg) ?? 'f16', rowsHere, K4 * 4);
  for (const n of wNames) decls.push({ name: n, decl: `var<storage, read> $: ${reader.array}`, type: 'read' });
  // a thread's last outputs may run past the piece: clamp their loads, skip their stores
  const unitOf = (p: number): string => plus(PT > 1 ? `min(${plus('lu', p)}, ${u(units - 1)})` : 'lu', unitBase);
  const rows = (p: number, loads: boolean): string => {
    const sliced = loads && rowBase > 0;
    if (half) {
      return `let gu${p} = ${unitOf(p)};
      let jj${p} = gu${p} % ${u(hd / 2)};
      let col0_${p} = (gu${p} / ${u(hd / 2)}) * ${u(hd)} + jj${p};
      let col1_${p} = col0_${p} + ${u(hd / 2)};${sliced ? `
      let r0_${p} = col0_${p} - ${u(rowBase)};
      let r1_${p} = col1_${p} - ${u(rowBase)};` : ''}`;
    }
    return sliced ? `let r0_${p} = ${unitOf(p)} - ${u(rowBase)};` : `let col0_${p} = ${unitOf(p)};`;
  };
  // weight rows: the output columns, less the slice's first row
  const r0 = (p: number): string => (rowBase ? `r0_${p}` : `col0_${p}`);
  const r1 = (p: number): string => (!half ? r0(p) : rowBase ? `r1_${p}` : `col1_${p}`);
  const two = seg.pair !== 'none';
  const wb = seg.pair === 'zip' ? wNames[1] : wNames[0];
  const load = (p: number): string => `let wa${p} = ${reader.load(wNames[0], r0(p))};` +
    (two ? `\n        let wb${p} = ${reader.load(wb, r1(p))};` : '');
  const ep = seg.epilogue;
  const outW = c.outWidth(seg);
  const at = (col: string): string => `row * ${u(outW)} + ${col}`;
  const rope = (p: number): string => `let cs = rope[pos * ${u(hd / 2)} + jj${p}];
          let y0 = v0 * cs.x - v1 * cs.y;
          let y1 = v1 * cs.x + v0 * cs.y;`;
  const out = MATMUL_BINDING.out(si);
  const declare = (name: string, t = 'f32'): void => {
    // one binding per destination, however many pieces write it (aliased writable bindings are invalid)
    if (!declared.has(name)) decls.push({ name, decl: `var<storage, read_write> $: array<${t}>`, type: 'rw' });
    declared.add(name);
  };
  let epilogue: (p: number) => string;
  switch (ep.kind) {
    case 'store':
      declare(out);
      epilogue = (p) => `${out}[${at(`col0_${p}`)}] = v0;`;
      break;
    case 'residual':
      declare(out);
      epilogue = (p) => `${out}[${at(`col0_${p}`)}] = ${out}[${at(`col0_${p}`)}] + v0;`;
      break;
    case 'silu_mul':
      declare(out);
      epilogue = (p) => `${out}[${at(`col0_${p}`)}] = v0 / (1.0 + exp(-v0)) * v1;`;
      break;
    case 'rope':
      declare(out);
      epilogue = (p) => `${rope(p)}
          ${out}[${at(`col0_${p}`)}] = y0;
          ${out}[${at(`col1_${p}`)}] = y1;`;
      break;
    case 'kv': {
      const t = c.kvF16 ? 'f16' : 'f32';
      // k and v planes share one buffer per layer
      declare(MATMUL_BINDING.kv, t);
      // K then V of one sequence's slot: [slot][2][ctx][kvDim]
      const base = ep.plane === 'k' ? `slot * ${u(2 * c.ctx * c.kvDim)} + ` : `slot * ${u(2 * c.ctx * c.kvDim)} + ${u(c.ctx * c.kvDim)} + `;
      const [y0, y1] = ep.rope ? ['y0', 'y1'] : ['v0', 'v1'];
      epilogue = (p) => `${ep.rope ? `${rope(p)}\n          ` : ''}kv[${base}pos * ${u(c.kvDim)} + col0_${p}] = ${t}(${y0});
          kv[${base}pos * ${u(c.kvDim)} + col1_${p}] = ${t}(${y1});`;
      break;
    }
  }
  const guarded = (p: number): string => (PT > 1 ? `if (${plus('lu', p)} < ${u(units)}) {
          ${epilogue(p)}
        }` : epilogue(p));
  return { start, end: start + units, rows, load, epilogue: guarded, pair: two, pos: usesPos(seg), kv: ep.kind === 'kv' };
}

export function emitMatmul(k: MatmulKernel, c: MatmulContext, cfg: MatmulConfig): KernelSource {
  if (k.k % 4 !== 0) throw new Error(`internal: matmul K=${k.k} must be a multiple of 4`);
  const K4 = k.k / 4;
  const { split: S, units: U, rowBlock: RB } = cfg;
  const pieces: { seg: Segment; si: number; piece?: MatmulPiece }[] = c.pieces
    ? c.pieces.map((piece) => ({ seg: k.segments[piece.segment], si: piece.segment, piece }))
    : k.segments.map((seg, si) => ({ seg, si }));
  const unitsOf = (x: (typeof pieces)[number]): number => {
    const rows = x.piece?.rowCount ?? x.seg.n;
    return x.seg.pair === 'half' ? rows / 2 : rows;
  };
  // every thread's outputs must sit in one piece: piece boundaries at multiples of perThread
  const PT = pieces.slice(0, -1).every((x) => unitsOf(x) % (cfg.perThread ?? 1) === 0) ? (cfg.perThread ?? 1) : 1;
  if (U % PT !== 0) throw new Error(`internal: matmul units ${U} must be a multiple of perThread ${PT}`);
  const WG = S * (U / PT);
  const segs = [...new Set(pieces.map((x) => x.seg))];
  const P = Math.max(...segs.map((s) => (s.pair === 'none' ? 1 : 2)));
  const norm = k.norm;
  const sub = cfg.subgroup === 1 && S > 1;

  const decls: Decl[] = [{ name: 'rng', decl: 'var<uniform> $: Range', type: 'range' }];
  decls.push({ name: MATMUL_BINDING.x, decl: 'var<storage, read> $: array<vec4<f32>>', type: 'read' });
  if (norm) decls.push({ name: MATMUL_BINDING.norm, decl: 'var<storage, read> $: array<vec4<f32>>', type: 'read' });
  if (segs.some(usesRope)) decls.push({ name: MATMUL_BINDING.rope, decl: 'var<storage, read> $: array<vec2<f32>>', type: 'read' });
  const seq = segs.some(usesPos);
  if (seq) decls.push({ name: MATMUL_BINDING.seq, decl: SEQ_DECL, type: 'seq' });
  const declared = new Set<string>();
  let start = 0;
  const code: PieceCode[] = pieces.map((x) => {
    const pc = pieceCode(x.seg, x.si, x.piece, start, c, K4, PT, declared, decls);
    start = pc.end;
    return pc;
  });
  const totalUnits = start;

  // accumulators: a<p>_<pair>_<row> per output p, paired weight row and row of the block; ss_<row> for the norm
  const acc = (p: number, q: number, j: number): string => `a${p}_${q}_${j}`;
  const accNames: string[] = [];
  for (let j = 0; j < RB; j++) {
    for (let p = 0; p < PT; p++) for (let q = 0; q < P; q++) accNames.push(acc(p, q, j));
    if (norm) accNames.push(`ss_${j}`);
  }
  const rowGuard = (j: number): string => `${plus('rb', j)} < rng.rowCount`;
  const each = (n: number, f: (i: number) => string, sep = '\n        '): string => Array.from({ length: n }, (_, i) => f(i)).join(sep);
  const accumulate = (pair: boolean): string => {
    const lines: string[] = [];
    if (norm) lines.push('let gv = g[k4];');
    for (let j = 0; j < RB; j++) {
      const body = [`let xr = x[(${plus('rng.rowStart + rb', j)}) * ${u(K4)} + k4];`];
      if (norm) body.push(`ss_${j} += dot(xr, xr);`, 'let xv = xr * gv;');
      const xv = norm ? 'xv' : 'xr';
      for (let p = 0; p < PT; p++) {
        body.push(`${acc(p, 0, j)} += dot(wa${p}, ${xv});`);
        if (pair) body.push(`${acc(p, 1, j)} += dot(wb${p}, ${xv});`);
      }
      lines.push(RB > 1 ? `if (${rowGuard(j)}) {\n          ${body.join('\n          ')}\n        }` : body.join('\n        '));
    }
    return lines.join('\n        ');
  };
  // one branch per piece, by the kernel unit: if (unit < end0) {..} else if (unit < end1) {..} else {..}
  const branches = (loads: boolean, pick: (s: PieceCode) => string): string => code.map((s, i) => {
    const body = `${s.start ? `let lu = unit - ${u(s.start)};` : 'let lu = unit;'}
      ${each(PT, (p) => s.rows(p, loads), '\n      ')}
      ${pick(s)}`;
    if (code.length === 1) return body;
    return `${i ? ' else ' : ''}${i < code.length - 1 ? `if (unit < ${u(s.end)}) ` : ''}{
      ${body}
    }`;
  }).join('');
  const sp = S > 1 ? 'sp' : '0u';
  const mainLoop = branches(true, (s) => `for (var k4 = ${sp}; k4 < ${u(K4)}; k4 += ${u(S)}) {
        ${each(PT, s.load)}
        ${accumulate(s.pair)}
      }`);

  let reduce = '';
  if (S > 1 && sub) {
    const steps: string[] = [];
    for (let m = S / 2; m >= 1; m /= 2) for (const a of accNames) steps.push(`${a} += subgroupShuffleXor(${a}, ${u(m)});`);
    reduce = steps.join('\n    ');
  } else if (S > 1) {
    reduce = `${accNames.map((a, q) => `red[${plus('t', q * WG)}] = ${a};`).join('\n    ')}
    workgroupBarrier();
    for (var st = ${u(S / 2)}; st > 0u; st = st >> 1u) {
      if (sp < st) {
        for (var q = 0u; q < ${u(accNames.length)}; q++) {
          red[q * ${u(WG)} + t] = red[q * ${u(WG)} + t] + red[q * ${u(WG)} + t + st];
        }
      }
      workgroupBarrier();
    }
    ${accNames.map((a, q) => `${a} = red[${plus('t', q * WG)}];`).join('\n    ')}`;
  }
  const epilogue = branches(false, (s) => Array.from({ length: RB }, (_, j) => {
    const body = `let row = ${plus('rng.rowStart + rb', j)};${s.pos ? '\n        let pos = rng.posBase + row + seq.r[row].x;' : ''}${s.kv ? '\n        let slot = seq.r[row].y;' : ''}${norm ? `
        let inv = inverseSqrt(ss_${j} / ${k.k}.0 + ${norm.eps});` : ''}
        ${each(PT, (p) => `{
          let v0 = ${acc(p, 0, j)}${norm ? ' * inv' : ''};${s.pair ? `
          let v1 = ${acc(p, 1, j)}${norm ? ' * inv' : ''};` : ''}
          ${s.epilogue(p)}
        }`)}`;
    return RB > 1 ? `if (${rowGuard(j)}) {\n        ${body}\n      }` : `{\n        ${body}\n      }`;
  }).join('\n      '));

  const slices = [...new Set(pieces.map((x) => x.piece?.slice ?? 0))];
  const formats = [...new Set(segs.map((s) => c.format?.(s) ?? 'f16'))];
  const quant = formats.filter((f) => f !== 'f16');
  const name = [norm ? 'rmsnorm' : '', 'matmul', ...quant, ...segs.map(segmentName).filter((n) => n !== 'store'),
    c.pieces ? (slices.length === 1 ? `slice${slices[0]}` : `${slices.length}slices`) : ''].filter(Boolean).join('_');
  const needF16 = c.kvF16 && segs.some((s) => s.epilogue.kind === 'kv');
  const threadUnit = S > 1 ? `t / ${u(S)}` : 't';
  const firstUnit = PT > 1 ? `(wid.x * ${u(U / PT)} + ${threadUnit}) * ${u(PT)}` : `wid.x * ${u(U)} + ${threadUnit}`;
  const wgsl = `${needF16 ? 'enable f16;\n' : ''}${sub ? 'enable subgroups;\n' : ''}${RANGE_STRUCT}
${seq ? `${seqRowsStruct(c.seqRows ?? SEQ_ROWS_MAX)}\n` : ''}${bindingsWgsl(decls)}
${UNPACK4}${quant.length ? `\n${DEQUANT_WGSL}` : ''}
${S > 1 && !sub ? `var<workgroup> red: array<f32, ${WG * accNames.length}>;\n` : ''}
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {${S > 1 ? `
  let sp = t % ${u(S)};` : ''}
  // first of this thread's ${PT} consecutive output${PT > 1 ? 's' : ''}
  let unit = ${firstUnit};
  let live = unit < ${u(totalUnits)};
  for (var rb = 0u; rb < rng.rowCount; rb += ${u(RB)}) {
    ${accNames.map((a) => `var ${a} = 0.0;`).join('\n    ')}
    if (live) {
    ${mainLoop}
    }${reduce ? `\n    ${reduce}` : ''}
    if (live${S > 1 ? ' && sp == 0u' : ''}) {
    ${epilogue}
    }${S > 1 && !sub ? '\n    workgroupBarrier();' : ''}
  }
}
`;
  return {
    family: 'matmul', name, wgsl, workgroupSize: WG,
    bindings: bindingDecls(decls),
    params: [],
    grid: [Math.ceil(totalUnits / U), 1, 1],
    config: PT === (cfg.perThread ?? 1) ? { ...cfg } : { ...cfg, perThread: PT },
    features: [...(needF16 ? ['shader-f16'] : []), ...(sub ? ['subgroups'] : [])],
  };
}
