import type { BindingDecl, KernelSource } from '../compiler/ir/kernel.js';

/**
 * WGSL helpers every kernel emitter shares: the kernel header, the `Range` uniform, binding and
 * Params declarations. The kernel IR and source types live in compiler/ir/kernel.ts.
 */

/**
 * The comment an emitted kernel file starts with: the graph nodes it computes (at its first use:
 * layers and entry points share kernels of the same shape) and the configuration it was made with.
 */
export function kernelHeader(src: Omit<KernelSource, 'wgsl'>, nodes: readonly string[]): string {
  const config = Object.entries(src.config).map(([k, v]) => `${k} ${v}`).join(', ');
  return `// ${src.name}: lsc ${src.family} kernel
// graph nodes (first use): ${nodes.join(', ') || 'none'}
// config: ${config || 'none'}; workgroup ${src.workgroupSize}${src.features.length ? `; needs ${src.features.join(', ')}` : ''}
// bindings: ${src.bindings.map((b) => `${b.name} (${b.type})`).join(', ')}
`;
}

/**
 * The row range of a dispatch: a slot of RANGE_SLOT_BYTES (the largest minUniformBufferOffsetAlignment)
 * per encoded stage, holding these u32 fields in order; kernels declare them as `struct Range`
 * (below), the runtime writes them (runtime/range-table.ts), and so does the GPU
 * acceptance kernel (codegen/accept.ts).
 */
export const RANGE_SLOT_BYTES = 256;
export const RANGE_SLOT_WORDS = RANGE_SLOT_BYTES / 4;
export const RANGE_FIELDS = ['rowStart', 'rowCount', 'posBase', 'pad'] as const;
/** Bytes of the fields a kernel binds. */
export const RANGE_BYTES = RANGE_FIELDS.length * 4;

export const RANGE_STRUCT = `struct Range { ${RANGE_FIELDS.map((f) => `${f}: u32`).join(', ')} }`;

/** A binding as an emitter declares it: name and type (what the plan and runtime see) and its WGSL declaration (`$` for the name). */
export interface BindingSpec extends BindingDecl {
  decl: string;
}

/** The plan's view of declared bindings (names and types, in order). */
export const bindingDecls = (specs: readonly BindingSpec[]): BindingDecl[] => specs.map(({ name, type }) => ({ name, type }));

/**
 * Which sequence each activation row belongs to, for the kernels that read a row's position
 * (RoPE, the KV-cache write, attention): a uniform of one vec4<u32> per row, indexed by the row,
 * holding (position offset, KV slot, -, -). A row sits at position posBase + row + offset (u32
 * arithmetic, so an offset may be "negative"), and its K/V live in slot `slot` of the layer's KV
 * buffer. All zeros (the runtime's default) is the single-sequence layout: slot 0, posBase + row.
 * The batch engine (runtime/batch/) writes it to put rows of many sequences in one dispatch.
 */
export const SEQ_ROW_BYTES = 16;
/** Largest row count a SeqRows uniform can describe (64 KiB, WebGPU's minimum uniform binding limit). */
export const SEQ_ROWS_MAX = 4096;
export const seqRowsStruct = (rows: number): string => `struct SeqRows { r: array<vec4<u32>, ${rows}> }`;
export const SEQ_DECL = 'var<uniform> $: SeqRows';

/** Header + bindings in order; binding 0 is always the range uniform. */
export function bindingsWgsl(bindings: { name: string; decl: string }[]): string {
  return bindings
    .map((b, i) => `@group(0) @binding(${i}) ${b.decl.replace('$', b.name)};`)
    .join('\n');
}

export function paramsStruct(fields: string[]): string {
  return fields.length ? `struct Params { ${fields.map((f) => `${f}: u32`).join(', ')} }` : '';
}

/** f16 weights are read as packed u32 pairs so kernels need no f16 arithmetic. */
export const UNPACK4 = `fn unpack4(p: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}`;

/** WGSL has no infinity literal; scores below this are treated as masked. */
export const NEG_BIG = '-3.0e38';

export const u = (n: number): string => `${n}u`;

/** `e + n` as WGSL, without a `+ 0u`. */
export const plus = (e: string, n: number): string => (n ? `${e} + ${u(n)}` : e);
