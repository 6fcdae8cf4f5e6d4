import type { FusedKernel } from '../compiler/ir/kernel.js';
import type { KernelFamily } from './family.js';
import { embedFamily } from './families/embed.js';
import { matmulFamily } from './families/matmul.js';
import { attentionFamily } from './families/attention.js';
import { argmaxFamily } from './families/argmax.js';
import { rmsNormFamily } from './families/rms-norm.js';

/** Every kernel family lsc can emit, one line each (see codegen/family.ts for what a family owns). */
export const FAMILIES: readonly KernelFamily[] = [
  embedFamily,
  matmulFamily,
  attentionFamily,
  argmaxFamily,
  rmsNormFamily,
];

/** The family of a fused kernel. */
export function familyOf<K extends FusedKernel>(k: K): KernelFamily<K> {
  return familyNamed(k.family) as unknown as KernelFamily<K>;
}

export function familyNamed(name: string): KernelFamily {
  const f = FAMILIES.find((x) => x.name === name);
  if (!f) throw new Error(`internal: no kernel family '${name}'`);
  return f;
}

/** Families whose configuration `lsc tune` varies. */
export const TUNABLE_FAMILIES: readonly string[] = FAMILIES.filter((f) => f.candidates).map((f) => f.name);

/** The family that runs `op` as a kernel of its own, if any. */
export function standaloneFamily(op: string): KernelFamily | undefined {
  return FAMILIES.find((f) => f.standalone.includes(op) && f.fromNode);
}

/**
 * Kernels of the plan that no graph node asks for: the greedy acceptance kernels, which chained
 * speculation rounds run after verify, one sequence's or the batch engine's, and the draft stop's
 * gate and acceptance kernels (the compiler adds them to every plan).
 */
export { acceptKernel, acceptStateBytes } from './accept.js';
export { batchAcceptKernel, batchAcceptStateBytes } from './batch-accept.js';
export { acceptStopKernel, draftGateBytes, draftGateKernel } from './draft-gate.js';
