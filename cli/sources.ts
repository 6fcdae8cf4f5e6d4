import fs from 'node:fs';
import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import type { Graph } from '../compiler/ir/graph.js';
import type { Plan } from '../compiler/plan.js';
import { validateGraph } from '../compiler/ir/validate.js';
import { GRAPH_FILE, looksLikeArtifactDir, readArtifact } from '../compiler/artifact.js';
import { parseLlamaConfig, type LlamaHfConfig } from '../compiler/builder/hf-config.js';
import { modelGraph, readJsonFile } from '../runtime/model-dir.js';
import { resolveModelPath } from '../runtime/hf-cache.js';

/** What a GRAPH argument can name: a graph file, a compiled artifact dir, or a model dir. */
export interface GraphSource {
  kind: 'graph' | 'artifact' | 'model';
  graph: Graph;
  /** File the graph was read from (named in errors); undefined when built from config.json. */
  file?: string;
  /** Compiled plan, for artifact dirs. */
  plan?: Plan;
  /** Positions the model was trained for: config.json's max_position_embeddings, else the graph's ctx. */
  trainedCtx: number;
  /** What trainedCtx is, for messages. */
  trainedFrom: string;
}

/** The graph's dims.ctx (a number or { max }). */
function graphCtx(graph: Graph): number {
  const c = graph.dims.ctx as unknown;
  return typeof c === 'number' ? c : typeof c === 'object' && c !== null && typeof (c as { max?: unknown }).max === 'number' ? (c as { max: number }).max : Infinity;
}
const FROM_GRAPH = "the graph's ctx holds (taken as its trained length when no config.json is at hand)";

const WHAT = 'pass a graph file (make one with lsc graph MODEL_DIR), an artifact dir (lsc compile) or a model dir with config.json';

function mustExist(p: string): fs.Stats {
  try {
    return fs.statSync(p);
  } catch {
    throw new LscError('no such file or directory', { file: p }, WHAT);
  }
}

export function loadGraphSource(p: string): GraphSource {
  p = resolveModelPath(p, { need: 'config' }); // org/name[@rev]: its cached snapshot
  const st = mustExist(p);
  if (!st.isDirectory()) {
    const graph = validateGraph(readJsonFile(p, 'graph file'), p);
    return { kind: 'graph', graph, file: p, trainedCtx: graphCtx(graph), trainedFrom: FROM_GRAPH };
  }
  if (looksLikeArtifactDir(p)) {
    // readArtifact checks all of it (manifest, plan against graph) and explains an old or broken one
    const a = readArtifact(p);
    return { kind: 'artifact', graph: a.graph, file: path.join(p, GRAPH_FILE), plan: a.plan, trainedCtx: graphCtx(a.graph), trainedFrom: FROM_GRAPH };
  }
  if (fs.existsSync(path.join(p, 'config.json'))) {
    const { graph, config } = modelGraph(p);
    return { kind: 'model', graph, trainedCtx: config.max_position_embeddings, trainedFrom: 'this model was trained for (config.json max_position_embeddings)' };
  }
  throw new LscError(`directory '${p}' has neither manifest.json (a compiled artifact) nor config.json (a model)`, { file: p }, WHAT);
}

/** A Hugging Face config.json, given as the file or the model directory holding it. */
export function loadHfConfig(p: string): { config: LlamaHfConfig; file: string; dir: string } {
  p = resolveModelPath(p, { need: 'config' }); // org/name[@rev]: its cached snapshot
  const st = mustExist(p);
  const file = st.isDirectory() ? path.join(p, 'config.json') : p;
  return { config: parseLlamaConfig(readJsonFile(file, 'config.json'), file), file, dir: path.dirname(path.resolve(file)) };
}

/** The graph with dims.ctx replaced, keeping its doc; the plan's hash then matches this graph. */
export function withCtx(graph: Graph, ctx: number | undefined): Graph {
  if (ctx === undefined) return graph;
  const old = graph.dims.ctx;
  const doc = typeof old === 'object' && old.doc ? { doc: old.doc } : {};
  return { ...graph, dims: { ...graph.dims, ctx: { max: ctx, ...doc } } };
}
