import type { IncomingMessage, ServerResponse } from 'node:http';
import type { LscModel } from '../runtime/model.js';
import type { GenerateEvent, GenerateResult } from '../runtime/generate.js';
import { LscError } from '../compiler/errors.js';
import { ApiError, apiError, badRequest } from './api-error.js';
import { chatRequest, completionRequest, type GenerationRequest } from './request.js';
import { ResponseHead, finishReason, type Kind } from './responses.js';
import { SseStream } from './sse.js';
import type { Metrics } from './metrics.js';

/** What a generation request needs of the server. */
export interface GenerationContext {
  model: LscModel;
  /** The model's id in requests and /v1/models. */
  modelId: string;
  metrics: Metrics;
  /** Aborted when the server gives up waiting for in-flight requests at shutdown. */
  shutdown: AbortSignal;
  onBug: (e: unknown) => void;
}

/** Status recorded for a request whose client went away before the answer (nginx's convention). */
export const CLIENT_CLOSED = 499;

/** The prompt's token ids and the token budget, checked against the context before the request queues. */
function promptAndBudget(model: LscModel, r: GenerationRequest): { ids: number[]; maxNewTokens: number } {
  let ids: number[];
  if (r.messages) {
    try {
      ids = model.tokenizer.encode(model.chatTemplate.render(r.messages, { addGenerationPrompt: true }));
    } catch (e) {
      if (e instanceof LscError) throw badRequest(e.format(), 'messages', 'invalid_value');
      throw e;
    }
  } else {
    ids = typeof r.prompt === 'string' ? model.tokenizer.encode(r.prompt) : [...r.prompt!];
  }
  try {
    model.checkTokens(ids, 'prompt');
  } catch (e) {
    const code = ids.length > model.plan.dims.ctx ? 'context_length_exceeded' : 'invalid_value';
    if (e instanceof LscError) throw badRequest(e.format(), r.messages ? 'messages' : 'prompt', code);
    throw e;
  }
  // positions 0..ctx-1 hold the prompt and all new tokens but the last (see runtime/generate.ts)
  const ctx = model.plan.dims.ctx;
  const room = ctx + 1 - ids.length;
  if (r.maxTokens !== undefined && r.maxTokens > room) {
    const e = new LscError(`max_tokens ${r.maxTokens} does not fit the context: ${ids.length} prompt tokens + ${r.maxTokens} new tokens exceed ${ctx} positions`,
      {}, `ask for at most ${room} tokens, or start the server with a larger --ctx`);
    throw badRequest(e.format(), 'max_tokens', 'context_length_exceeded');
  }
  return { ids, maxNewTokens: r.maxTokens ?? room };
}

/**
 * POST /v1/completions and /v1/chat/completions: one generation on the batched engine. Errors
 * before the first token get their status (400, 429, ...); a client that disconnects cancels
 * its sequence (it leaves the batch within one step). Returns the status for the metrics.
 */
export async function serveGeneration(ctx: GenerationContext, kind: Kind, body: Record<string, unknown>,
  req: IncomingMessage, res: ServerResponse): Promise<number> {
  const t0 = performance.now();
  const r = kind === 'chat' ? chatRequest(body) : completionRequest(body);
  if (r.model !== ctx.modelId) {
    throw badRequest(`model '${r.model}' is not served here; this server serves '${ctx.modelId}' (GET /v1/models)`, 'model', 'model_not_found');
  }
  const { ids, maxNewTokens } = promptAndBudget(ctx.model, r);
  const clientGone = new AbortController();
  res.on('close', () => { if (!res.writableFinished) clientGone.abort(); });
  const signal = AbortSignal.any([clientGone.signal, ctx.shutdown]);
  const run = ctx.model.generate(ids, { ...r.options, maxNewTokens, signal });
  const events = run[Symbol.asyncIterator]();
  const head = new ResponseHead(kind, ctx.modelId);

  let first: IteratorResult<GenerateEvent, void>;
  try {
    first = await events.next(); // queueing, then prefill: errors here still get their own status
  } catch (e) {
    if (clientGone.signal.aborted) return CLIENT_CLOSED;
    if (ctx.shutdown.aborted) {
      // still waiting for a slot when the grace period ended: another replica can take it
      throw new ApiError(503, 'the server shut down before the request started', 'server_error', null, 'shutting_down', { 'Retry-After': '1' });
    }
    throw e;
  }
  const ttft = (performance.now() - t0) / 1000;
  const finished = (result: GenerateResult): void => ctx.metrics.generation(result.stats, ttft);

  if (!r.stream) {
    if (!first.done) for (;;) if ((await events.next()).done) break;
    const result = await run.result;
    finished(result);
    if (clientGone.signal.aborted) return CLIENT_CLOSED;
    const text = JSON.stringify(head.full(result));
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(text);
    return 200;
  }

  const sse = new SseStream(res);
  try {
    let firstChunk = true;
    const send = (text: string): void => {
      if (!text && !(firstChunk && kind === 'chat')) return;
      sse.send(head.chunk(text, { first: firstChunk }));
      firstChunk = false;
    };
    for (let ev = first; !ev.done; ev = await events.next()) send(ev.value.text);
    const result = await run.result;
    finished(result);
    if (firstChunk) send('');
    sse.send(head.chunk('', { finish: finishReason(result.stats) }));
    if (r.includeUsage) sse.send(head.usageChunk(result.stats));
    sse.done();
  } catch (e) {
    // the status is sent already: the error travels as an event, as OpenAI's servers do
    sse.fail(apiError(e, ctx.onBug).body);
  }
  return clientGone.signal.aborted ? CLIENT_CLOSED : 200;
}
