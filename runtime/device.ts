import './gpu-globals.js';
import { create } from 'webgpu';
import { LscError } from '../compiler/errors.js';
import { deviceLimits, requiredLimits, type DeviceLimits } from './plan-fit.js';

export { checkPlanFits, planLimits } from './plan-fit.js';

/** The fix printed whenever no adapter can be had. */
export const NO_ADAPTER_HINT = 'install a Vulkan driver: run `bash scripts/setup.sh` (Mesa lavapipe on a machine without a GPU)';

export interface GpuContext {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  features: Set<string>;
  /** A CPU implementation (Mesa lavapipe / llvmpipe, SwiftShader): host memory, few cores. */
  isCpu: boolean;
  limits: DeviceLimits;
  /** Destroys the device and lets node exit. */
  dispose(): void;
}

export interface DeviceOptions {
  /** Extra dawn.node flags, e.g. "adapter=NVIDIA" or "backend=vulkan". */
  flags?: string[];
  /**
   * Worker threads of Mesa's CPU driver (lavapipe), used when LP_NUM_THREADS is not set: 0 runs
   * shaders on the driver's queue thread, which saves ~25 µs of fork/join per dispatch and wins
   * for small models. Read once, when the process first loads the Vulkan driver.
   */
  cpuDriverThreads?: number;
  /**
   * Open the device without `shader-f16` even where the adapter has it (also LSC_NO_SHADER_F16=1):
   * the path of adapters without it (f32 KV cache), e.g. to test it on an adapter that has f16.
   */
  noShaderF16?: boolean;
}

/**
 * Opens the adapter with the limits and features lsc needs requested explicitly (a plain
 * requestDevice() gets the spec defaults: 128 MiB bindings, 8 storage buffers per stage).
 */
export async function openDevice(opts: DeviceOptions = {}): Promise<GpuContext> {
  if (opts.cpuDriverThreads !== undefined && process.env.LP_NUM_THREADS === undefined) {
    process.env.LP_NUM_THREADS = String(opts.cpuDriverThreads);
  }
  // f16 on NVIDIA's Vulkan driver is behind a Dawn toggle
  let gpu: GPU | undefined = create([`enable-dawn-features=${['vulkan_enable_f16_on_nvidia', ...(process.env.LSC_DAWN_TOGGLES ? process.env.LSC_DAWN_TOGGLES.split(',') : [])].join(',')}`, ...(opts.flags ?? [])]);
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new LscError(`no WebGPU adapter: ${(e as Error).message}`, {}, NO_ADAPTER_HINT);
  }
  if (!adapter) {
    gpu = undefined;
    throw new LscError('no WebGPU adapter found (Dawn found no Vulkan driver it can use)', {}, NO_ADAPTER_HINT);
  }
  const al = adapter.limits;
  const noF16 = opts.noShaderF16 ?? process.env.LSC_NO_SHADER_F16 === '1';
  const wanted = [...(noF16 ? [] : ['shader-f16']), 'subgroups', 'timestamp-query'] as GPUFeatureName[];
  const requiredFeatures = wanted.filter((f) => adapter!.features.has(f));
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: requiredLimits(al),
  });
  let lost = false;
  device.lost.then((info) => {
    if (!lost && info.reason !== 'destroyed') process.stderr.write(`lsc: GPU device lost: ${info.message}\n`);
  });
  const info = adapter.info;
  const dl = device.limits;
  return {
    device,
    adapterInfo: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description },
    features: new Set([...device.features] as string[]),
    isCpu: /llvmpipe|lavapipe|swiftshader|software/i.test(`${info.vendor} ${info.architecture} ${info.description}`),
    limits: deviceLimits(dl),
    dispose() {
      lost = true;
      device.destroy();
      gpu = undefined;
    },
  };
}
