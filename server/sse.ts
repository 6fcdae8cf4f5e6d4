import type { ServerResponse } from 'node:http';

/**
 * Server-sent events as OpenAI streams them: `data: JSON` per chunk, blank line between,
 * `data: [DONE]` at the end.
 */
export class SseStream {
  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    res.flushHeaders();
  }

  send(data: unknown): void {
    if (!this.res.writableEnded && !this.res.destroyed) this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** An error after the stream began (the status is already 200): sent as an event, then the end. */
  fail(body: unknown): void {
    this.send(body);
    this.done();
  }

  done(): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    this.res.write('data: [DONE]\n\n');
    this.res.end();
  }
}
