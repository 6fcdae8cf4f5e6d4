import type { LscModel } from './model.js';
import type { PlanEntry } from '../compiler/plan.js';
import type { RangeSymbols } from './executor.js';
import { timeDispatches } from './kernel-timer.js';

/**
 * GPU time of every dispatch of decode, draft@E and verify@E (`lsc bench --profile`), each in its
 * own timestamped pass, at position p = ctx/2 (where `lsc inspect` states bytes and FLOPs), the
 * median of a few runs. `lsc inspect --profile` colours kernels by these times; `plan` ties them
 * to the plan they were measured on.
 */
export interface KernelProfile {
  plan: { graph: string; hash: string };
  position: number;
  entries: {
    entry: string;
    rows: number;
    /** Dispatches in plan order, with the nodes they compute (which names the layer). */
    dispatches: { kernel: string; nodes: string[]; ms: number }[];
  }[];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

export async function profileKernels(model: LscModel, exitLayer: number, k: number, repeats = 5): Promise<KernelProfile | undefined> {
  const ex = model.executor;
  if (!ex.profiler.enabled) return undefined;
  const p = Math.floor(model.plan.dims.ctx / 2);
  const runs: { entry: PlanEntry; rows: number; sym: RangeSymbols }[] = [
    { entry: ex.entry('decode'), rows: 1, sym: { p, i: 0 } },
    { entry: ex.entry('draft', exitLayer), rows: 1, sym: { p, i: 0 } },
    { entry: ex.entry('verify', exitLayer), rows: k + 1, sym: { p, k } },
  ];
  const entries: KernelProfile['entries'] = [];
  for (const r of runs) {
    const times: number[][] = [];
    let order: { kernel: string; nodes: string[] }[] = [];
    for (let i = 0; i <= repeats; i++) {
      const t = await timeDispatches(ex, r.entry, r.sym);
      if (i === 0) { order = t.map((x) => ({ kernel: x.dispatch.kernel, nodes: x.dispatch.nodes })); continue; } // warm-up
      t.forEach((x, j) => (times[j] ??= []).push(x.ms));
    }
    entries.push({ entry: r.entry.name, rows: r.rows, dispatches: order.map((o, j) => ({ ...o, ms: median(times[j]) })) });
  }
  return { plan: { graph: model.plan.graph.name, hash: model.plan.graph.hash }, position: p, entries };
}
