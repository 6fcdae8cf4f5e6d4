import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from './api-error.js';
import { checkAuth } from './auth.js';
import { readJsonBody } from './body.js';
import { serveGeneration, type GenerationContext } from './generation.js';
import type { Metrics } from './metrics.js';

/** The server's state as the routes see it. */
export interface RouteContext {
  /** undefined while the model loads. */
  generation?: GenerationContext;
  state: 'loading' | 'ready' | 'draining';
  apiKey?: string;
  maxBodyBytes: number;
  metrics: Metrics;
}

const json = (res: ServerResponse, status: number, body: unknown): number => {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  return status;
};

/** The model, or 503 while it loads (clients retry; /health says when). */
function ready(ctx: RouteContext): GenerationContext {
  if (ctx.state === 'loading' || !ctx.generation) {
    throw new ApiError(503, 'the model is still loading', 'server_error', null, 'model_loading', { 'Retry-After': '1' });
  }
  // a keep-alive connection may still bring requests while the server drains: sent elsewhere
  if (ctx.state === 'draining') {
    throw new ApiError(503, 'the server is shutting down', 'server_error', null, 'shutting_down', { 'Retry-After': '1', Connection: 'close' });
  }
  return ctx.generation;
}

/** Endpoint names for the metrics: the known paths, everything else as one. */
export const ENDPOINTS = ['/v1/completions', '/v1/chat/completions', '/v1/models', '/health', '/metrics'] as const;

/**
 * Dispatches a request; returns its status. /health and /metrics are open (probes and scrapers
 * carry no key); the /v1 routes need the API key when the server has one.
 */
export async function route(ctx: RouteContext, req: IncomingMessage, res: ServerResponse): Promise<number> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';
  const allow = (methods: string): void => {
    if (!methods.split(',').includes(method)) {
      throw new ApiError(405, `${method} is not allowed on ${path} (allowed: ${methods})`, 'invalid_request_error', null, 'method_not_allowed', { Allow: methods });
    }
  };
  if (path === '/health') {
    allow('GET,HEAD');
    return ctx.state === 'ready' ? json(res, 200, { status: 'ok' }) : json(res, 503, { status: ctx.state });
  }
  if (path === '/metrics') {
    allow('GET');
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(ctx.metrics.text());
    return 200;
  }
  if (path === '/v1/models' || path === '/v1/completions' || path === '/v1/chat/completions') {
    checkAuth(req.headers.authorization, ctx.apiKey);
    const gen = ready(ctx);
    if (path === '/v1/models') {
      allow('GET');
      return json(res, 200, { object: 'list', data: [{ id: gen.modelId, object: 'model', created: 0, owned_by: 'lsc' }] });
    }
    allow('POST');
    const body = await readJsonBody(req, ctx.maxBodyBytes);
    return serveGeneration(gen, path === '/v1/chat/completions' ? 'chat' : 'completion', body, req, res);
  }
  throw new ApiError(404, `no route ${method} ${path}`, 'invalid_request_error', null, 'not_found');
}
