import assert from 'node:assert/strict';
import { GpuWaiter } from '../runtime/gpu-wait.js';

describe('GpuWaiter (runtime/gpu-wait.ts)', () => {
  const slept = (w: GpuWaiter, sig: string): number => {
    const t0 = performance.now();
    w.sleep(sig);
    return performance.now() - t0;
  };

  it('sleeps for part of the fastest recent submission of the same shape, not for a slow first one', () => {
    const w = new GpuWaiter(0.85);
    assert.ok(slept(w, 'a') < 5, 'no samples: no sleep');
    w.record('a', 20000); // a first run that compiled every shader
    assert.ok(slept(w, 'a') < 5, 'one sample: no sleep');
    w.record('a', 20);
    const ms = slept(w, 'a');
    assert.ok(ms >= 15 && ms < 200, `slept ${ms} ms; expected about 0.85 × 20`);
    assert.ok(slept(w, 'b') < 5, 'other shapes have their own samples');
  });

  it('keeps only recent samples', () => {
    const w = new GpuWaiter(0.85, 2);
    w.record('a', 1);
    w.record('a', 1);
    w.record('a', 30);
    w.record('a', 30); // the 1 ms samples have aged out
    const ms = slept(w, 'a');
    assert.ok(ms >= 20, `slept ${ms} ms; expected about 0.85 × 30`);
  });
});
