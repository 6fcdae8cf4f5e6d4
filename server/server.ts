import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { LscModel } from '../runtime/model.js';
import { apiError } from './api-error.js';
import { DEFAULT_MAX_BODY_BYTES } from './body.js';
import { CLIENT_CLOSED } from './generation.js';
import { Metrics } from './metrics.js';
import { ENDPOINTS, route, type RouteContext } from './routes.js';

export interface ServerOptions {
  /** Requests to /v1 need `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** Cap on a request body (default 1 MiB): larger ones get 413. */
  maxBodyBytes?: number;
  /** Where bugs (500s) are logged (default: stderr). */
  log?: (line: string) => void;
}

/**
 * An OpenAI-compatible HTTP server on one model (node:http: the API is a handful of JSON
 * routes and one SSE stream, which need no framework). It listens before the model is set, so
 * /health can say 'loading' until setModel(); stateless between requests, so replicas behind a
 * load balancer scale out.
 */
export class LscServer {
  private readonly http: http.Server;
  private readonly ctx: RouteContext;
  private readonly shutdown = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly log: (line: string) => void;

  constructor(opts: ServerOptions = {}) {
    this.log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.ctx = {
      state: 'loading', apiKey: opts.apiKey, maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      metrics: new Metrics(() => this.gauges()),
    };
    this.http = http.createServer((req, res) => {
      // handle() answers every error itself; this catch keeps even a failure to answer from ending the process
      const done = this.handle(req, res).catch((e: unknown) => this.log(`lsc serve: could not answer ${req.method} ${req.url}: ${e instanceof Error ? e.stack : String(e)}`));
      this.inFlight.add(done);
      void done.finally(() => this.inFlight.delete(done));
    });
    // a client that sends garbage gets a 400 from node and its socket closed; the server goes on
    this.http.on('clientError', (_e, socket) => { if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'); });
  }

  private gauges(): ReturnType<ConstructorParameters<typeof Metrics>[0]> {
    const model = this.ctx.generation?.model;
    if (!model) return undefined;
    const g = model.gpuBytes;
    return { activeSequences: g.activeSequences ?? 0, queued: model.engine?.queued ?? model.queue.queued, kvSlots: g.sequences, kvBytesInUse: g.kvInUse ?? 0 };
  }

  /** One request, whatever it throws: the error becomes its answer, never the server's end. */
  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let status: number;
    try {
      status = await route(this.ctx, req, res);
    } catch (e) {
      const err = apiError(e, (bug) => this.log(`lsc serve: internal error on ${req.method} ${req.url}: ${bug instanceof Error ? bug.stack : String(bug)}`));
      status = err.status;
      if (res.headersSent) {
        res.destroy(); // a bug mid-answer: the client sees a cut connection rather than a wrong body
      } else if (!res.destroyed) {
        // the body may be unread (413, 401): close the connection rather than read what was refused
        res.writeHead(err.status, { 'Content-Type': 'application/json', ...err.headers, ...(err.status === 413 ? { Connection: 'close' } : {}) })
          .end(JSON.stringify(err.body));
      } else {
        status = CLIENT_CLOSED;
      }
    }
    const url = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    this.ctx.metrics.request((ENDPOINTS as readonly string[]).includes(url) ? url : 'other', status);
  }

  /** Serves `model` from now on; /health turns ready. `id`: the model's name in the API (default: its directory's name). */
  setModel(model: LscModel, id = path.basename(model.dir)): string {
    this.ctx.generation = {
      model, modelId: id, metrics: this.ctx.metrics, shutdown: this.shutdown.signal,
      onBug: (e) => this.log(`lsc serve: internal error: ${e instanceof Error ? e.stack : String(e)}`),
    };
    this.ctx.state = 'ready';
    return id;
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve(this.http.address() as AddressInfo);
      });
    });
  }

  /** Requests being answered now. */
  get active(): number {
    return this.inFlight.size;
  }

  /**
   * Stops accepting connections, lets in-flight requests finish for up to `graceMs`, then
   * cancels the rest (each ends within one step, its client getting what was generated) and
   * closes. The model is the caller's to dispose.
   */
  async close(graceMs: number): Promise<void> {
    this.ctx.state = 'draining';
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); });
    const drained = async (): Promise<void> => { while (this.inFlight.size) await Promise.allSettled([...this.inFlight]); };
    await Promise.race([drained(), grace]);
    clearTimeout(timer);
    this.shutdown.abort();
    await drained();
    this.http.closeAllConnections();
    await closed;
  }
}
