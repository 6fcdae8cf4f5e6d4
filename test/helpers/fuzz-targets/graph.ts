/**
 * Fuzz target: what `lsc compile GRAPH.json` does with a mutated graphs/*.json: parse, validate,
 * compile (every pass, WGSL emission) and format the summary it prints.
 */
import { compileGraph } from '../../../compiler/compile.js';
import { validateGraph } from '../../../compiler/ir/validate.js';
import { formatSummary } from '../../../compiler/summary.js';
import type { Rng } from '../../../runtime/sampling.js';
import type { FuzzCase } from '../fuzz.js';
import { drawSeed, graphSeeds, mutate, parseAs } from './fuzz-seeds.js';

const SEEDS = graphSeeds().sort((a, b) => Number(!a.name.includes('tiny')) - Number(!b.name.includes('tiny')));
/** Where sizes, names and references live. */
const HOT = ['dims', 'blocks', 'body', 'weights', 'exit', 'verify', 'defaults', 'rope', 'inputs', 'tokens'];

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
      const graph = validateGraph(parseAs(text, seed.file, 'graph file'), seed.file);
      formatSummary(compileGraph(graph, { file: seed.file }).plan);
    },
  };
}
