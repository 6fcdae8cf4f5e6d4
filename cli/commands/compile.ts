import { Option, type Command } from 'commander';
import { compileGraph } from '../../compiler/compile.js';
import { writeArtifact } from '../../compiler/artifact.js';
import { emitTypedModule } from '../../compiler/typed-module.js';
import { formatSummary, summaryJson } from '../../compiler/summary.js';
import { positiveInt } from '../options.js';
import { addModelSource, FORCE_CTX_HELP, pickModel, weightsOption } from '../shared-options.js';
import { withWeightsSpec, type WeightsSpec } from '../../compiler/ir/weights-spec.js';
import { checkCtx } from '../checks.js';
import { LscError } from '../../compiler/errors.js';
import { SUMMARY_FILE } from '../../compiler/artifact.js';
import { loadGraphSource, withCtx } from '../sources.js';
import { defaultOutDir } from '../out-dir.js';
import { plural } from '../../compiler/plural.js';

interface Opts { model?: string; out?: string; ctx?: number; forceCtx?: boolean; json?: boolean; target?: 'gpu' | 'cpu'; emitTs?: boolean; sequences?: number; weights?: WeightsSpec }

export function registerCompile(program: Command): void {
  const cmd = program.command('compile')
    .description('compile a graph into an artifact dir (plan.json, kernels/*.wgsl, graph.json, summary.txt, manifest.json); needs no GPU and no weights');
  addModelSource(cmd, 'graph', 'graph file (lsc.graph/1 JSON), or a model dir with config.json (or a Hugging Face id)')
    .option('-o, --out <dir>', 'artifact directory (default: out/<graph name as one safe folder name>); an existing one is replaced only if lsc wrote it')
    .option('--ctx <n>', "KV-cache context length (default: the graph's)", positiveInt)
    .option('--force-ctx', FORCE_CTX_HELP)
    .option('--sequences <n>', 'KV-cache slots: sequences the artifact generates at once (loading without --plan picks them from the adapter\'s memory)', positiveInt, 1)
    .addOption(weightsOption())
    .addOption(new Option('--target <kind>', 'kernel defaults for GPUs or CPU drivers (lavapipe); tuned decisions apply at load').choices(['gpu', 'cpu']).default('gpu'))
    .option('--emit-ts', 'also write model.ts: typed exits, dims and a load() for this artifact (for embedders)')
    .option('--json', 'print the summary as JSON')
    .action((positional: string | undefined, opts: Opts) => {
      const src = loadGraphSource(pickModel(positional, opts.model, 'graph'));
      if (opts.forceCtx && opts.ctx === undefined) throw new LscError('--force-ctx applies only to a --ctx beyond the trained length', {}, 'drop --force-ctx');
      checkCtx(opts.ctx, src.trainedCtx, src.trainedFrom, opts.forceCtx);
      // an artifact's graph.json then says the formats its plan has
      const graph = withWeightsSpec(withCtx(src.graph, opts.ctx), opts.weights);
      const dir = opts.out ?? defaultOutDir(graph.name, src.file);
      const compiled = compileGraph(graph, { file: src.file, target: opts.target, sequences: opts.sequences });
      writeArtifact(dir, compiled, graph, opts.emitTs ? { 'model.ts': emitTypedModule(compiled.plan) } : {});
      if (opts.json) {
        process.stdout.write(JSON.stringify({ artifact: dir, ...summaryJson(compiled.plan) }, null, 2) + '\n');
      } else {
        process.stdout.write(`wrote ${dir}: plan.json, graph.json, ${plural(compiled.plan.kernels.length, 'kernel')} (kernels/*.wgsl), ${SUMMARY_FILE} (this summary)${opts.emitTs ? ', model.ts' : ''}, manifest.json\n\n`);
        process.stdout.write(formatSummary(compiled.plan));
      }
    });
}
