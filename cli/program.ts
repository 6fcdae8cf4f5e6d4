import fs from 'node:fs';
import { Command } from 'commander';
import { report } from './report.js';
import { registerCompile } from './commands/compile.js';
import { registerInspect } from './commands/inspect.js';
import { registerGraph } from './commands/graph.js';
import { registerGenerate } from './commands/generate.js';
import { registerLogits } from './commands/logits.js';
import { registerTune } from './commands/tune.js';
import { registerBench } from './commands/bench.js';
import { registerDownload } from './commands/download.js';
import { registerChat } from './commands/chat.js';
import { registerWeb } from './commands/web.js';
import { registerServe } from './commands/serve.js';
import { registerQuantize } from './commands/quantize.js';

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function buildProgram(): Command {
  // exitOverride and configureOutput must precede .command(): subcommands copy them when created
  const program = new Command('lsc')
    .description('LayerSkip compiler: Llama graphs → WebGPU plans, and a runtime with self-speculative decoding')
    .version(version(), '-V, --version')
    .exitOverride()
    .configureOutput({ outputError: () => {} }) // report() prints usage errors as one line
    .showSuggestionAfterError(true);
  registerCompile(program);
  registerInspect(program);
  registerGraph(program);
  registerGenerate(program);
  registerChat(program);
  registerServe(program);
  registerLogits(program);
  registerBench(program);
  registerTune(program);
  registerDownload(program);
  registerWeb(program);
  registerQuantize(program);
  return program;
}

/** Runs the command line; returns the exit code (the caller sets process.exitCode, so stdout drains). */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  const sub = program.commands.find((c) => c.name() === argv[0]);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    return report(e, sub ? `lsc ${sub.name()}` : 'lsc');
  }
}
