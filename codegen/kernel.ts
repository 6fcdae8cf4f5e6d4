/**
 * What every kernel emitter returns: WGSL plus the binding layout and launch shape. Bindings are
 * listed in order; binding 0 of every kernel is the `Range` uniform (one slot of the range table,
 * bound at a static offset) that tells which activation rows a dispatch works on, so one pipeline
 * serves decode, draft and verify. A `ranges` binding is the whole range table as storage: the
 * acceptance kernel (accept.ts) writes the positions of the stages encoded after it.
 */
export type BindingType = 'range' | 'params' | 'read' | 'rw' | 'ranges';

export interface BindingDecl {
  name: string;
  type: BindingType;
}

/** Launch size per dimension: a constant, or a count that grows with the dispatch's rows. */
export type GridDim = number | { perRow: number; rowsPerGroup?: number };

/** Workgroups along a grid dimension for `rows` rows: perRow per group of rowsPerGroup (default 1) rows. */
export function gridSize(g: GridDim, rows: number): number {
  return typeof g === 'number' ? g : g.perRow * Math.ceil(rows / (g.rowsPerGroup ?? 1));
}

export interface KernelSource {
  family: string;
  /** Human-readable name, e.g. "matmul_norm_qkv_rope". */
  name: string;
  wgsl: string;
  workgroupSize: number;
  bindings: BindingDecl[];
  /** Fields of the static `Params` uniform, in order (u32 each). */
  params: string[];
  grid: [GridDim, GridDim, GridDim];
  /** Tuning choices this source was generated with. */
  config: Record<string, number>;
  /** WebGPU features the shader needs (shader-f16, subgroups). */
  features: string[];
}

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
