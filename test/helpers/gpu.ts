import { openDevice, type GpuContext } from '../../runtime/device.js';

/**
 * One WebGPU device for the whole test run (dawn.node allows one device per adapter, and
 * opening one costs ~0.5 s). Disposed by the root hook in test/hooks.ts.
 */
let shared: Promise<GpuContext> | undefined;

export function testGpu(): Promise<GpuContext> {
  shared ??= openDevice();
  return shared;
}

export async function disposeTestGpu(): Promise<void> {
  if (!shared) return;
  const g = await shared.catch(() => undefined);
  shared = undefined;
  g?.dispose();
}
