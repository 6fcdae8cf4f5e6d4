import { LscError } from '../../compiler/errors.js';

/**
 * More requests wait for a model than its queue holds. A server answers it with 429 (Too Many
 * Requests): `code` says which refusal it is without matching on the message.
 */
export class QueueFullError extends LscError {
  readonly code = 'queue-full';
  constructor(readonly limit: number) {
    super(`${limit} requests are already waiting for this model`, {}, 'retry later, or load the model with a larger maxQueued');
    this.name = 'QueueFullError';
  }
}

/** A request cancelled (AbortSignal or run.cancel()) before it got the model. */
export class CancelledError extends LscError {
  readonly code = 'cancelled';
  constructor() {
    super('the request was cancelled before it started');
    this.name = 'CancelledError';
  }
}
