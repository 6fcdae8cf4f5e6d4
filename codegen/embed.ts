import type { EmbedKernel, KernelSource } from '../compiler/ir/kernel.js';
import { RANGE_STRUCT, UNPACK4, bindingDecls, bindingsWgsl, paramsStruct, u, type BindingSpec } from './kernel.js';

/** Storage bindings by role (codegen/families/embed.ts binds buffers to them). */
export const EMBED_BINDING = { tokens: 'tokens', table: 'table', out: 'x' } as const;

function embedBindings(chunked: boolean): BindingSpec[] {
  return [
    { name: 'rng', type: 'range', decl: 'var<uniform> $: Range' },
    ...(chunked ? [{ name: 'prm', type: 'params', decl: 'var<uniform> $: Params' } as const] : []),
    { name: EMBED_BINDING.tokens, type: 'read', decl: 'var<storage, read> $: array<u32>' },
    { name: EMBED_BINDING.table, type: 'read', decl: 'var<storage, read> $: array<vec2<u32>>' },
    { name: EMBED_BINDING.out, type: 'rw', decl: 'var<storage, read_write> $: array<vec4<f32>>' },
  ];
}

/** Token embedding lookup into the trunk rows. The table may be split into vocab slices (one dispatch each). */
export function emitEmbed(k: EmbedKernel, chunked: boolean): KernelSource {
  const D4 = k.d / 4;
  const WG = 64;
  const decls = embedBindings(chunked);
  const wgsl = `${RANGE_STRUCT}
${paramsStruct(chunked ? ['vocabBase', 'vocabCount', 'pad0', 'pad1'] : [])}
${bindingsWgsl(decls)}
${UNPACK4}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let r = wid.y;
  let c = gid.x;
  if (r >= rng.rowCount || c >= ${u(D4)}) { return; }
  let row = rng.rowStart + r;
  let tok = tokens[row]${chunked ? ' - prm.vocabBase' : ''};
  if (tok >= ${chunked ? 'prm.vocabCount' : u(k.vocab)}) { return; }
  x[row * ${u(D4)} + c] = unpack4(table[tok * ${u(D4)} + c]);
}
`;
  return {
    family: 'embed', name: 'embed', wgsl, workgroupSize: WG,
    bindings: bindingDecls(decls),
    params: chunked ? ['vocabBase', 'vocabCount', 'pad0', 'pad1'] : [],
    grid: [Math.ceil(D4 / WG), { perRow: 1 }, 1], config: {}, features: [],
  };
}
