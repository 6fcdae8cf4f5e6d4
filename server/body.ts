import type { IncomingMessage } from 'node:http';
import { oneLine } from '../compiler/errors.js';
import { ApiError, badRequest } from './api-error.js';

/** Default cap on a request body (a prompt of the largest context is far smaller). */
export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

/**
 * A request's JSON body: 413 past `maxBytes` (checked on Content-Length first, then while
 * reading, so a lying or absent length cannot get more in), 400 when it is not a JSON object.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const tooLarge = (): ApiError =>
    new ApiError(413, `the request body exceeds the server's limit of ${maxBytes} bytes`, 'invalid_request_error', null, 'body_too_large');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw badRequest(`the request body is not valid JSON: ${oneLine((e as Error).message)}`, null, 'invalid_json');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest(`the request body must be a JSON object, got ${Array.isArray(body) ? 'a list' : JSON.stringify(body)}`, null, 'invalid_json');
  }
  return body as Record<string, unknown>;
}
