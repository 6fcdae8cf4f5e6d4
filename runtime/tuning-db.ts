import type { TuningChoices } from '../compiler/passes/schedule.js';
import type { GpuContext } from './device.js';

/** Tuned kernel decisions for this adapter (none stored yet: defaults apply). */
export function loadTuning(_gpu: GpuContext): Partial<TuningChoices> | undefined {
  return undefined;
}
