import { LscError } from '../../compiler/errors.js';
import { CancelledError, QueueFullError } from './errors.js';

/** Default bound on requests waiting for a model (a server turns more into 429s). */
export const DEFAULT_MAX_QUEUED = 64;

interface Waiter {
  grant: () => void;
  refuse: (e: unknown) => void;
}

/**
 * Who may use a model's GPU state now. A generation's KV cache, activation rows and token
 * buffer live in buffers every call shares, so one holder at a time keeps concurrent calls
 * exact; the rest wait in arrival order, at most `maxQueued` of them, and a waiter whose
 * signal aborts leaves the line without ever holding the model.
 */
export class ModelQueue {
  private held = false;
  private readonly waiting: Waiter[] = [];

  constructor(readonly maxQueued = DEFAULT_MAX_QUEUED) {
    if (!Number.isSafeInteger(maxQueued) || maxQueued < 0) {
      throw new LscError(`maxQueued must be a non-negative integer, got ${String(maxQueued)}`);
    }
  }

  /** Requests waiting now (not counting the one holding the model). */
  get queued(): number {
    return this.waiting.length;
  }

  /** True while a call holds the model. */
  get busy(): boolean {
    return this.held;
  }

  /**
   * Waits for the model; the returned function gives it back (once). A full line refuses at
   * once with QueueFullError; an aborted signal with CancelledError.
   */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw new CancelledError();
    if (this.held) {
      if (this.waiting.length >= this.maxQueued) throw new QueueFullError(this.maxQueued);
      await new Promise<void>((grant, refuse) => {
        const w: Waiter = { grant, refuse };
        this.waiting.push(w);
        signal?.addEventListener('abort', () => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) {
            this.waiting.splice(i, 1);
            refuse(new CancelledError());
          }
        }, { once: true });
      });
    }
    this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next.grant(); // held passes straight to the next in line
      else this.held = false;
    };
  }

  /** Runs `work` holding the model. */
  async run<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** A generator that holds the model from its first step to its end (or its return()). */
  async *hold<Y, R>(make: () => AsyncGenerator<Y, R>, signal?: AbortSignal): AsyncGenerator<Y, R> {
    const release = await this.acquire(signal);
    try {
      return yield* make();
    } finally {
      release();
    }
  }
}
