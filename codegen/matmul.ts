import type { FusedKernel, Segment } from '../compiler/passes/fuse.js';
import { RANGE_STRUCT, UNPACK4, bindingsWgsl, paramsStruct, u, type BindingDecl, type KernelSource } from './kernel.js';

/**
 * Fused matmul y = x · Wᵀ over the rows of a step, with an optional RMSNorm prologue and
 * per-segment epilogues (RoPE, KV-cache write, SiLU·mul, residual add).
 *
 * Work split: a workgroup owns `units` outputs; each thread computes `perThread` of them (they
 * share every load of x) for `rowBlock` rows at a time (sharing every weight load), and `split`
 * threads share each output's K loop, reduced in a fixed butterfly/tree. The RMSNorm sum of
 * squares rides along the same K loop. A row's arithmetic never depends on how many rows run
 * together, so verify over k+1 rows reproduces decode bit for bit.
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


export interface MatmulContext {
  ctx: number;
  kvDim: number;
  kvF16: boolean;
  /** Full output width of each segment's destination. */
  outWidth: (seg: Segment) => number;
  /** Chunked: one segment whose weights are bound a row slice at a time. */
  chunk?: { units: number };
}

type Decl = { name: string; decl: string; type: BindingDecl['type'] };

interface SegmentCode {
  decls: Decl[];
  /** Computes, for output p of the thread: gu<p>, col0_<p>/col1_<p> (output columns), r0_<p>/r1_<p> (weight rows in the bound slice). */
  rows: (p: number) => string;
  /** Loads the weights of output p for k4 into wa<p> (and wb<p>). */
  load: (p: number) => string;
  /** Stores output p of one row from v0 (and v1); `row`, `pos` in scope. */
  epilogue: (p: number) => string;
  pair: boolean;
  start: number;
  end: number;
}

const usesRope = (s: Segment): boolean => s.epilogue.kind === 'rope' || (s.epilogue.kind === 'kv' && s.epilogue.rope);

function segmentCode(seg: Segment, si: number, c: MatmulContext, K4: number, chunked: boolean,
  kvDeclared: { done: boolean }): Omit<SegmentCode, 'start' | 'end'> {
  const decls: Decl[] = [];
  const wNames = seg.weights.map((_, wi) => `w${si}_${wi}`);
  for (const n of wNames) decls.push({ name: n, decl: 'var<storage, read> $: array<vec2<u32>>', type: 'read' });
  const rowBase = chunked ? 'prm.rowBase' : '0u';
  // a thread's last outputs may run past the segment: clamp their loads, skip their stores
  const count = chunked ? 'prm.unitCount' : u(seg.units);
  const rows = (p: number): string => {
    const gu = `${chunked ? 'prm.unitBase + ' : ''}min(lu + ${u(p)}, ${count} - 1u)`;
    if (seg.pair === 'half') {
      const hd = (seg.epilogue as { headDim: number }).headDim;
      return `let gu${p} = ${gu};
      let jj${p} = gu${p} % ${u(hd / 2)};
      let col0_${p} = (gu${p} / ${u(hd / 2)}) * ${u(hd)} + jj${p};
      let col1_${p} = col0_${p} + ${u(hd / 2)};
      let r0_${p} = col0_${p} - ${rowBase};
      let r1_${p} = col1_${p} - ${rowBase};`;
    }
    return `let gu${p} = ${gu};
      let col0_${p} = gu${p};
      let r0_${p} = gu${p} - ${rowBase};
      let r1_${p} = r0_${p};`;
  };
  const two = seg.pair !== 'none';
  const wb = seg.pair === 'zip' ? wNames[1] : wNames[0];
  const load = (p: number): string => `let wa${p} = unpack4(${wNames[0]}[r0_${p} * ${u(K4)} + k4]);` +
    (two ? `\n        let wb${p} = unpack4(${wb}[r1_${p} * ${u(K4)} + k4]);` : '');
  const ep = seg.epilogue;
  const outW = c.outWidth(seg);
  const at = (col: string): string => `row * ${u(outW)} + ${col}`;
  const rope = (hd: number, p: number): string => `let cs = rope[pos * ${u(hd / 2)} + jj${p}];
          let y0 = v0 * cs.x - v1 * cs.y;
          let y1 = v1 * cs.x + v0 * cs.y;`;
  const out = `out${si}`;
  const rw = (name: string, t = 'f32'): Decl => ({ name, decl: `var<storage, read_write> $: array<${t}>`, type: 'rw' });
  let epilogue: (p: number) => string;
  switch (ep.kind) {
    case 'store':
      decls.push(rw(out));
      epilogue = (p) => `${out}[${at(`col0_${p}`)}] = v0;`;
      break;
    case 'residual':
      decls.push(rw(out));
      epilogue = (p) => `${out}[${at(`col0_${p}`)}] = ${out}[${at(`col0_${p}`)}] + v0;`;
      break;
    case 'silu_mul':
      decls.push(rw(out));
      epilogue = (p) => `${out}[${at(`col0_${p}`)}] = v0 / (1.0 + exp(-v0)) * v1;`;
      break;
    case 'rope':
      decls.push(rw(out));
      epilogue = (p) => `${rope(ep.headDim, p)}
          ${out}[${at(`col0_${p}`)}] = y0;
          ${out}[${at(`col1_${p}`)}] = y1;`;
      break;
    case 'kv': {
      const t = c.kvF16 ? 'f16' : 'f32';
      // k and v planes share one buffer per layer, bound once (aliased writable bindings are invalid)
      if (!kvDeclared.done) decls.push(rw('kv', t));
      kvDeclared.done = true;
      const base = ep.plane === 'k' ? '' : `${u(c.ctx * c.kvDim)} + `;
      epilogue = (p) => `${ep.rope ? rope(ep.headDim, p) : 'let y0 = v0;\n          let y1 = v1;'}
          kv[${base}pos * ${u(c.kvDim)} + col0_${p}] = ${t}(y0);
          kv[${base}pos * ${u(c.kvDim)} + col1_${p}] = ${t}(y1);`;
      break;
    }
  }
  const guarded = (p: number): string => `if (lu + ${u(p)} < ${count}) {
          ${epilogue(p)}
        }`;
  return { decls, rows, load, epilogue: guarded, pair: two };
}

