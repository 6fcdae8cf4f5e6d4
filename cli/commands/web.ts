import type { Command } from 'commander';
import { nonNegativeInt, positiveInt } from '../options.js';
import { addModelSource, pickModel } from '../shared-options.js';
import { startWebServer } from '../web-server.js';
import { LscError } from '../../compiler/errors.js';

interface Opts { model?: string; port: number; ctx?: number; page?: string; json?: boolean }

export function registerWeb(program: Command): void {
  const cmd = program.command('web')
    .description('serve a page on 127.0.0.1 that runs the model in the browser (WebGPU): prompt, streamed output, strategy/exit/k, tok/s and acceptance');
  addModelSource(cmd, 'model', 'model directory (config.json, tokenizer.json, safetensors) or a cached Hugging Face id')
    .option('--port <n>', 'port on 127.0.0.1 (0: a free one)', nonNegativeInt, 8080)
    .option('--page <file>', 'serve this HTML file at / instead of lsc\'s page (your own page using /lsc.js; see examples/browser/)')
    .option('--ctx <n>', "KV-cache context length of the page's plans (default: the graph's)", positiveInt)
    .option('--json', 'print {"url","port"} as one JSON line once serving')
    .action(async (positional: string | undefined, opts: Opts) => {
      if (opts.port > 65535) throw new LscError(`--port ${opts.port} is not a port (0..65535)`);
      const server = await startWebServer({ model: pickModel(positional, opts.model, 'model'), port: opts.port, ctx: opts.ctx, page: opts.page });
      process.stdout.write(opts.json ? `${JSON.stringify({ url: server.url, port: server.port })}\n` : `lsc web: serving ${server.url} (Ctrl-C stops)\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => { void server.close().then(resolve); };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
