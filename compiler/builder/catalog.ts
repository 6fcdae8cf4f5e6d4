import type { BuildOptions } from './llama.js';

/**
 * The checked-in graphs: each is built from a config.json by the builder with these options
 * (a test checks graphs/<name>.json equals the builder's output). Defaults follow the LayerSkip
 * authors' recommended exits where published (llama2-7B E=8 k=6, 13B E=8, 70B E=10, llama3-8B
 * and llama3.2-1B E=4); the others are our choice by analogy — sweep with `lsc bench --sweep`.
 */
export interface CatalogEntry {
  name: string;
  /** config.json path relative to the repository root. */
  config: string;
  options: Omit<BuildOptions, 'name'>;
}

export const CATALOG: CatalogEntry[] = [
  // the bundled models: builder defaults, so the graph lsc builds from its config.json is this one
  { name: 'tiny-code', config: 'examples/models/tiny-code/config.json', options: { ctx: 1024, kMax: 8 } },
  // the second bundled model (16 layers, head = 0.65 layer as in llama2-7B): builder defaults too,
  // which give every exit 1..15 and E=4 (a quarter of the depth), k=3
  { name: 'tiny-code-deep', config: 'examples/models/tiny-code-deep/config.json', options: { ctx: 1024, kMax: 8 } },
  { name: 'llama2-7b', config: 'graphs/configs/llama2-7b.config.json', options: { ctx: 4096, exitLayer: 8, numSpeculations: 6 } },
  { name: 'llama2-13b', config: 'graphs/configs/llama2-13b.config.json', options: { ctx: 4096, exitLayer: 8, numSpeculations: 6 } },
  { name: 'llama2-70b', config: 'graphs/configs/llama2-70b.config.json', options: { ctx: 4096, exitLayer: 10, numSpeculations: 6 } },
  { name: 'codellama-7b', config: 'graphs/configs/codellama-7b.config.json', options: { ctx: 4096, exitLayer: 8, numSpeculations: 6 } },
  { name: 'codellama-34b', config: 'graphs/configs/codellama-34b.config.json', options: { ctx: 4096, exitLayer: 8, numSpeculations: 6 } },
  { name: 'llama3-8b', config: 'graphs/configs/llama3-8b.config.json', options: { ctx: 4096, exitLayer: 4, numSpeculations: 6 } },
  { name: 'llama3.2-1b', config: 'graphs/configs/llama3.2-1b.config.json', options: { ctx: 4096, exitLayer: 4, numSpeculations: 6 } },
];