export function emitMatmul(k: Extract<FusedKernel, { family: 'matmul' }>, c: MatmulContext, cfg: MatmulConfig): KernelSource {
  if (k.k % 4 !== 0) throw new Error(`internal: matmul K=${k.k} must be a multiple of 4`);
  const K4 = k.k / 4;
  const { split: S, units: U, rowBlock: RB } = cfg;
  const chunked = c.chunk !== undefined;
  // every thread's outputs must sit in one segment: segment boundaries at multiples of perThread
  const PT = k.segments.slice(0, -1).every((s) => s.units % (cfg.perThread ?? 1) === 0) ? (cfg.perThread ?? 1) : 1;
  if (U % PT !== 0) throw new Error(`internal: matmul units ${U} must be a multiple of perThread ${PT}`);
  const WG = S * (U / PT);
  const P = Math.max(...k.segments.map((s) => (s.pair === 'none' ? 1 : 2)));
  const norm = k.norm;
  if (chunked && k.segments.length !== 1) throw new Error('internal: a chunked matmul has one segment');
  const sub = cfg.subgroup === 1 && S > 1;

  const decls: Decl[] = [{ name: 'rng', decl: 'var<uniform> $: Range', type: 'range' }];
  if (chunked) decls.push({ name: 'prm', decl: 'var<uniform> $: Params', type: 'params' });
  decls.push({ name: 'x', decl: 'var<storage, read> $: array<vec4<f32>>', type: 'read' });
  if (norm) decls.push({ name: 'g', decl: 'var<storage, read> $: array<vec4<f32>>', type: 'read' });
  if (k.segments.some(usesRope)) decls.push({ name: 'rope', decl: 'var<storage, read> $: array<vec2<f32>>', type: 'read' });
  const kvDeclared = { done: false };
  let start = 0;
  const segs: SegmentCode[] = k.segments.map((seg, si) => {
    const code = segmentCode(seg, si, c, K4, chunked, kvDeclared);
    const s = { ...code, start, end: start + seg.units };
    start += seg.units;
    return s;
  });
  for (const s of segs) decls.push(...s.decls);
  const totalUnits = chunked ? c.chunk!.units : start;

  // accumulators: a<p>_<pair>_<row> per output p, paired weight row and row of the block; ss_<row> for the norm
  const acc = (p: number, q: number, j: number): string => `a${p}_${q}_${j}`;
  const accNames: string[] = [];
  for (let j = 0; j < RB; j++) {
    for (let p = 0; p < PT; p++) for (let q = 0; q < P; q++) accNames.push(acc(p, q, j));
    if (norm) accNames.push(`ss_${j}`);
  }
  const rowGuard = (j: number): string => `rb + ${u(j)} < rng.rowCount`;
  const each = (n: number, f: (i: number) => string, sep = '\n        '): string => Array.from({ length: n }, (_, i) => f(i)).join(sep);
  const accumulate = (pair: boolean): string => {
    const lines: string[] = [];
    if (norm) lines.push('let gv = g[k4];');
    for (let j = 0; j < RB; j++) {
      const body = [`let xr = x[(rng.rowStart + rb + ${u(j)}) * ${u(K4)} + k4];`];
      if (norm) body.push(`ss_${j} += dot(xr, xr);`, 'let xv = xr * gv;');
      else body.push('let xv = xr;');
      for (let p = 0; p < PT; p++) {
        body.push(`${acc(p, 0, j)} += dot(wa${p}, xv);`);
        if (pair) body.push(`${acc(p, 1, j)} += dot(wb${p}, xv);`);
      }
      lines.push(`if (${rowGuard(j)}) {\n          ${body.join('\n          ')}\n        }`);
    }
    return lines.join('\n        ');
  };
  const branches = (pick: (s: SegmentCode) => string): string => segs.map((s, si) => {
    const cond = chunked || segs.length === 1 ? 'true' : `unit >= ${u(s.start)} && unit < ${u(s.end)}`;
    return `${si ? ' else ' : ''}if (${cond}) {
      let lu = ${chunked ? 'unit' : `unit - ${u(s.start)}`};
      ${each(PT, s.rows, '\n      ')}
      ${pick(s)}
    }`;
  }).join('');
  const mainLoop = branches((s) => `for (var k4 = sp; k4 < ${u(K4)}; k4 += ${u(S)}) {
        ${each(PT, s.load)}
        ${accumulate(s.pair)}
      }`);

  let reduce = '';
  if (S > 1 && sub) {
    const steps: string[] = [];
    for (let m = S / 2; m >= 1; m /= 2) for (const a of accNames) steps.push(`${a} += subgroupShuffleXor(${a}, ${u(m)});`);
    reduce = steps.join('\n    ');
  } else if (S > 1) {
    reduce = `${accNames.map((a, q) => `red[${u(q * WG)} + t] = ${a};`).join('\n    ')}
    workgroupBarrier();
    for (var st = ${u(S / 2)}; st > 0u; st = st >> 1u) {
      if (sp < st) {
        for (var q = 0u; q < ${u(accNames.length)}; q++) {
          red[q * ${u(WG)} + t] = red[q * ${u(WG)} + t] + red[q * ${u(WG)} + t + st];
        }
      }
      workgroupBarrier();
    }
    ${accNames.map((a, q) => `${a} = red[${u(q * WG)} + t];`).join('\n    ')}`;
  }
  const epilogue = branches((s) => Array.from({ length: RB }, (_, j) => `if (${rowGuard(j)}) {
        let row = rng.rowStart + rb + ${u(j)};
        let pos = rng.posBase + row;
        ${norm ? `let inv = inverseSqrt(ss_${j} / ${k.k}.0 + ${norm.eps});` : ''}
        ${each(PT, (p) => `{
          let v0 = ${acc(p, 0, j)}${norm ? ' * inv' : ''};
          let v1 = ${P > 1 ? `${acc(p, P - 1, j)}${norm ? ' * inv' : ''}` : '0.0'};
          ${s.epilogue(p)}
        }`)}
      }`).join('\n      '));

  const name = `matmul${norm ? '_norm' : ''}_${k.segments.map((s) => s.epilogue.kind + (s.pair === 'none' ? '' : `_${s.pair}`)).join('_')}`;
  const needF16 = c.kvF16 && k.segments.some((s) => s.epilogue.kind === 'kv');
  const params = chunked ? ['unitBase', 'unitCount', 'rowBase', 'pad'] : [];
  const wgsl = `${needF16 ? 'enable f16;\n' : ''}${sub ? 'enable subgroups;\n' : ''}${RANGE_STRUCT}
${paramsStruct(params)}
${bindingsWgsl(decls)}
${UNPACK4}
${S > 1 && !sub ? `var<workgroup> red: array<f32, ${WG * accNames.length}>;` : ''}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let sp = t % ${u(S)};
  // first of this thread's ${PT} consecutive outputs
  let unit = (wid.x * ${u(U / PT)} + t / ${u(S)}) * ${u(PT)};
  let live = unit < ${chunked ? 'prm.unitCount' : u(totalUnits)};
  for (var rb = 0u; rb < rng.rowCount; rb += ${u(RB)}) {
    ${accNames.map((a) => `var ${a} = 0.0;`).join('\n    ')}
    if (live) {
    ${mainLoop}
    }
    ${reduce}
    if (live && sp == 0u) {
    ${epilogue}
    }
    ${S > 1 && !sub ? 'workgroupBarrier();' : ''}
  }
}
`;
  return {
    family: 'matmul', name, wgsl, workgroupSize: WG,
    bindings: decls.map((d) => ({ name: d.name, type: d.type })),
    params,
    grid: [Math.ceil(totalUnits / U), 1, 1],
    config: PT === (cfg.perThread ?? 1) ? { ...cfg } : { ...cfg, perThread: PT },
    features: [...(needF16 ? ['shader-f16'] : []), ...(sub ? ['subgroups'] : [])],
  };
}
