import fs from 'node:fs';
import path from 'node:path';
import type { Graph } from '../ir/graph.js';
import type { CatalogEntry } from './catalog.js';
import { parseLlamaConfig } from './hf-config.js';
import { buildLlamaGraph } from './llama.js';

/** The graph of a catalog entry, built from its config.json under `root`. */
export function catalogGraph(root: string, entry: CatalogEntry): Graph {
  const file = path.join(root, entry.config);
  const config = parseLlamaConfig(JSON.parse(fs.readFileSync(file, 'utf8')), entry.config);
  return buildLlamaGraph(config, { name: entry.name, ...entry.options });
}
