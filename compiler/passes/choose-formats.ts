import type { Graph } from '../ir/graph.js';
import type { FusedKernel, MatmulKernel } from '../ir/kernel.js';
import type { TypedGraph } from './infer-shapes.js';
import { LscError, pointer } from '../errors.js';
import { HEAD_FORMAT, type WeightFormat } from '../ir/weight-formats.js';
import { gatheredDecls, headDecls } from '../ir/weights-spec.js';

/**
 * Each weight instance's format on the GPU (PlanWeight.gpuDtype): norm vectors f32; a matrix its
 * declaration's `format`, else the LM head's HEAD_FORMAT, else `dtypes.weights`; a table the
 * embedding gathers from f16 (the gather reads f16 rows), and a weight tied to another its
 * target's (they share one buffer). A `format` the weight cannot have is a one-line error.
 */
export function chooseFormats(graph: Graph, g: TypedGraph, file?: string): Map<string, WeightFormat> {
  const gathered = new Set(gatheredDecls(graph));
  const heads = new Set(headDecls(graph));
  const out = new Map<string, WeightFormat>();
  const declFormat = (decl: string): WeightFormat => {
    const d = graph.weights[decl];
    const at = { file, pointer: pointer('weights', decl, 'format') };
    const shape = g.weightShapes.get([...g.weights.values()].find((w) => w.decl === decl)!.id)!;
    if (shape.length === 1) {
      if (d.format !== undefined) throw new LscError(`weight '${decl}' is a vector (kept f32); only matrices take a format`, at, "remove its 'format'");
      return 'f32';
    }
    if (d.tiedTo !== undefined && d.format !== undefined) {
      throw new LscError(`weight '${decl}' is tied to '${d.tiedTo}' and shares its buffer, so it cannot have a format of its own`, at, `remove its 'format', or set it on '${d.tiedTo}'`);
    }
    if (gathered.has(decl)) {
      if (d.format !== undefined && d.format !== 'f16') {
        throw new LscError(`weight '${decl}' is the table the embedding gathers f16 rows from; it cannot be ${d.format}`, at, "use 'f16' or remove its 'format'");
      }
      return 'f16';
    }
    return d.format ?? (heads.has(decl) ? HEAD_FORMAT[graph.dtypes.weights] : graph.dtypes.weights);
  };
  const byDecl = new Map<string, WeightFormat>();
  for (const w of g.weights.values()) {
    if (w.tiedTo) continue;
    if (!byDecl.has(w.decl)) byDecl.set(w.decl, declFormat(w.decl));
    out.set(w.id, byDecl.get(w.decl)!);
  }
  for (const w of g.weights.values()) {
    if (!w.tiedTo) continue;
    declFormat(w.decl); // its own errors
    out.set(w.id, out.get(w.tiedTo)!);
  }
  return out;
}

/**
 * The weights one matmul segment reads together (gate and up of silu·mul, zipped row by row)
 * are read by one weight reader, so they must share a format.
 */
export function checkPairedFormats(kernels: FusedKernel[], formats: Map<string, WeightFormat>, g: TypedGraph, file?: string): void {
  for (const k of kernels) {
    if (k.family !== 'matmul') continue;
    for (const s of (k as MatmulKernel).segments) {
      const f = s.weights.map((w) => formats.get(w));
      const i = f.findIndex((x) => x !== f[0]);
      if (i < 0) continue;
      const [a, b] = [g.weights.get(s.weights[0])!.decl, g.weights.get(s.weights[i])!.decl];
      throw new LscError(`weights '${a}' (${f[0]}) and '${b}' (${f[i]}) are read together by one matmul (silu(gate)·up) and must have the same format`,
        { file, pointer: pointer('weights', b, 'format') }, `give '${a}' and '${b}' the same format`);
    }
  }
}
