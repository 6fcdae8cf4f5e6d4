import { LscError, pointer } from '../compiler/errors.js';
import type { Plan } from '../compiler/plan.js';
import type { KernelProfile } from '../runtime/kernel-profile.js';
import { readJsonFile } from '../runtime/model-dir.js';

/**
 * The timing overlay of `lsc inspect --profile FILE`: the per-dispatch GPU times that
 * `lsc bench --profile --json` writes (profile.kernels), checked against the plan inspected.
 */
export interface KernelTimes {
  position: number;
  entries: { entry: string; rows: number; totalMs: number; byKernel: Map<string, { count: number; ms: number }> }[];
}

const HOW = 'make it with lsc bench --model DIR --profile --json > FILE on the model you inspect (the GPU needs timestamp-query)';

export function readKernelProfile(file: string, plan: Plan): KernelTimes {
  const raw = readJsonFile(file, 'profile file') as Record<string, unknown>;
  // the whole bench report, or just its profile.kernels
  const inBench = typeof raw === 'object' && raw !== null && 'profile' in raw;
  const base = inBench ? ['profile', 'kernels'] : [];
  const kp = (inBench ? (raw.profile as Record<string, unknown> | null)?.kernels : raw) as Partial<KernelProfile> | undefined;
  const bad = (what: string, at: (string | number)[]): never => {
    throw new LscError(`profile file: ${what}`, { file, pointer: pointer(...base, ...at) }, HOW);
  };
  if (typeof kp !== 'object' || kp === null || Array.isArray(kp)) {
    return bad(inBench ? 'the report has no per-kernel times (profile.kernels; was the GPU without timestamp-query?)'
      : 'not an lsc bench --profile --json report (no profile.kernels)', []);
  }
  if (typeof kp.plan?.hash !== 'string') bad('plan.hash must be a string', ['plan', 'hash']);
  if (kp.plan!.hash !== plan.graph.hash) {
    throw new LscError(`profile file was measured on plan ${kp.plan!.hash} (graph ${String(kp.plan!.graph)}), not on this plan ${plan.graph.hash} (graph ${plan.graph.name})`,
      { file, pointer: pointer(...base, 'plan', 'hash') }, 'profile the same model, graph and --ctx you inspect');
  }
  if (typeof kp.position !== 'number' || !Number.isInteger(kp.position) || kp.position < 0) bad('position must be a non-negative integer', ['position']);
  if (!Array.isArray(kp.entries) || !kp.entries.length) bad('entries must be a non-empty array', ['entries']);
  // times go to this plan's kernels through the nodes each measured dispatch computes: bench may
  // have compiled other kernels (device limits, tuning) for the same graph
  const kernelOf = new Map(plan.entries.map((e) => [e.name, new Map(e.stages.flatMap((s) => s.dispatches.flatMap((d) => d.nodes.map((n) => [n, d.kernel] as const))))]));
  const out: KernelTimes = { position: kp.position!, entries: [] };
  kp.entries!.forEach((e, i) => {
    const nodes = kernelOf.get(e?.entry);
    if (typeof e?.entry !== 'string' || !nodes) return bad(`entry ${JSON.stringify(e?.entry)} is not an entry point of this plan`, ['entries', i, 'entry']);
    if (typeof e.rows !== 'number' || !(e.rows > 0)) bad('rows must be a positive number', ['entries', i, 'rows']);
    if (!Array.isArray(e.dispatches)) bad('dispatches must be an array', ['entries', i, 'dispatches']);
    const byKernel = new Map<string, { count: number; ms: number }>();
    let totalMs = 0;
    e.dispatches.forEach((d, j) => {
      if (!Array.isArray(d?.nodes) || !d.nodes.length || d.nodes.some((n) => typeof n !== 'string')) bad('nodes must be a non-empty array of node ids', ['entries', i, 'dispatches', j, 'nodes']);
      const kernel = nodes.get(d.nodes[0]);
      if (!kernel) bad(`node ${JSON.stringify(d.nodes[0])} is not computed by ${e.entry} in this plan`, ['entries', i, 'dispatches', j, 'nodes', 0]);
      if (typeof d.ms !== 'number' || !Number.isFinite(d.ms) || d.ms < 0) bad('ms must be a non-negative number', ['entries', i, 'dispatches', j, 'ms']);
      const k = byKernel.get(kernel!) ?? { count: 0, ms: 0 };
      k.count++;
      k.ms += d.ms;
      byKernel.set(kernel!, k);
      totalMs += d.ms;
    });
    out.entries.push({ entry: e.entry, rows: e.rows, totalMs, byKernel });
  });
  return out;
}
