import type { FusedKernel } from '../compiler/passes/fuse.js';
import { NEG_BIG, RANGE_STRUCT, bindingsWgsl, paramsStruct, u, type KernelSource } from './kernel.js';

/**
 * Greedy pick per row, on the GPU so a decode or draft step can feed the next one without a
 * readback. Ties go to the lowest index (as torch.argmax). Writes tokens[outBase + row].
 */
export interface ArgmaxConfig {
  /** Threads per row (power of two): many on GPUs, few on CPU drivers where barriers are costly. */
  threads: number;
}

export function emitArgmax(k: Extract<FusedKernel, { family: 'argmax' }>, cfg: ArgmaxConfig = { threads: 256 }): KernelSource {
  const WG = cfg.threads;
  const decls = [
    { name: 'rng', decl: 'var<uniform> $: Range' },
    { name: 'prm', decl: 'var<uniform> $: Params' },
    { name: 'logits', decl: 'var<storage, read> $: array<f32>' },
    { name: 'tokens', decl: 'var<storage, read_write> $: array<u32>' },
  ];
  const wgsl = `${RANGE_STRUCT}
${paramsStruct(['outBase', 'pad0', 'pad1', 'pad2'])}
${bindingsWgsl(decls)}

var<workgroup> bv: array<f32, ${WG}>;
var<workgroup> bi: array<u32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.x;
  if (r >= rng.rowCount) { return; }
  let row = rng.rowStart + r;
  var best = ${NEG_BIG};
  var idx = 0xffffffffu;
  for (var i = t; i < ${u(k.n)}; i += ${u(WG)}) {
    let v = logits[row * ${u(k.n)} + i];
    if (v > best || idx == 0xffffffffu) { best = v; idx = i; }
  }
  bv[t] = best;
  bi[t] = idx;
  workgroupBarrier();
  for (var st = ${u(Math.floor(WG / 2))}; st > 0u; st = st >> 1u) {
    if (t < st) {
      let ov = bv[t + st];
      let oi = bi[t + st];
      // 0xffffffff marks a thread that saw no element
      let take = oi != 0xffffffffu && (bi[t] == 0xffffffffu || ov > bv[t] || (ov == bv[t] && oi < bi[t]));
      if (take) { bv[t] = ov; bi[t] = oi; }
    }
    workgroupBarrier();
  }
  if (t == 0u) { tokens[prm.outBase + row] = bi[0]; }
}
`;
  return {
    family: 'argmax', name: 'argmax', wgsl, workgroupSize: WG,
    bindings: decls.map((d) => ({ name: d.name, type: d.name === 'rng' ? 'range' : d.name === 'prm' ? 'params' : d.name === 'tokens' ? 'rw' : 'read' })),
    params: ['outBase', 'pad0', 'pad1', 'pad2'], grid: [{ perRow: 1 }, 1, 1], config: { ...cfg }, features: [],
  };
}
