import type { Graph } from '../compiler/ir/graph.js';

/**
 * The KV cache's dtype on an adapter: f16 needs the `shader-f16` feature (many browsers and GPUs,
 * Chromium's SwiftShader among them, have none); without it the cache is f32. Weights need no
 * feature either way: kernels read f16 weights as packed u32 pairs (unpack2x16float) and
 * compute in f32.
 */
export function kvDtypeFor(features: ReadonlySet<string>): 'f16' | 'f32' {
  return features.has('shader-f16') ? 'f16' : 'f32';
}

/** The graph with an f32 KV cache where the adapter cannot store f16 (unchanged otherwise). */
export function graphForFeatures(graph: Graph, features: ReadonlySet<string>): Graph {
  if (graph.dtypes.kv === 'f32' || kvDtypeFor(features) === 'f16') return graph;
  return { ...graph, dtypes: { ...graph.dtypes, kv: 'f32' } };
}
