import type { MatmulConfig } from './matmul.js';
import type { AttentionConfig } from './attention.js';
import type { ArgmaxConfig } from './argmax.js';

/**
 * Kernel configurations used where the tuning database has no decision. GPUs want many threads
 * per output row (coalesced loads, tree reductions); CPU drivers such as lavapipe want one thread
 * per group of outputs and few barriers. `lsc tune` replaces these per adapter.
 */
export type Target = 'gpu' | 'cpu';

export interface KernelDefaults {
  matmul: MatmulConfig;
  /** By head dimension: the register-heavy lane variants take LLVM (lavapipe) tens of seconds to compile for wide heads. */
  attention: (headDim: number) => AttentionConfig;
  argmax: ArgmaxConfig;
}

export const KERNEL_DEFAULTS: Record<Target, KernelDefaults> = {
  gpu: {
    matmul: { split: 32, units: 8, perThread: 1, rowBlock: 2, subgroup: 0 },
    attention: () => ({ block: 64 }),
    argmax: { threads: 256 },
  },
  cpu: {
    matmul: { split: 1, units: 256, perThread: 4, rowBlock: 4, subgroup: 0 },
    attention: (headDim) => (headDim <= 32 ? { block: 8, lanes: 1, rows: 4 } : { block: 64 }),
    argmax: { threads: 8 },
  },
};
