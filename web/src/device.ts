/** The page's WebGPU device, as the runtime's GpuContext (runtime/device.ts opens Node's). */
import { LscError } from '../../compiler/errors.js';
import type { GpuContext } from '../../runtime/device.js';
import { isCpuAdapter } from '../../runtime/weights.js';
import { deviceLimits, requiredLimits } from '../../runtime/plan-fit.js';

const HINT_WEBGPU = 'use a browser with WebGPU (Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows) on an https or localhost page';

export async function openBrowserDevice(): Promise<GpuContext> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new LscError('this browser has no WebGPU (navigator.gpu is missing)', {}, HINT_WEBGPU);
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new LscError(`no WebGPU adapter: ${(e as Error).message}`, {}, HINT_WEBGPU);
  }
  if (!adapter) throw new LscError('no WebGPU adapter: the browser offers none (GPU blocked, or WebGPU disabled)', {}, HINT_WEBGPU);
  const al = adapter.limits;
  // shader-f16 where there is one (the f16 KV cache); without it the f32 plan runs
  const requiredFeatures = (['shader-f16', 'subgroups'] as GPUFeatureName[]).filter((f) => adapter!.features.has(f));
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: requiredLimits(al),
  });
  const info = adapter.info ?? { vendor: '', architecture: '', device: '', description: '' };
  const adapterInfo = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description };
  const dl = device.limits;
  return {
    device,
    adapterInfo,
    features: new Set([...device.features] as string[]),
    isCpu: isCpuAdapter(adapterInfo) || (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true,
    limits: deviceLimits(dl),
    dispose() { device.destroy(); },
  };
}
