import './gpu-globals.js';
import { RANGE_BYTES } from '../codegen/kernel.js';
import type { BindingDecl } from '../compiler/ir/kernel.js';

/**
 * The bind-group layout of a kernel's bindings (codegen/kernel.ts), the one definition the
 * executor, the tuner's kernel timing, the acceptance kernel and the kernel test harness share:
 * the range uniform is bound at a static offset, one bind group per range slot (dynamic offsets
 * cost lavapipe ~30 µs a dispatch); params is a small uniform; the rest are storage buffers.
 */
export function bindGroupLayout(device: GPUDevice, bindings: readonly Pick<BindingDecl, 'type'>[], label?: string): GPUBindGroupLayout {
  return device.createBindGroupLayout({
    label,
    entries: bindings.map((b, i) => ({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      buffer: b.type === 'range' ? { type: 'uniform', minBindingSize: RANGE_BYTES }
        : b.type === 'params' || b.type === 'seq' ? { type: 'uniform' }
          : { type: b.type === 'read' ? 'read-only-storage' : 'storage' },
    })),
  });
}
