/** Whether a plan fits an adapter: pure checks shared by the Node device (device.ts) and the browser's (web/). */
import { LscError } from '../compiler/errors.js';
import type { PlanLimits } from '../compiler/plan.js';

/** What the runtime reads of a device's limits: a plan's, and the offset alignments of bind groups. */
export type DeviceLimits = PlanLimits & { minUniformBufferOffsetAlignment: number; minStorageBufferOffsetAlignment: number };

export function deviceLimits(dl: GPUSupportedLimits): DeviceLimits {
  return {
    maxStorageBufferBindingSize: dl.maxStorageBufferBindingSize,
    maxStorageBuffersPerShaderStage: dl.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: dl.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: dl.maxComputeInvocationsPerWorkgroup,
    maxBufferSize: dl.maxBufferSize,
    minUniformBufferOffsetAlignment: dl.minUniformBufferOffsetAlignment,
    minStorageBufferOffsetAlignment: dl.minStorageBufferOffsetAlignment,
  };
}

/** The adapter's own limits for what plans use: a device asks for all of them (Node and the browser alike). */
export function requiredLimits(al: GPUSupportedLimits): Record<string, number> {
  return {
    maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
    maxBufferSize: al.maxBufferSize,
    maxStorageBuffersPerShaderStage: al.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: al.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: al.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: al.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupsPerDimension: al.maxComputeWorkgroupsPerDimension,
  };
}

/** The limits a plan compiled for this device may use. */
export function planLimits(gpu: { limits: PlanLimits }): PlanLimits {
  const l = gpu.limits;
  return {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxBufferSize: l.maxBufferSize,
  };
}

/** Checks that a plan fits this device, before anything is allocated. */
export function checkPlanFits(limits: PlanLimits, features: ReadonlySet<string>, plan: {
  limits: PlanLimits; features: string[]; buffers: { bytes: number; id: string }[];
}): void {
  for (const f of plan.features) {
    if (!features.has(f)) {
      throw new LscError(`this adapter lacks the '${f}' feature the plan needs`, {},
        f === 'shader-f16' ? 'compile the graph with dtypes.kv = "f32"' : undefined);
    }
  }
  const keys: (keyof PlanLimits)[] = ['maxStorageBufferBindingSize', 'maxStorageBuffersPerShaderStage',
    'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'];
  for (const key of keys) {
    if (plan.limits[key] > limits[key]) {
      throw new LscError(`the plan was compiled for ${key} = ${plan.limits[key]}, this adapter allows ${limits[key]}`, {},
        'recompile the artifact with lsc compile (it targets WebGPU\'s default limits, which every adapter allows), or run without --plan to compile for this adapter');
    }
  }
  const big = plan.buffers.find((b) => b.bytes > limits.maxBufferSize);
  if (big) {
    throw new LscError(`buffer ${big.id} needs ${big.bytes} bytes; this adapter's maxBufferSize is ${limits.maxBufferSize}`, {},
      'use a smaller --ctx or a GPU with larger buffers');
  }
}
