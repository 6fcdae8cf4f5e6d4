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
import { loadGraphSource, withCtx } from '../sources.js';

interface Opts { format: 'text' | 'json' | 'dot' | 'html'; ctx?: number; allEntries?: boolean; profile?: string }

export function registerInspect(program: Command): void {
  program.command('inspect')
    .description('show a graph and its plan: dims, weights, nodes with shapes, entry points, dispatches, kernels, buffers')
    .argument('<path>', 'graph file, compiled artifact dir (lsc compile) or model dir (config.json)')
    .addOption(new Option('--format <fmt>', 'output format: text, json, dot (Graphviz), html (one self-contained page)').choices(['text', 'json', 'dot', 'html']).default('text'))
    .option('--ctx <n>', "KV-cache context length when compiling (default: the graph's; ignored for artifacts)", positiveInt)
    .option('--profile <file>', 'with --format html: colour kernels by the GPU times of lsc bench --profile --json > FILE')
    .option('--all-entries', 'list the dispatches of every draft@E / verify@E, not only the default exit')
    .action((p: string, o: Opts) => {
      const src = loadGraphSource(p);
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
