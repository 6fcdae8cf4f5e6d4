import { Option, type Command } from 'commander';
import { compileGraph } from '../../compiler/compile.js';
import { formatGraph } from '../inspect-graph.js';
import { formatPlan } from '../inspect-plan.js';
import { formatDot } from '../inspect-dot.js';
import { formatHtml } from '../inspect-html.js';
import { viewModel } from '../inspect-view.js';
import { positiveInt } from '../options.js';
import { loadGraphSource, withCtx } from '../sources.js';

interface Opts { format: 'text' | 'json' | 'dot' | 'html'; ctx?: number; allEntries?: boolean }

export function registerInspect(program: Command): void {
  program.command('inspect')
    .description('show a graph and its plan: dims, weights, nodes with shapes, entry points, dispatches, kernels, buffers')
    .argument('<path>', 'graph file, compiled artifact dir (lsc compile) or model dir (config.json)')
    .addOption(new Option('--format <fmt>', 'output format: text, json, dot (Graphviz), html (one self-contained page)').choices(['text', 'json', 'dot', 'html']).default('text'))
    .option('--ctx <n>', "KV-cache context length when compiling (default: the graph's; ignored for artifacts)", positiveInt)
    .option('--all-entries', 'list the dispatches of every draft@E / verify@E, not only the default exit')
    .action((p: string, o: Opts) => {
      const src = loadGraphSource(p);
      const graph = src.plan ? src.graph : withCtx(src.graph, o.ctx);
      // graphs and model dirs are compiled for WebGPU's default limits: no GPU needed
      const plan = src.plan ?? compileGraph(graph, { file: src.file }).plan;
      if (o.format === 'dot') {
        process.stdout.write(formatDot(viewModel(graph, plan, src.file)));
      } else if (o.format === 'html') {
        process.stdout.write(formatHtml(graph, plan, viewModel(graph, plan, src.file)));
      } else if (o.format === 'json') {
        process.stdout.write(JSON.stringify({ graph, plan }, null, 2) + '\n');
      } else {
        process.stdout.write(formatGraph(graph, src.file) + '\n' + formatPlan(plan, o.allEntries));
      }
    });
}
