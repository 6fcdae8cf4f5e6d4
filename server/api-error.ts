import { LscError, isLscError } from '../compiler/errors.js';
import { QueueFullError } from '../runtime/batch/errors.js';

/** OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/**
 * An error the server answers with a status and an OpenAI-style body. Thrown by request
 * handling (bad body, bad key, unknown route); apiError() turns anything else into one.
 */
export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly type: string, readonly param: string | null = null,
    readonly code: string | null = null, readonly headers: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
  }

  get body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 for a request the server cannot take as written. */
export const badRequest = (message: string, param: string | null = null, code: string | null = null): ApiError =>
  new ApiError(400, message, 'invalid_request_error', param, code);

/** Seconds a client told "queue full" waits before retrying. */
export const RETRY_AFTER_S = 1;

/**
 * What the server answers for an error thrown while serving a request: its own ApiErrors as
 * they are; a full queue 429 with Retry-After; any other LscError (a user-fixable problem,
 * worded as the CLI prints it) 400; anything else is a bug: 500, and `onBug` logs it.
 */
export function apiError(e: unknown, onBug: (e: unknown) => void): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QueueFullError) {
    return new ApiError(429, e.format(), 'rate_limit_error', null, e.code, { 'Retry-After': String(RETRY_AFTER_S) });
  }
  // the library's errors do not name API fields: param stays null (the message names the option)
  if (isLscError(e)) return badRequest((e as LscError).format());
  onBug(e);
  return new ApiError(500, 'internal server error (a bug in lsc; the server logged it)', 'server_error', null, 'internal_error');
}

