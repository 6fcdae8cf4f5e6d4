import fs from 'node:fs';
import path from 'node:path';
import { LscError, oneLine } from '../compiler/errors.js';
import type { Graph } from '../compiler/ir/graph.js';
import { parseLlamaConfig, type LlamaHfConfig } from '../compiler/builder/hf-config.js';
import { buildLlamaGraph } from '../compiler/builder/llama.js';
import { resolveDims } from '../compiler/ir/dims.js';
import { validateGraph } from '../compiler/ir/validate.js';
import { modelDirName } from './hf-cache.js';
import { readRegularFile } from './safe-file.js';

/** Reads a JSON file with user-facing errors. */
export function readJsonFile(file: string, what: string): unknown {
  const text = readRegularFile(file, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LscError(`${what} is not valid JSON: ${oneLine((e as Error).message)}`, { file });
  }
}

/** Checks the Hugging Face model directory layout before anything heavy happens. */
export function checkModelDir(dir: string): void {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new LscError(`model directory '${dir}' does not exist`, {},
      'pass a directory with config.json, tokenizer.json and model.safetensors (the Hugging Face layout)');
  }
  const have = new Set(fs.readdirSync(dir));
  const missing: string[] = [];
  if (!have.has('config.json')) missing.push('config.json');
  if (!have.has('tokenizer.json')) missing.push('tokenizer.json');
  if (!have.has('model.safetensors') && !have.has('model.safetensors.index.json')) missing.push('model.safetensors (or model.safetensors.index.json)');
  if (missing.length) {
    throw new LscError(`model directory is missing ${missing.join(', ')}`, { file: dir },
      'download the complete Hugging Face repository (config, tokenizer and safetensors weights)');
  }
}

export interface ModelGraph {
  graph: Graph;
  config: LlamaHfConfig;
  graphFile?: string;
}

/** config.json of a model directory, parsed and checked. */
export function readModelConfig(dir: string): { config: LlamaHfConfig; file: string } {
  const file = path.join(dir, 'config.json');
  return { config: parseLlamaConfig(readJsonFile(file, 'config.json'), file), file };
}

/**
 * The graph of a model directory: built from config.json (or `config`, read already), or read
 * from `graphFile` and checked to agree with config.json.
 */
export function modelGraph(dir: string, opts: { graphFile?: string; name?: string; config?: LlamaHfConfig } = {}): ModelGraph {
  const config = opts.config ?? readModelConfig(dir).config;
  if (!opts.graphFile) {
    return { graph: buildLlamaGraph(config, { name: opts.name ?? modelDirName(dir) }), config };
  }
  const graph = validateGraph(readJsonFile(opts.graphFile, 'graph file'), opts.graphFile);
  const dims = resolveDims(graph, opts.graphFile).values;
  const expect: [string, number][] = [
    ['vocab', config.vocab_size], ['d', config.hidden_size], ['heads', config.num_attention_heads],
    ['kvHeads', config.num_key_value_heads], ['headDim', config.head_dim], ['ffn', config.intermediate_size],
    ['layers', config.num_hidden_layers],
  ];
  for (const [key, want] of expect) {
    if (dims[key] !== want) {
      throw new LscError(`graph dim '${key}' is ${dims[key]} but config.json says ${want}`, { file: opts.graphFile, pointer: `/dims/${key}` },
        `use the graph built for this model (lsc graph ${dir}) or omit --graph`);
    }
  }
  if (Math.abs(graph.rope.theta - config.rope_theta) > 1e-6 * config.rope_theta) {
    throw new LscError(`graph rope.theta ${graph.rope.theta} but config.json says ${config.rope_theta}`, { file: opts.graphFile, pointer: '/rope/theta' },
      'omit --graph to build the graph from config.json');
  }
  return { graph, config, graphFile: opts.graphFile };
}
