/**
 * The plans a browser loads (`lsc web` serves them as plans.json): compiled ahead in Node for
 * WebGPU's default limits, one per KV-cache dtype and kernel target, since whether the page's
 * adapter has `shader-f16`, and whether it is a CPU driver, is known only there. Pure: the server writes it, the page (web/src) reads it.
 */
import { LscError } from '../compiler/errors.js';
import type { Plan } from '../compiler/plan.js';
import { kvDtypeFor } from './kv-dtype.js';

export interface WebPlan {
  kv: 'f16' | 'f32';
  /** Kernel defaults: for GPUs, or for CPU drivers (SwiftShader, lavapipe). */
  target: 'gpu' | 'cpu';
  plan: Plan;
  /** kernel id -> WGSL */
  wgsl: Record<string, string>;
}

export interface WebPlanFile {
  format: 'lsc-web-plans';
  version: 1;
  plans: WebPlan[];
}

/** The plan of a plans.json for an adapter (its features, and whether it is a CPU driver), checked for the parts the page relies on. */
export function pickWebPlan(file: unknown, features: ReadonlySet<string>, isCpu: boolean, url: string): { plan: Plan; wgsl: Map<string, string> } {
  const f = file as Partial<WebPlanFile> | null;
  if (!f || f.format !== 'lsc-web-plans' || f.version !== 1 || !Array.isArray(f.plans)) {
    throw new LscError('not an lsc web plan file (format lsc-web-plans, version 1)', { file: url }, 'serve the plans.json that lsc web writes for this model');
  }
  const want = kvDtypeFor(features);
  const target = isCpu ? 'cpu' : 'gpu';
  const usable = f.plans.filter((p) => p?.kv === want || (want === 'f16' && p?.kv === 'f32'));
  const chosen = usable.find((p) => p.kv === want && p.target === target) ?? usable.find((p) => p.kv === want) ?? usable[0];
  if (!chosen) {
    throw new LscError(`the plan file has no plan with a ${want} KV cache, which this adapter needs (it has ${features.has('shader-f16') ? '' : 'no '}shader-f16)`,
      { file: url }, 'regenerate it with lsc web');
  }
  const wgsl = new Map(Object.entries(chosen.wgsl ?? {}));
  const missing = chosen.plan.kernels.find((k) => !wgsl.has(k.id));
  if (missing) throw new LscError(`the plan file lacks the WGSL of kernel ${missing.id}`, { file: url }, 'regenerate it with lsc web');
  return { plan: chosen.plan, wgsl };
}
