import { LscError } from '../compiler/errors.js';

/**
 * Stop strings on streamed text: text is released only once no stop string can still start in
 * it, and everything from the first stop string on is dropped. The concatenation of what push
 * and flush return is exactly the text up to (excluding) the first stop string.
 */
export class StopFilter {
  private full = '';
  private emitted = 0;
  stopped = false;

  constructor(private readonly stops: string[]) {
    if (stops.some((s) => s.length === 0)) throw new Error('internal: empty stop string');
  }

  /** All text released so far. */
  get text(): string {
    return this.full.slice(0, this.emitted);
  }

  push(delta: string): string {
    if (this.stopped) return '';
    this.full += delta;
    const longest = Math.max(0, ...this.stops.map((s) => s.length));
    const from = Math.max(0, this.emitted - longest + 1);
    let cut = -1;
    for (const s of this.stops) {
      const i = this.full.indexOf(s, from);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stopped = true;
      return this.release(Math.max(cut, this.emitted));
    }
    // hold back a tail that may be the start of a stop string
    let hold = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.full.length); n > hold; n--) {
        if (this.full.endsWith(s.slice(0, n))) { hold = n; break; }
      }
    }
    return this.release(this.full.length - hold);
  }

  /** End of generation: releases what was held back (unless a stop string was found). */
  flush(delta = ''): string {
    const out = this.push(delta);
    return this.stopped ? out : out + this.release(this.full.length);
  }

  private release(end: number): string {
    if (end <= this.emitted) return '';
    const out = this.full.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }
}

/** Stop strings as the library takes them: a list of non-empty strings (an empty one would match at once). */
export function checkStopStrings(stop: unknown): asserts stop is string[] | undefined {
  if (stop === undefined) return;
  if (!Array.isArray(stop)) throw new LscError(`stop must be a list of strings, got ${JSON.stringify(stop)}`, {}, 'pass stop: ["\\n\\n"], for example');
  const i = stop.findIndex((s) => typeof s !== 'string' || s.length === 0);
  if (i >= 0) {
    throw new LscError(`stop string ${i + 1} is ${typeof stop[i] === 'string' ? 'empty' : `not a string (${JSON.stringify(stop[i])})`}`, {},
      'give each stop string at least one character');
  }
}
