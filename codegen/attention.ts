import type { AttentionKernel, KernelSource } from '../compiler/ir/kernel.js';
import { NEG_BIG, RANGE_STRUCT, bindingDecls, bindingsWgsl, plus, u, type BindingSpec, SEQ_DECL, SEQ_ROWS_MAX, seqRowsStruct } from './kernel.js';

/** Storage bindings by role (codegen/families/attention.ts binds buffers to them). */
export const ATTENTION_BINDING = { q: 'q', kv: 'kv', out: 'out' } as const;

/** The bindings of every variant, in order: the element types differ (scalars or vec4). */
function attentionBindings(elem: string, kvElem: string): BindingSpec[] {
  return [
    { name: 'rng', type: 'range', decl: 'var<uniform> $: Range' },
    { name: 'seq', type: 'seq', decl: SEQ_DECL },
    { name: ATTENTION_BINDING.q, type: 'read', decl: `var<storage, read> $: array<${elem}>` },
    { name: ATTENTION_BINDING.kv, type: 'read', decl: `var<storage, read> $: array<${kvElem}>` },
    { name: ATTENTION_BINDING.out, type: 'rw', decl: `var<storage, read_write> $: array<${elem}>` },
  ];
}

/**
 * Causal attention of each row's query over the layer's KV cache (positions 0..pos), one
 * workgroup per (head, row). Positions are visited in blocks with an online softmax, so any
 * context length fits in workgroup memory; a row's arithmetic depends only on its position, so
 * the k+1 rows of verify give exactly what k+1 decode steps give. A row's position and KV slot
 * come from the SeqRows uniform (codegen/kernel.ts), so rows of several sequences share a dispatch.
 */
export interface AttentionConfig {
  /** Threads per workgroup (positions per block in the blocked variant). */
  block: number;
  /**
   * 1: each thread keeps its own online softmax over positions t, t+block, ... and the threads
   * combine once at the end (one barrier) — what CPU drivers such as lavapipe run fastest;
   * block 1 is fully serial. Otherwise the blocked variant synchronises every block of positions.
   */
  lanes?: number;
  /** Lanes variant: rows of a head handled by one workgroup, sharing every K/V load (default 1). */
  rows?: number;
}


export interface AttentionContext {
  ctx: number;
  kvF16: boolean;
  /** Rows the SeqRows uniform describes (the plan's rows.max; default SEQ_ROWS_MAX). */
  seqRows?: number;
}

