import './gpu-globals.js';
import type { BindingDecl } from '../compiler/ir/kernel.js';
import { bindGroupLayout } from './bind-layout.js';

/** A kernel that the device cannot compile (a codegen bug, or a corrupted artifact). */
export class KernelCompileError extends Error {
  constructor(readonly kernel: string, detail: string) {
    super(`kernel ${kernel} failed to compile: ${detail}`);
    this.name = 'KernelCompileError';
  }
}

export interface KernelToCompile {
  id: string;
  wgsl: string;
  bindings: readonly Pick<BindingDecl, 'type'>[];
}

/**
 * Compute pipelines for kernels, by id; throws KernelCompileError with the compiler's messages.
 * Modules are created one by one, each in its own error scope (scopes are a single stack per
 * device), then every pipeline is created at once.
 */
export async function compilePipelines(device: GPUDevice, kernels: readonly KernelToCompile[]): Promise<Map<string, GPUComputePipeline>> {
  const modules = kernels.map((k) => {
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: k.wgsl, label: k.id });
    return { k, module, scope: device.popErrorScope() };
  });
  for (const { k, module, scope } of modules) {
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    const scoped = await scope;
    if (errors.length || scoped) {
      throw new KernelCompileError(k.id, errors.length ? errors.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ') : scoped!.message);
    }
  }
  const out = new Map<string, GPUComputePipeline>();
  await Promise.all(modules.map(async ({ k, module }) => {
    try {
      out.set(k.id, await device.createComputePipelineAsync({
        label: k.id,
        layout: device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout(device, k.bindings, k.id)] }),
        compute: { module, entryPoint: 'main' },
      }));
    } catch (e) {
      throw new KernelCompileError(k.id, (e as Error).message);
    }
  }));
  return out;
}
