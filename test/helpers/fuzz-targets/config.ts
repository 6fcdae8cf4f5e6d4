/**
 * Fuzz target: what `lsc graph MODEL_DIR` and `lsc compile MODEL_DIR` do with a mutated
 * config.json: parse and check it, build the Llama graph, validate, compile, format the summary.
 */
import { parseLlamaConfig } from '../../../compiler/builder/hf-config.js';
import { buildLlamaGraph } from '../../../compiler/builder/llama.js';
import { compileGraph } from '../../../compiler/compile.js';
import { validateGraph } from '../../../compiler/ir/validate.js';
import { formatSummary } from '../../../compiler/summary.js';
import type { Rng } from '../../../runtime/sampling.js';
import type { FuzzCase } from '../fuzz.js';
import { configSeeds, drawSeed, mutate, parseAs } from './fuzz-seeds.js';

const SEEDS = configSeeds();
/** Config fields are top-level: the hot section is rope_scaling (the only nested object). */
const HOT = ['rope_scaling'];

let last = '';
/** The text of the latest case (test/helpers/fuzz-targets/cli-cases.ts writes it to a file for the CLI). */
export const lastText = (): string => last;

export function fuzzCase(rng: Rng): FuzzCase {
  const seed = drawSeed(SEEDS, rng);
  const { text, label } = mutate(seed.doc, rng, HOT);
  last = text;
  return {
    label: `${seed.name}: ${label}`,
    run: () => {
      const config = parseLlamaConfig(parseAs(text, seed.file, 'config.json'), seed.file);
      const graph = validateGraph(buildLlamaGraph(config, { name: 'fuzz' }), seed.file);
      formatSummary(compileGraph(graph).plan);
    },
  };
}
