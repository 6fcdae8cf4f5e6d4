/**
 * Assertions for loads that must fail: an LscError naming what and where in one line, and no
 * GPU buffer left behind (bad-input.test.ts, hardening-loader.test.ts).
 */
import assert from 'node:assert/strict';
import { LscError } from '../../compiler/errors.js';
import { LscModel, type LoadOptions } from '../../runtime/model.js';
import type { GpuContext } from '../../runtime/device.js';

/** GPU buffers created and not destroyed while `run` runs (their labels). */
export async function liveBuffersAfter(gpu: GpuContext, run: () => Promise<unknown>): Promise<string[]> {
  const device = gpu.device;
  const live = new Map<GPUBuffer, string>();
  const create = device.createBuffer;
  device.createBuffer = function (desc: GPUBufferDescriptor): GPUBuffer {
    const buf = create.call(device, desc);
    live.set(buf, desc.label ?? `${desc.size} bytes`);
    const destroy = buf.destroy;
    buf.destroy = function (): undefined { live.delete(buf); return destroy.call(buf); };
    return buf;
  };
  try {
    await run();
  } finally {
    device.createBuffer = create;
  }
  return [...live.values()];
}

export interface Where { message: RegExp; tensor?: string; file?: string; pointer?: string; hint?: RegExp }

/** e is an LscError matching `want`, whose format() is one line. */
export function checkError(e: unknown, want: Where): LscError {
  assert.ok(e instanceof LscError, `expected an LscError, got ${(e as Error)?.stack ?? String(e)}`);
  assert.match(e.message, want.message);
  if ('tensor' in want) assert.equal(e.where.tensor, want.tensor, `tensor of: ${e.message}`);
  if ('file' in want) assert.equal(e.where.file, want.file, `file of: ${e.message}`);
  if ('pointer' in want) assert.equal(e.where.pointer, want.pointer, `pointer of: ${e.message}`);
  if (want.hint) assert.match(e.hint ?? '', want.hint);
  assert.doesNotMatch(e.format(), /\n/);
  return e;
}

/** Runs a load that must fail with `want`, and checks that it left no GPU buffer behind. */
export async function expectLoadError(gpu: GpuContext, dir: string, opts: LoadOptions, want: Where): Promise<LscError> {
  let error: unknown;
  const leaked = await liveBuffersAfter(gpu, async () => {
    try {
      const m = await LscModel.load(dir, { gpu, ...opts });
      m.dispose();
    } catch (e) {
      error = e;
    }
  });
  assert.ok(error !== undefined, `loading ${dir} succeeded, expected ${want.message}`);
  assert.deepEqual(leaked, [], 'GPU buffers left allocated by the failed load');
  return checkError(error, want);
}
