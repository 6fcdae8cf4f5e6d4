/**
 * dawn.node resolves mapAsync/onSubmittedWorkDone by polling on the JS thread (setImmediate
 * ticks), which keeps a CPU core busy for as long as the GPU works; on a 2-core machine running
 * lavapipe that core is half of the "GPU". So after a submit we first block-sleep (Atomics.wait,
 * no spinning) for most of the time that submissions of the same shape took before, then poll.
 */
/**
 * Atomics.wait may block only where the thread allows it: Node's main thread does, a browser
 * page's does not (it throws), and there the browser's own event loop resolves GPU promises anyway.
 */
const canBlock = typeof globalThis.process?.versions?.node === 'string';

export class GpuWaiter {
  private readonly samples = new Map<string, number[]>();
  /** Made on first use: a page that is not cross-origin isolated has no SharedArrayBuffer. */
  private cell?: Int32Array;

  constructor(private readonly fraction = 0.85, private readonly keep = 8) {}

  /**
   * Sleeps for the expected part of a submission of this shape: a fraction of the fastest recent
   * one. Not a median: a first run that compiled the driver's shaders can take seconds, and
   * sleeping that long on every later run costs far more than polling a little longer.
   */
  sleep(signature: string): void {
    const s = this.samples.get(signature);
    if (!s || s.length < 2 || !canBlock || globalThis.process?.env.LSC_GPU_WAIT === "poll") return;
    const ms = Math.min(...s) * this.fraction;
    if (ms >= 0.05) Atomics.wait(this.cell ??= new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  }

  record(signature: string, ms: number): void {
    let s = this.samples.get(signature);
    if (!s) this.samples.set(signature, (s = []));
    s.push(ms);
    if (s.length > this.keep) s.shift();
  }
}
