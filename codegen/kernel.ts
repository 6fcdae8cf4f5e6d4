/**
 * What every kernel emitter returns: WGSL plus the binding layout and launch shape. Bindings are
 * listed in order; binding 0 of every kernel is the `Range` uniform (dynamic offset) that tells
 * which activation rows a dispatch works on, so one pipeline serves decode, draft and verify.
 */
export type BindingType = 'range' | 'params' | 'read' | 'rw';

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

export const RANGE_STRUCT = `struct Range { rowStart: u32, rowCount: u32, posBase: u32, pad: u32 }`;

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
