import type { FusedKernel, Segment } from '../compiler/passes/fuse.js';
import { RANGE_STRUCT, UNPACK4, bindingsWgsl, paramsStruct, u, type BindingDecl, type KernelSource } from './kernel.js';

/**
 * Fused matmul y = x · Wᵀ over the rows of a step, with an optional RMSNorm prologue and
 * per-segment epilogues (RoPE, KV-cache write, SiLU·mul, residual add).
 *
 * A workgroup owns `units` outputs; `split` threads share each output's K loop and reduce in a
 * fixed butterfly/tree. The RMSNorm sum of squares rides along the same K loop (x is loaded
 * once). A row's arithmetic never depends on how many rows run together, so verify over k+1
 * rows reproduces decode bit for bit.
 */
export interface MatmulConfig {
  /** Threads cooperating on one output (power of two). */
  split: number;
  /** Outputs per workgroup. */
  units: number;
  /** Rows computed together, sharing each weight load. */
  rowBlock: number;
  /** 1: reduce the split with subgroup shuffles (needs split ≤ subgroup size); 0: workgroup memory. */
  subgroup: number;
}

export const DEFAULT_MATMUL: MatmulConfig = { split: 1, units: 64, rowBlock: 1, subgroup: 0 };

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
  /** Computes gu, col0/col1 (output columns), r0/r1 (weight rows in the bound slice). */
  rows: string;
  /** Loads the weights for k4 into wa (and wb). */
  load: string;
  epilogue: string;
  start: number;
  end: number;
}

const usesRope = (s: Segment): boolean => s.epilogue.kind === 'rope' || (s.epilogue.kind === 'kv' && s.epilogue.rope);

function segmentCode(seg: Segment, si: number, c: MatmulContext, K4: number, chunked: boolean, kvDeclared: { done: boolean }): Omit<SegmentCode, 'start' | 'end'> {
  const decls: Decl[] = [];
  const wNames = seg.weights.map((_, wi) => `w${si}_${wi}`);
  for (const n of wNames) decls.push({ name: n, decl: 'var<storage, read> $: array<vec2<u32>>', type: 'read' });
  const gu = chunked ? 'prm.unitBase + lu' : 'lu';
  const rowBase = chunked ? 'prm.rowBase' : '0u';
  let rows: string;
  if (seg.pair === 'half') {
    const hd = (seg.epilogue as { headDim: number }).headDim;
    rows = `let gu = ${gu};
      let head = gu / ${u(hd / 2)};
      let jj = gu % ${u(hd / 2)};
      let col0 = head * ${u(hd)} + jj;
      let col1 = col0 + ${u(hd / 2)};
      let r0 = col0 - ${rowBase};
      let r1 = col1 - ${rowBase};`;
  } else {
    rows = `let gu = ${gu};
      let col0 = gu;
      let col1 = gu;
      let r0 = gu - ${rowBase};
      let r1 = r0;`;
  }
  const two = seg.pair !== 'none';
  const wb = seg.pair === 'zip' ? wNames[1] : wNames[0];
  const load = `let wa = unpack4(${wNames[0]}[r0 * ${u(K4)} + k4]);${two ? `\n        let wb = unpack4(${wb}[r1 * ${u(K4)} + k4]);` : ''}`;
  const ep = seg.epilogue;
  const outW = c.outWidth(seg);
  const at = (col: string): string => `row * ${u(outW)} + ${col}`;
  const rope = (hd: number): string => `let cs = rope[pos * ${u(hd / 2)} + jj];
          let y0 = v0 * cs.x - v1 * cs.y;
          let y1 = v1 * cs.x + v0 * cs.y;`;
  const out = `out${si}`;
  const rw = (name: string, t = 'f32'): Decl => ({ name, decl: `var<storage, read_write> $: array<${t}>`, type: 'rw' });
  let epilogue: string;
  switch (ep.kind) {
    case 'store':
      decls.push(rw(out));
      epilogue = `${out}[${at('col0')}] = v0;`;
      break;
    case 'residual':
      decls.push(rw(out));
      epilogue = `${out}[${at('col0')}] = ${out}[${at('col0')}] + v0;`;
      break;
    case 'silu_mul':
      decls.push(rw(out));
      epilogue = `${out}[${at('col0')}] = v0 / (1.0 + exp(-v0)) * v1;`;
      break;
    case 'rope':
      decls.push(rw(out));
      epilogue = `${rope(ep.headDim)}
          ${out}[${at('col0')}] = y0;
          ${out}[${at('col1')}] = y1;`;
      break;
    case 'kv': {
      const t = c.kvF16 ? 'f16' : 'f32';
      // k and v planes share one buffer per layer, bound once (aliased writable bindings are invalid)
      if (!kvDeclared.done) decls.push(rw('kv', t));
      kvDeclared.done = true;
      const base = ep.plane === 'k' ? '' : `${u(c.ctx * c.kvDim)} + `;
      epilogue = `${ep.rope ? rope(ep.headDim) : 'let y0 = v0;\n          let y1 = v1;'}
          kv[${base}pos * ${u(c.kvDim)} + col0] = ${t}(y0);
          kv[${base}pos * ${u(c.kvDim)} + col1] = ${t}(y1);`;
      break;
    }
  }
  return { decls, rows, load, epilogue };
}

