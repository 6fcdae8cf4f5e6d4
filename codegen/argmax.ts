import type { ArgmaxKernel, KernelSource } from '../compiler/ir/kernel.js';
import { RANGE_STRUCT, bindingDecls, bindingsWgsl, paramsStruct, u, type BindingSpec } from './kernel.js';

/** Storage bindings by role (codegen/families/argmax.ts binds buffers to them). */
export const ARGMAX_BINDING = { logits: 'logits', tokens: 'tokens', gate: 'gate' } as const;

/** Where the draft entry's argmax finds the threshold and writes its pick's probability (codegen/draft-gate.ts). */
export interface ArgmaxGateWords {
  threshold: number;
  probs: number;
}

const ARGMAX_BINDINGS: BindingSpec[] = [
  { name: 'rng', type: 'range', decl: 'var<uniform> $: Range' },
  { name: 'prm', type: 'params', decl: 'var<uniform> $: Params' },
  // read as bits: see orderKey
  { name: ARGMAX_BINDING.logits, type: 'read', decl: 'var<storage, read> $: array<u32>' },
  { name: ARGMAX_BINDING.tokens, type: 'rw', decl: 'var<storage, read_write> $: array<u32>' },
];

/**
 * Greedy pick per row, on the GPU so a decode or draft step can feed the next one without a
 * readback. Writes tokens[outBase + row].
 *
 * Order (torch.argmax's): NaN counts as larger than every number, +inf included; -0 equals +0;
 * among equal maxima (several NaNs included) the lowest index wins. So a NaN logit always wins,
 * deterministically, wherever it sits in the row and whatever the thread count. The comparison
 * is on integer keys made from the f32 bits (WGSL lets a compiler assume floats are never NaN,
 * so a float comparison cannot be trusted with one).
 */
export interface ArgmaxConfig {
  /** Threads per row (power of two): many on GPUs, few on CPU drivers where barriers are costly. */
  threads: number;
}

/**
 * With `gate` (the plan's argmax), a dispatch whose param `prob` is set (a draft entry's) also
 * writes the probability of its pick, p = 1 / Σ exp(l_i − l_max), to gate[probs + row], when the
 * threshold gate[threshold] is not 0 (codegen/draft-gate.ts); the pick is computed exactly as
 * without. Each thread keeps a running max and sum of exponentials, combined in the same tree as
 * the pick, so the probability takes no extra barrier.
 */
/** The pick's order: f32 bits as u32 keys (both argmax variants). */
const ORDER_KEY_WGSL = `// f32 bits -> u32 key in the same order as the numbers: NaN above +inf, -0 = +0; every key > 0
fn orderKey(b: u32) -> u32 {
  if ((b & 0x7fffffffu) > 0x7f800000u) { return 0xffffffffu; }
  if (b == 0x80000000u) { return 0x80000000u; }
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}`;

export function emitArgmax(k: ArgmaxKernel, cfg: ArgmaxConfig = { threads: 256 }, gate?: ArgmaxGateWords): KernelSource {
  const WG = cfg.threads;
  const decls = gate ? [...ARGMAX_BINDINGS, { name: ARGMAX_BINDING.gate, type: 'rw', decl: 'var<storage, read_write> $: array<u32>' } as const] : ARGMAX_BINDINGS;
  const params = gate ? ['outBase', 'prob', 'pad1', 'pad2'] : ['outBase', 'pad0', 'pad1', 'pad2'];
  const wgsl = gate ? emitWithProbability(k, WG, decls, gate, params) : `${RANGE_STRUCT}
${paramsStruct(params)}
${bindingsWgsl(decls)}

var<workgroup> bk: array<u32, ${WG}>;
var<workgroup> bi: array<u32, ${WG}>;

${ORDER_KEY_WGSL}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  if (r >= rng.rowCount) { return; }
  let row = rng.rowStart + r;
  // key 0 with index 0xffffffff: a thread that saw no element (loses to any element)
  var best = 0u;
  var idx = 0xffffffffu;
  for (var i = t; i < ${u(k.n)}; i += ${u(WG)}) {
    let key = orderKey(logits[row * ${u(k.n)} + i]);
    if (key > best) { best = key; idx = i; }
  }
  bk[t] = best;
  bi[t] = idx;
  workgroupBarrier();
  for (var st = ${u(Math.floor(WG / 2))}; st > 0u; st = st >> 1u) {
    if (t < st) {
      let ok = bk[t + st];
      let oi = bi[t + st];
      if (ok > bk[t] || (ok == bk[t] && oi < bi[t])) { bk[t] = ok; bi[t] = oi; }
    }
    workgroupBarrier();
  }
  if (t == 0u) { tokens[prm.outBase + row] = bi[0]; }
}
`;
  return {
    family: 'argmax', name: 'argmax', wgsl, workgroupSize: WG,
    bindings: bindingDecls(decls),
    params, grid: [{ perRow: 1 }, 1, 1], config: { ...cfg }, features: [],
  };
}

function emitWithProbability(k: ArgmaxKernel, WG: number, decls: BindingSpec[], gate: ArgmaxGateWords, params: string[]): string {
  return `${RANGE_STRUCT}
${paramsStruct(params)}
${bindingsWgsl(decls)}

var<workgroup> bk: array<u32, ${WG}>;
var<workgroup> bi: array<u32, ${WG}>;
var<workgroup> bm: array<f32, ${WG}>;
var<workgroup> bs: array<f32, ${WG}>;

${ORDER_KEY_WGSL}

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  if (r >= rng.rowCount) { return; }
  let row = rng.rowStart + r;
  // the probability only for draft steps, while a threshold is set (codegen/draft-gate.ts)
  let want = prm.prob != 0u && ${ARGMAX_BINDING.gate}[${u(gate.threshold)}] != 0u;
  // key 0 with index 0xffffffff: a thread that saw no element (loses to any element)
  var best = 0u;
  var idx = 0xffffffffu;
  // running max and sum of exp(l - max), from the lowest finite f32 (a thread that saw no element: sum 0)
  var m = bitcast<f32>(0xff7fffffu);
  var s = 0.0;
  for (var i = t; i < ${u(k.n)}; i += ${u(WG)}) {
    let b = logits[row * ${u(k.n)} + i];
    let key = orderKey(b);
    if (key > best) { best = key; idx = i; }
    if (want) {
      let x = bitcast<f32>(b);
      if (x > m) { s = s * exp(m - x) + 1.0; m = x; } else { s += exp(x - m); }
    }
  }
  bk[t] = best;
  bi[t] = idx;
  bm[t] = m;
  bs[t] = s;
  workgroupBarrier();
  for (var st = ${u(Math.floor(WG / 2))}; st > 0u; st = st >> 1u) {
    if (t < st) {
      let ok = bk[t + st];
      let oi = bi[t + st];
      if (ok > bk[t] || (ok == bk[t] && oi < bi[t])) { bk[t] = ok; bi[t] = oi; }
      if (want) {
        let om = bm[t + st];
        let mm = max(bm[t], om);
        bs[t] = bs[t] * exp(bm[t] - mm) + bs[t + st] * exp(om - mm);
        bm[t] = mm;
      }
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    tokens[prm.outBase + row] = bi[0];
    if (want) { ${ARGMAX_BINDING.gate}[${u(gate.probs)} + row] = bitcast<u32>(1.0 / bs[0]); }
  }
}
`;
}
