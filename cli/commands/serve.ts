import { InvalidArgumentError, Option, type Command } from 'commander';
import { LscError } from '../../compiler/errors.js';
import { positiveInt, nonNegativeInt } from '../options.js';
import { addLoadOptions, addModelSource, pickModel, checkApplicable, SPECULATION_MAX_BATCH_FLAGS, SPECULATION_MAX_BATCH_HELP } from '../shared-options.js';
import { loadModel } from '../load-model.js';
import { LscServer } from '../../server/server.js';
import { checkModelDir } from '../../runtime/model-dir.js';
import { resolveModelPath } from '../../runtime/hf-cache.js';
import { DEFAULT_MAX_BODY_BYTES } from '../../server/body.js';
import { DEFAULT_MAX_QUEUED } from '../../runtime/batch/model-queue.js';

/** A TCP port, 0..65535 (0: the system picks a free one). */
function port(value: string): number {
  const n = nonNegativeInt(value);
  if (n > 65535) throw new InvalidArgumentError('It must be a port number in 0..65535.');
  return n;
}

interface Opts {
  json?: boolean;
  model: string; host: string; port: number; apiKey?: string; name?: string; sequences?: number; speculationMaxBatch?: number; maxQueued: number;
  maxBodyBytes: number; gracePeriod: number; graph?: string; plan?: string; ctx?: number; forceCtx?: boolean;
}

export function registerServe(program: Command): void {
  const cmd = program.command('serve')
    .description('an OpenAI-compatible HTTP server (POST /v1/completions, /v1/chat/completions; GET /v1/models, /health, /metrics) ' +
      'on the batched engine: concurrent requests share the GPU, each exact');
  addModelSource(cmd, 'model', 'model dir or Hugging Face id')
    .option('--host <addr>', 'address to listen on (loopback unless told otherwise)', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: a free one, printed at start)', port, 8080)
    .addOption(new Option('--api-key <key>', 'require Authorization: Bearer KEY on /v1 requests').env('LSC_API_KEY'))
    .option('--name <id>', "the model's id in requests and /v1/models (default: the model directory's name)")
    .option('--sequences <n>', 'KV slots: sequences generated at once (default: as many as memory allows, up to 16)', positiveInt)
    .option(SPECULATION_MAX_BATCH_FLAGS, SPECULATION_MAX_BATCH_HELP, positiveInt)
    .option('--max-queued <n>', 'requests that may wait for a slot; more are answered 429', nonNegativeInt, DEFAULT_MAX_QUEUED)
    .option('--max-body-bytes <n>', 'largest request body; larger ones are answered 413', positiveInt, DEFAULT_MAX_BODY_BYTES)
    .option('--grace-period <s>', 'on SIGTERM/SIGINT, seconds in-flight requests get to finish before they are cancelled', nonNegativeInt, 30);
  addLoadOptions(cmd)
    .option('--json', 'print one JSON line on stdout when ready: {"url", "model", "sequences", "maxQueued"} (scripts learn the port of --port 0)')
    .addHelpText('after', '\nRequests take OpenAI\'s fields (greedy unless temperature > 0) and LayerSkip\'s as extra fields: strategy, ' +
      'exit_layer, num_speculations.\nResponses add "speculation" (acceptance, drafted/accepted tokens) beside "usage".')
    .action(async (positional: string | undefined, o: Opts, self: Command) => {
      o.model = pickModel(positional, o.model, 'model');
      checkApplicable(self, { temperature: 0, ctx: o.ctx, plan: o.plan, forceCtx: o.forceCtx });
      if (o.apiKey !== undefined && !o.apiKey.trim()) {
        throw new LscError('the API key is empty (--api-key or LSC_API_KEY)', {}, 'pass a non-empty key, or unset LSC_API_KEY to serve without one');
      }
      checkModelDir(resolveModelPath(o.model)); // a wrong path fails before the port is taken
      const server = new LscServer({ apiKey: o.apiKey, maxBodyBytes: o.maxBodyBytes });
      // listen first: /health answers 'loading' while the weights upload
      const addr = await server.listen(o.port, o.host).catch((e: NodeJS.ErrnoException) => {
        throw new LscError(`cannot listen on ${o.host}:${o.port}: ${e.code ?? e.message}`, {}, 'choose another --port or --host');
      });
      const url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
      process.stderr.write(`lsc: listening on ${url} (loading ${o.model})\n`);
      let stop!: (signal: string) => void;
      const stopped = new Promise<string>((resolve) => { stop = resolve; });
      const onSignal = (signal: string): void => stop(signal);
      process.once('SIGTERM', onSignal).once('SIGINT', onSignal);
      let model;
      try {
        model = await loadModel({ ...o, maxQueued: o.maxQueued }, process.stderr.isTTY === true);
      } catch (e) {
        await server.close(0);
        throw e;
      }
      try {
        const id = server.setModel(model, o.name);
        const sequences = model.gpuBytes.sequences;
        process.stderr.write(`lsc: ready: ${url}/v1 serves '${id}' (${sequences} sequences at once, up to ${o.maxQueued} queued)\n`);
        if (o.json) process.stdout.write(JSON.stringify({ url, model: id, sequences, maxQueued: o.maxQueued }) + '\n');
        const signal = await stopped;
        process.stderr.write(`lsc: ${signal}: finishing ${server.active} in-flight request(s) (grace ${o.gracePeriod} s)\n`);
        await server.close(o.gracePeriod * 1000);
        process.stderr.write('lsc: stopped\n');
      } finally {
        process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
        model.dispose();
      }
    });
}
