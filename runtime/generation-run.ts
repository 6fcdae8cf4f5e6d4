import type { GenerateEvent, GenerateResult } from './generate.js';

/**
 * A generation in progress: iterate it for streamed chunks, await `result` for the whole
 * outcome (awaiting `result` without iterating runs it to the end).
 */
export class GenerationRun implements AsyncIterable<GenerateEvent> {
  private started = false;
  private readonly done: Promise<GenerateResult>;
  private settle!: { resolve: (r: GenerateResult) => void; reject: (e: unknown) => void };

  /** `cancel`: what cancel() aborts (the signal the generation watches). */
  constructor(private readonly gen: AsyncGenerator<GenerateEvent, GenerateResult>, private readonly canceller?: AbortController) {
    this.done = new Promise((resolve, reject) => { this.settle = { resolve, reject }; });
    this.done.catch(() => {}); // the error also reaches whoever iterates
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<GenerateEvent, void> {
    if (this.started) throw new Error('a GenerationRun can be iterated once');
    this.started = true;
    try {
      for (;;) {
        const r = await this.gen.next();
        if (r.done) {
          this.settle.resolve(r.value);
          return;
        }
        yield r.value;
      }
    } catch (e) {
      this.settle.reject(e);
      throw e;
    }
  }

  /**
   * Ends the generation within one step: a running one finishes with stop reason 'cancelled'
   * (its tokens so far), a waiting one fails with CancelledError. Later calls do nothing.
   */
  cancel(): void {
    this.canceller?.abort();
  }

  /** The finished generation: text, token ids and stats. */
  get result(): Promise<GenerateResult> {
    if (!this.started) {
      return (async () => {
        for await (const _ of this) { /* drain */ }
        return this.done;
      })();
    }
    return this.done;
  }
}
