import type { KernelBase, KernelSource } from '../../compiler/ir/kernel.js';
import { RANGE_STRUCT, bindingDecls, bindingsWgsl, u, type BindingSpec } from '../kernel.js';
import { requireMultipleOf4, type KernelFamily } from '../family.js';

/**
 * A standalone RMSNorm, y = x / sqrt(mean(x²) + eps) · g, for an rms_norm whose output feeds
 * something other than matmuls (an rms_norm read only by matmuls is their prologue instead).
 * One workgroup per row: each thread sums the squares of a strided share of the row's vec4s,
 * a tree in workgroup memory adds the shares in a fixed order, then every thread scales its share.
 */
export interface RmsNormKernel extends KernelBase {
  family: 'rms_norm';
  x: string;
  /** The norm weight (f32 vector). */
  weight: string;
  out: string;
  d: number;
  eps: number;
}

const BINDING = { x: 'x', g: 'g', out: 'y' } as const;
const BINDINGS: BindingSpec[] = [
  { name: 'rng', type: 'range', decl: 'var<uniform> $: Range' },
  { name: BINDING.x, type: 'read', decl: 'var<storage, read> $: array<vec4<f32>>' },
  { name: BINDING.g, type: 'read', decl: 'var<storage, read> $: array<vec4<f32>>' },
  { name: BINDING.out, type: 'rw', decl: 'var<storage, read_write> $: array<vec4<f32>>' },
];
const WG = 64;

export function emitRmsNorm(k: RmsNormKernel): KernelSource {
  const D4 = k.d / 4;
  const wgsl = `${RANGE_STRUCT}
${bindingsWgsl(BINDINGS)}

var<workgroup> part: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  if (r >= rng.rowCount) { return; }
  let base = (rng.rowStart + r) * ${u(D4)};
  var ss = 0.0;
  for (var i = t; i < ${u(D4)}; i += ${u(WG)}) {
    let v = ${BINDING.x}[base + i];
    ss += dot(v, v);
  }
  part[t] = ss;
  workgroupBarrier();
  for (var st = ${u(WG / 2)}; st > 0u; st = st >> 1u) {
    if (t < st) { part[t] = part[t] + part[t + st]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(part[0] / ${k.d}.0 + ${k.eps});
  for (var i = t; i < ${u(D4)}; i += ${u(WG)}) {
    ${BINDING.out}[base + i] = ${BINDING.x}[base + i] * inv * ${BINDING.g}[i];
  }
}
`;
  return {
    family: 'rms_norm', name: 'rms_norm', wgsl, workgroupSize: WG, bindings: bindingDecls(BINDINGS),
    params: [], grid: [{ perRow: 1 }, 1, 1], config: {}, features: [],
  };
}

export const rmsNormFamily: KernelFamily<RmsNormKernel> = {
  name: 'rms_norm',
  ops: ['rms_norm'],
  standalone: ['rms_norm'],
  fromNode(n, g) {
    const x = g.valueInputs(n)[0]!;
    const eps = n.attrs.eps;
    return {
      family: 'rms_norm', nodes: [n.id], x, weight: (n.inputs[1] as { id: string }).id, out: n.id, d: g.width(x),
      eps: typeof eps === 'number' ? eps : 1e-5,
    };
  },
  check(c) {
    const d = c.inputShape(0)[1];
    if (typeof d === 'number') requireMultipleOf4(c, `rms_norm '${c.node.id}': width`, d, c.node.pointer, 'normalise a width that is a multiple of 4');
  },
  reads: (k) => [k.x],
  writes: (k) => [k.out],
  dispatchCount: () => 1,
  schedule: (k, env) => [{
    source: `rms_norm:${k.d}:${k.eps}`, config: {}, emit: () => emitRmsNorm(k),
    buffers: new Map([[BINDING.x, env.buffer(k.x)], [BINDING.g, env.weight(k.weight).chunks[0].buffer], [BINDING.out, env.buffer(k.out)]]),
    params: [], nodes: k.nodes,
  }],
};