export function emitMatmul(k: Extract<FusedKernel, { family: 'matmul' }>, c: MatmulContext, cfg: MatmulConfig): KernelSource {
  if (k.k % 4 !== 0) throw new Error(`internal: matmul K=${k.k} must be a multiple of 4`);
  const K4 = k.k / 4;
  const { split: S, units: U, rowBlock: RB } = cfg;
  const WG = S * U;
  const P = Math.max(...k.segments.map((s) => (s.pair === 'none' ? 1 : 2)));
  const norm = k.norm;
  const chunked = c.chunk !== undefined;
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

  // accumulators per row of the block: a0 (and a1 for paired rows), ss (sum of squares for the norm)
  const accNames: string[] = [];
  for (let j = 0; j < RB; j++) {
    accNames.push(`a0_${j}`);
    if (P > 1) accNames.push(`a1_${j}`);
    if (norm) accNames.push(`ss_${j}`);
  }
  const rowGuard = (j: number): string => `rb + ${u(j)} < rng.rowCount`;
  const accumulate = (two: boolean): string => {
    const lines: string[] = [];
    if (norm) lines.push('let gv = g[k4];');
    for (let j = 0; j < RB; j++) {
      const body = [`let xr = x[(rng.rowStart + rb + ${u(j)}) * ${u(K4)} + k4];`];
      if (norm) body.push(`ss_${j} += dot(xr, xr);`, 'let xv = xr * gv;');
      else body.push('let xv = xr;');
      body.push(`a0_${j} += dot(wa, xv);`);
      if (two) body.push(`a1_${j} += dot(wb, xv);`);
      lines.push(`if (${rowGuard(j)}) {\n          ${body.join('\n          ')}\n        }`);
    }
    return lines.join('\n        ');
  };
  const branches = (pick: (s: SegmentCode, si: number) => string): string => segs.map((s, si) => {
    const cond = chunked || segs.length === 1 ? 'true' : `unit >= ${u(s.start)} && unit < ${u(s.end)}`;
    return `${si ? ' else ' : ''}if (${cond}) {
      let lu = ${chunked ? 'unit' : `unit - ${u(s.start)}`};
      ${s.rows}
      ${pick(s, si)}
    }`;
  }).join('');
  const mainLoop = branches((s, si) => `for (var k4 = s; k4 < ${u(K4)}; k4 += ${u(S)}) {
        ${s.load}
        ${accumulate(k.segments[si].pair !== 'none')}
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
      if (s < st) {
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
        let v0 = a0_${j}${norm ? ' * inv' : ''};
        let v1 = ${P > 1 ? `a1_${j}${norm ? ' * inv' : ''}` : '0.0'};
        ${s.epilogue}
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
  let s = t % ${u(S)};
  let unit = wid.x * ${u(U)} + t / ${u(S)};
  let live = unit < ${chunked ? 'prm.unitCount' : u(totalUnits)};
  for (var rb = 0u; rb < rng.rowCount; rb += ${u(RB)}) {
    ${accNames.map((a) => `var ${a} = 0.0;`).join('\n    ')}
    if (live) {
    ${mainLoop}
    }
    ${reduce}
    if (live && s == 0u) {
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
    config: { ...cfg },
    features: [...(needF16 ? ['shader-f16'] : []), ...(sub ? ['subgroups'] : [])],
  };
}
