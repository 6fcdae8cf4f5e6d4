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

  it('wait() returns the promise\'s value soon after it settles, in few event-loop turns, and records the sample', async () => {
    const w = new GpuWaiter(0.85);
    const t0 = performance.now();
    const v = await w.wait('a', new Promise<number>((resolve) => setTimeout(() => resolve(7), 40)));
    const ms = performance.now() - t0;
    assert.equal(v, 7);
    assert.ok(ms >= 39 && ms < 200, `waited ${ms} ms for a 40 ms promise`);
    // slices of 0.05 ms up to 2.5 ms waited, then 2 % of the time waited: ~170 turns at most by
    // 40 ms; dawn.node's own polling would take one per event-loop turn (thousands)
    assert.ok(w.turns > 0 && w.turns < 250, `${w.turns} turns`);
    w.record('a', 40);
    const t1 = performance.now();
    await w.wait('a', Promise.resolve(0)); // two samples of ~40 ms: sleeps ~34 ms first
    assert.ok(performance.now() - t1 >= 30, 'slept for the expected part');
  });

  it('wait() passes a rejection on', async () => {
    const w = new GpuWaiter();
    await assert.rejects(w.wait('a', Promise.reject(new Error('device lost'))), /device lost/);
  });
});
