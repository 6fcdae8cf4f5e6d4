import { Option, type Command } from 'commander';
import { compileGraph } from '../../compiler/compile.js';
import { formatGraph } from '../inspect-graph.js';
import { formatPlan } from '../inspect-plan.js';
import { formatDot } from '../inspect-dot.js';
import path from 'node:path';
import { LscError } from '../../compiler/errors.js';
import { formatHtml } from '../inspect-html.js';
import { artifactWgsl } from '../inspect-kernels.js';
import { readKernelProfile } from '../inspect-profile.js';
import { viewModel } from '../inspect-view.js';
import { positiveInt } from '../options.js';
import { addModelSource, FORCE_CTX_HELP, pickModel } from '../shared-options.js';
import { checkCtx } from '../checks.js';
import { loadGraphSource, withCtx } from '../sources.js';

interface Opts { model?: string; format: 'text' | 'json' | 'dot' | 'html'; json?: boolean; ctx?: number; forceCtx?: boolean; allEntries?: boolean; profile?: string }

export function registerInspect(program: Command): void {
  const cmd = program.command('inspect')
    .description('show a graph and its plan: dims, weights, nodes with shapes, entry points, dispatches, kernels, buffers');
  addModelSource(cmd, 'path', 'graph file, compiled artifact dir (lsc compile), model dir (config.json) or Hugging Face id')
    .addOption(new Option('--format <fmt>', 'output format: text, json (the same as --json), dot (Graphviz), html (one self-contained page)').choices(['text', 'json', 'dot', 'html']).default('text'))
    .option('--json', 'print {graph, plan} as JSON (--format json)')
    .option('--ctx <n>', "KV-cache context length when compiling (default: the graph's; an artifact's is fixed)", positiveInt)
    .option('--force-ctx', FORCE_CTX_HELP)
    .option('--profile <file>', 'with --format html: colour kernels by the GPU times of lsc bench --profile --json > FILE')
    .option('--all-entries', 'list the dispatches of every draft@E / verify@E, not only the default exit')
    .action((positional: string | undefined, o: Opts) => {
      if (o.json) {
        if (o.format !== 'text' && o.format !== 'json') throw new LscError(`--json and --format ${o.format} ask for two formats`, {}, 'pass one of them');
        o.format = 'json';
      }
      const src = loadGraphSource(pickModel(positional, o.model, 'path'));
      if (o.ctx !== undefined && src.plan) {
        throw new LscError('--ctx applies only to compiling; an artifact fixes its context when compiled', {}, 'drop --ctx, or recompile the artifact with lsc compile --ctx N');
      }
      if (o.forceCtx && o.ctx === undefined) throw new LscError('--force-ctx applies only to a --ctx beyond the trained length', {}, 'drop --force-ctx');
      checkCtx(o.ctx, src.trainedCtx, src.trainedFrom, o.forceCtx);
      const graph = src.plan ? src.graph : withCtx(src.graph, o.ctx);
      // graphs and model dirs are compiled for WebGPU's default limits: no GPU needed
      const compiled = src.plan ? undefined : compileGraph(graph, { file: src.file });
      const plan = src.plan ?? compiled!.plan;
      if (o.profile && o.format !== 'html') throw new LscError('--profile colours the HTML view', {}, 'add --format html');
      if (o.format === 'dot') {
        process.stdout.write(formatDot(viewModel(graph, plan, src.file)));
      } else if (o.format === 'html') {
        const wgsl = compiled?.wgsl ?? artifactWgsl(plan, path.dirname(src.file!));
        const profile = o.profile ? readKernelProfile(o.profile, plan) : undefined;
        process.stdout.write(formatHtml(graph, plan, viewModel(graph, plan, src.file), { wgsl, profile, file: src.file }));
      } else if (o.format === 'json') {
        process.stdout.write(JSON.stringify({ graph, plan }, null, 2) + '\n');
      } else {
        process.stdout.write(formatGraph(graph, src.file) + '\n' + formatPlan(plan, o.allEntries));
      }
    });
}
