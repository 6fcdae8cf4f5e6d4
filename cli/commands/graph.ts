import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { LscError } from '../../compiler/errors.js';
import { buildLlamaGraph, defaultExitCandidates } from '../../compiler/builder/llama.js';
import { validateGraph } from '../../compiler/ir/validate.js';
import { intList, positiveInt } from '../options.js';
import { addModelSource, FORCE_CTX_HELP, pickModel } from '../shared-options.js';
import { checkCtx } from '../checks.js';
import { loadHfConfig } from '../sources.js';
import { modelDirName } from '../../runtime/hf-cache.js';

interface Opts {
  model?: string; name?: string; out?: string; ctx?: number; forceCtx?: boolean; kMax?: number; json?: boolean;
  exitCandidates?: number[]; exitLayer?: number; numSpeculations?: number;
}

/** Flag-level checks, so errors name the flag rather than a pointer into a graph not yet written. */
function checkExits(layers: number, o: Opts): number[] {
  const candidates = [...new Set(o.exitCandidates ?? defaultExitCandidates(layers))].sort((a, b) => a - b);
  const bad = candidates.find((e) => e >= layers);
  if (bad !== undefined) throw new LscError(`--exit-candidates: ${bad} is not a layer in 1..${layers - 1}`);
  if (o.exitLayer !== undefined && !candidates.includes(o.exitLayer)) {
    throw new LscError(`--exit-layer ${o.exitLayer} is not among the exit candidates ${candidates.join(',')}`, {},
      'add it to --exit-candidates');
  }
  const kMax = o.kMax ?? DEFAULT_K_MAX;
  if (o.numSpeculations !== undefined && o.numSpeculations > kMax) {
    throw new LscError(`--num-speculations ${o.numSpeculations} exceeds --k-max ${kMax}`);
  }
  return candidates;
}

const DEFAULT_K_MAX = 8;

export function registerGraph(program: Command): void {
  const cmd = program.command('graph')
    .description("write the lsc graph (JSON) of a Hugging Face Llama checkpoint, built from its config.json");
  addModelSource(cmd, 'config', 'config.json, or the model dir holding it (or a Hugging Face id)')
    .option('--name <name>', 'graph name (default: the model directory name)')
    .option('-o, --out <file>', 'write the graph here (default: stdout)')
    .option('--json', 'accepted for uniformity: the graph is always JSON')
    .option('--ctx <n>', 'KV-cache context length (default: min(max_position_embeddings, 4096))', positiveInt)
    .option('--force-ctx', FORCE_CTX_HELP)
    .option('--k-max <n>', 'largest number of drafts per round the plan supports', positiveInt, DEFAULT_K_MAX)
    .option('--exit-candidates <list>', 'exit layers to compile, e.g. 2,4,6 (default: all for ≤16 layers, else every other up to L/2)',
      intList('layer numbers', 1))
    .option('--exit-layer <e>', 'default exit layer (one of the candidates)', positiveInt)
    .option('--num-speculations <k>', 'default drafts per round', positiveInt)
    .action((positional: string | undefined, o: Opts) => {
      const { config, file, dir } = loadHfConfig(pickModel(positional, o.model, 'config'));
      if (o.forceCtx && o.ctx === undefined) throw new LscError('--force-ctx applies only to a --ctx beyond the trained length', {}, 'drop --force-ctx');
      checkCtx(o.ctx, config.max_position_embeddings, 'this model was trained for (config.json max_position_embeddings)', o.forceCtx);
      const exitCandidates = checkExits(config.num_hidden_layers, o);
      const graph = buildLlamaGraph(config, {
        name: o.name ?? modelDirName(dir), ctx: o.ctx, kMax: o.kMax, exitCandidates,
        exitLayer: o.exitLayer, numSpeculations: o.numSpeculations,
      });
      validateGraph(graph, file);
      const text = JSON.stringify(graph, null, 2) + '\n';
      if (!o.out) {
        process.stdout.write(text);
        return;
      }
      // temp file + rename: a reader never sees half a graph
      const tmp = `${o.out}.tmp-${process.pid}`;
      try {
        fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
        fs.writeFileSync(tmp, text);
        fs.renameSync(tmp, o.out);
      } catch (e) {
        fs.rmSync(tmp, { force: true });
        throw new LscError(`cannot write ${o.out}: ${(e as Error).message}`, { file: o.out });
      }
    });
}
