import os from 'node:os';
import { LscError } from '../../compiler/errors.js';

/** Most sequences a model holds by default (more: LoadOptions.sequences). */
export const DEFAULT_MAX_SEQUENCES = 16;

/**
 * Sequences a model's KV cache holds when the caller does not say: up to DEFAULT_MAX_SEQUENCES,
 * as many as fit (1) one layer's buffer in the binding limit and (2) a KV budget. WebGPU does
 * not report an adapter's memory, so the budget is an eighth of system memory on a CPU adapter
 * (lavapipe: GPU memory is system memory) and 1 GiB elsewhere. Never less than 1.
 */
export function defaultSequences(o: { slotBytesPerLayer: number; layers: number; maxBinding: number; isCpu: boolean }): number {
  const budget = o.isCpu ? os.totalmem() / 8 : 2 ** 30;
  const byBinding = Math.floor(o.maxBinding / o.slotBytesPerLayer);
  const byBudget = Math.floor(budget / (o.slotBytesPerLayer * o.layers));
  return Math.max(1, Math.min(DEFAULT_MAX_SEQUENCES, byBinding, byBudget));
}

/** LoadOptions.sequences as the library takes it. */
export function checkSequences(n: unknown): asserts n is number | undefined {
  if (n !== undefined && (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > 4096)) {
    throw new LscError(`sequences must be an integer in 1..4096, got ${JSON.stringify(n)}`);
  }
}

/** LoadOptions.speculationMaxBatch: undefined or a positive integer. */
export function checkSpeculationMaxBatch(n: unknown): asserts n is number | undefined {
  if (n !== undefined && (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1)) {
    throw new LscError(`speculation max batch must be a positive integer, got ${JSON.stringify(n)}`);
  }
}
