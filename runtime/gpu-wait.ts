/**
 * dawn.node resolves mapAsync/onSubmittedWorkDone by polling on the JS thread: while a GPU promise
 * is pending it queues a setImmediate tick per event-loop turn, each making a new native function
 * (V8 maps, global handles, garbage, page faults). Left alone that spins a core for as long as the
 * GPU works; on a 2-core machine running lavapipe that core is a third of the "GPU" (at 7B size the
 * main thread took ~560 ms of CPU per 750 ms token, BENCHMARKS.md "Time outside the kernels at 7B
 * size"). So a wait blocks the thread (Atomics.wait, no spinning) between single
 * event-loop turns: first for most of the time that submissions of the same shape took before,
 * then in slices that grow with the time waited (2 % of it, at most 4 ms), so the wake-up lags the
 * GPU by little and a 7B-size token on lavapipe takes ~100 ticks, not a busy loop.
 */
/**
 * Atomics.wait may block only where the thread allows it: Node's main thread does, a browser
 * page's does not (it throws), and there the browser's own event loop resolves GPU promises anyway.
 */
const canBlock = typeof globalThis.process?.versions?.node === 'string';

/** Slices between ticks: this fraction of the time waited so far, within [MIN_SLICE_MS, MAX_SLICE_MS]. */
const SLICE_FRACTION = 0.02;
const MIN_SLICE_MS = 0.05;
const MAX_SLICE_MS = 4;

/** One event-loop turn: the setImmediate ticks queued before it (dawn.node's) run first. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class GpuWaiter {
  private readonly samples = new Map<string, number[]>();
  /** Made on first use: a page that is not cross-origin isolated has no SharedArrayBuffer. */
  private cell?: Int32Array;
  /** Event-loop turns taken while waiting (each one dawn.node tick), for profiles. */
  turns = 0;

  constructor(private readonly fraction = 0.7, private readonly keep = 8) {}

  /** `LSC_GPU_WAIT=poll`: dawn.node's own polling, no blocking (to compare against). */
  private get blocks(): boolean {
    return canBlock && globalThis.process?.env.LSC_GPU_WAIT !== 'poll';
  }

  private block(ms: number): void {
    Atomics.wait(this.cell ??= new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  }

  /**
   * Waits for `done`, a GPU promise of a submission of shape `signature` made just now, and
   * records how long it took.
   */
  async wait<T>(signature: string, done: Promise<T>): Promise<T> {
    const t0 = performance.now();
    if (this.blocks) {
      let settled = false;
      const seen = (): void => { settled = true; };
      done.then(seen, seen);
      this.sleep(signature);
      for (;;) {
        await turn();
        this.turns++;
        if (settled) break;
        this.block(Math.min(MAX_SLICE_MS, Math.max(MIN_SLICE_MS, (performance.now() - t0) * SLICE_FRACTION)));
      }
    }
    const out = await done;
    this.record(signature, performance.now() - t0);
    return out;
  }

  /**
   * Sleeps for the expected part of a submission of this shape: a fraction of the fastest recent
   * one. Not a median: a first run that compiled the driver's shaders can take seconds, and
   * sleeping that long on every later run costs far more than polling a little longer.
   */
  sleep(signature: string): void {
    const s = this.samples.get(signature);
    if (!s || s.length < 2 || !this.blocks) return;
    const ms = Math.min(...s) * this.fraction;
    if (ms >= MIN_SLICE_MS) this.block(ms);
  }

  record(signature: string, ms: number): void {
    let s = this.samples.get(signature);
    if (!s) this.samples.set(signature, (s = []));
    s.push(ms);
    if (s.length > this.keep) s.shift();
  }
}