export function emitAttention(k: AttentionKernel, c: AttentionContext, cfg: AttentionConfig): KernelSource {
  if (cfg.lanes === 1 || cfg.block === 1) return emitLanesAttention(k, c, cfg.block, cfg.rows ?? 1);
  const { heads: H, kvHeads: HKV, headDim: HD } = k;
  const B = cfg.block;
  const KVD = HKV * HD;
  const group = H / HKV;
  const t = c.kvF16 ? 'f16' : 'f32';
  const dimsPerThread = Math.ceil(HD / B);
  const decls = attentionBindings('f32', t);
  const accs = Array.from({ length: dimsPerThread }, (_, i) => i);
  const wgsl = `${c.kvF16 ? 'enable f16;\n' : ''}${RANGE_STRUCT}
${seqRowsStruct(c.seqRows ?? SEQ_ROWS_MAX)}
${bindingsWgsl(decls)}

var<workgroup> qs: array<f32, ${HD}>;
var<workgroup> p: array<f32, ${B}>;
var<workgroup> red: array<f32, ${B}>;

@compute @workgroup_size(${B})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let r = wid.y;
  if (r >= rng.rowCount) { return; }
  let row = rng.rowStart + r;
  let n = rng.posBase + row + seq.r[row].x + 1u;          // causal: positions 0..pos
  let kvh = h / ${u(group)};
  let kbase = seq.r[row].y * ${u(2 * c.ctx * KVD)} + kvh * ${u(HD)};   // the row's KV slot
  let vbase = kbase + ${u(c.ctx * KVD)};
  for (var d = t; d < ${u(HD)}; d += ${u(B)}) { qs[d] = q[row * ${u(H * HD)} + h * ${u(HD)} + d]; }
  workgroupBarrier();
  var m = ${NEG_BIG};
  var l = 0.0;
  ${accs.map((i) => `var acc${i} = 0.0;`).join('\n  ')}
  for (var b0 = 0u; b0 < n; b0 += ${u(B)}) {
    let tp = b0 + t;
    var sc = ${NEG_BIG};
    if (tp < n) {
      var dotv = 0.0;
      for (var d = 0u; d < ${u(HD)}; d++) { dotv += qs[d] * f32(kv[tp * ${u(KVD)} + kbase + d]); }
      sc = dotv * ${1 / Math.sqrt(HD)};
    }
    red[t] = sc;
    workgroupBarrier();
    for (var st = ${u(B / 2)}; st > 0u; st = st >> 1u) {
      if (t < st) { red[t] = max(red[t], red[t + st]); }
      workgroupBarrier();
    }
    let mn = max(m, red[0]);
    workgroupBarrier();
    let pe = select(0.0, exp(sc - mn), tp < n);
    p[t] = pe;
    red[t] = pe;
    workgroupBarrier();
    for (var st = ${u(B / 2)}; st > 0u; st = st >> 1u) {
      if (t < st) { red[t] = red[t] + red[t + st]; }
      workgroupBarrier();
    }
    let corr = exp(m - mn);
    l = l * corr + red[0];
    let cnt = min(${u(B)}, n - b0);
    ${accs.map((i) => `{
      let d = ${plus('t', i * B)};
      if (d < ${u(HD)}) {
        var a = acc${i} * corr;
        for (var j = 0u; j < cnt; j++) { a += p[j] * f32(kv[vbase + (b0 + j) * ${u(KVD)} + d]); }
        acc${i} = a;
      }
    }`).join('\n    ')}
    m = mn;
    workgroupBarrier();
  }
  ${accs.map((i) => `if (${plus('t', i * B)} < ${u(HD)}) { out[row * ${u(H * HD)} + h * ${u(HD)} + ${plus('t', i * B)}] = acc${i} / l; }`).join('\n  ')}
}
`;
  return {
    family: 'attention', name: 'attention', wgsl, workgroupSize: B,
    bindings: bindingDecls(decls),
    params: [], grid: [H, { perRow: 1 }, 1], config: { block: B }, features: c.kvF16 ? ['shader-f16'] : [],
  };
}


/**
 * Each of B threads runs an online softmax over its positions (t, t+B, ...) with q and its
 * partial output in registers, for R rows of one head at once (each K/V row is loaded once for
 * all of them); one barrier, then the partial (max, sum, output) triples of the threads are
 * combined in a fixed order. A row's arithmetic is the same whichever rows run with it.
 */
function emitLanesAttention(k: AttentionKernel, c: AttentionContext, B: number, R: number): KernelSource {
  const { heads: H, kvHeads: HKV, headDim: HD } = k;
  if (HD % 4 !== 0) throw new Error(`internal: attention needs headDim % 4 == 0, got ${HD}`);
  const D4 = HD / 4;
  const KVD4 = (HKV * HD) / 4;
  const t = c.kvF16 ? 'f16' : 'f32';
  const decls = attentionBindings('vec4<f32>', `vec4<${t}>`);
  const rowOf = (j: number): string => plus('rng.rowStart + r0', j);
  const outAt = (j: number): string => `(${rowOf(j)}) * ${u((H * HD) / 4)} + h * ${u(D4)}`;
  const each = (f: (j: number) => string): string => Array.from({ length: R }, (_, j) => f(j)).join('\n  ');
  const live = (j: number): string => `${plus('r0', j)} < rng.rowCount`;
  const combine = (j: number): string => B === 1
    ? `if (${live(j)}) { for (var d = 0u; d < ${u(D4)}; d++) { out[${outAt(j)} + d] = acc${j}[d] / l${j}; } }`
    : `{
    workgroupBarrier();
    pm[t] = m${j};
    pl[t] = l${j};
    for (var d = 0u; d < ${u(D4)}; d++) { pacc[t * ${u(D4)} + d] = acc${j}[d]; }
    workgroupBarrier();
    if (${live(j)}) {
      var mx = pm[0];
      for (var i = 1u; i < ${u(B)}; i++) { mx = max(mx, pm[i]); }
      var tot = 0.0;
      for (var i = 0u; i < ${u(B)}; i++) { tot += pl[i] * exp(pm[i] - mx); }
      for (var d = t; d < ${u(D4)}; d += ${u(B)}) {
        var o = vec4<f32>();
        for (var i = 0u; i < ${u(B)}; i++) { o += pacc[i * ${u(D4)} + d] * exp(pm[i] - mx); }
        out[${outAt(j)} + d] = o / tot;
      }
    }
  }`;
  const update = (j: number): string => `if (p < n${j}) {
      var s = 0.0;
      for (var d = 0u; d < ${u(D4)}; d++) { s += dot(q${j}[d], kr[d]); }
      s = s * ${1 / Math.sqrt(HD)};
      let mn = max(m${j}, s);
      let corr = exp(m${j} - mn);
      let e = exp(s - mn);
      l${j} = l${j} * corr + e;
      for (var d = 0u; d < ${u(D4)}; d++) { acc${j}[d] = acc${j}[d] * corr + e * vr[d]; }
      m${j} = mn;
    }`;
  const loadKv = (kb: string): string => `for (var d = 0u; d < ${u(D4)}; d++) {
      kr[d] = vec4<f32>(kv[${kb} + p * ${u(KVD4)} + d]);
      vr[d] = vec4<f32>(kv[${kb} + ${u(c.ctx * KVD4)} + p * ${u(KVD4)} + d]);
    }`;
  const wgsl = `${c.kvF16 ? 'enable f16;\n' : ''}${RANGE_STRUCT}
${seqRowsStruct(c.seqRows ?? SEQ_ROWS_MAX)}
${bindingsWgsl(decls)}
${B > 1 ? `var<workgroup> pm: array<f32, ${B}>;\nvar<workgroup> pl: array<f32, ${B}>;\nvar<workgroup> pacc: array<vec4<f32>, ${B * D4}>;\n` : ''}
@compute @workgroup_size(${B})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let h = wid.x;
  let r0 = ${R > 1 ? `wid.y * ${u(R)}` : 'wid.y'};
  if (r0 >= rng.rowCount) { return; }
  let hbase = (h / ${u(H / HKV)}) * ${u(D4)};
  // causal: row j attends to positions 0..pos_j of its KV slot (rows past the end attend to nothing)
  ${each((j) => `let sr${j} = seq.r[min(${rowOf(j)}, ${u((c.seqRows ?? SEQ_ROWS_MAX) - 1)})];
  let n${j} = select(0u, rng.posBase + ${rowOf(j)} + sr${j}.x + 1u, ${live(j)});
  let kb${j} = select(0u, sr${j}.y, ${live(j)}) * ${u(2 * c.ctx * KVD4)} + hbase;
  var q${j}: array<vec4<f32>, ${D4}>;
  var acc${j}: array<vec4<f32>, ${D4}>;
  var m${j} = ${NEG_BIG};
  var l${j} = 0.0;
  if (${live(j)}) { for (var d = 0u; d < ${u(D4)}; d++) { q${j}[d] = q[${outAt(j)} + d]; } }`)}
  let nmax = ${Array.from({ length: R }, (_, j) => `n${j}`).reduce((a, b) => `max(${a}, ${b})`)};
  var kr: array<vec4<f32>, ${D4}>;
  var vr: array<vec4<f32>, ${D4}>;
  ${R > 1 ? `// rows of one slot share each K/V load; rows of different sequences each read their own
  // (a row's arithmetic is the same either way)
  if (${Array.from({ length: R - 1 }, (_, j) => `kb${j + 1} == kb0`).join(' && ')}) {` : '{'}
  for (var p = t; p < nmax; p += ${u(B)}) {
    ${loadKv('kb0')}
    ${each(update)}
  }
  }${R > 1 ? ` else {
  ${each((j) => `for (var p = t; p < n${j}; p += ${u(B)}) {
    ${loadKv(`kb${j}`)}
    ${update(j)}
  }`)}
  }` : ''}
  ${each(combine)}
}
`;
  return {
    family: 'attention', name: B === 1 ? 'attention_serial' : 'attention_lanes', wgsl, workgroupSize: B,
    bindings: bindingDecls(decls),
    params: [], grid: [H, R === 1 ? { perRow: 1 } : { perRow: 1, rowsPerGroup: R }, 1],
    config: { block: B, ...(B === 1 ? {} : { lanes: 1 }), ...(R === 1 ? {} : { rows: R }) },
    features: c.kvF16 ? ['shader-f16'] : [],
  };
}
