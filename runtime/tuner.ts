import type { Plan, PlanDispatch } from '../compiler/plan.js';
import type { Tunable } from '../compiler/passes/schedule.js';
import type { Executor } from './executor.js';
import { timeKernel } from './kernel-timer.js';
import type { TuningRecord } from './tuning-db.js';

/**
 * Kernel autotuning: for each tunable kernel shape, time a list of configurations on this
 * adapter with the plan's own buffers and keep them all (the fastest wins at load time).
 * A configuration's score is its time per dispatch for one row (decode, draft) plus for
 * `rows` rows (verify): both run the same kernel, so that is the cost that matters.
 */
export interface TuneOptions {
  /** Row counts to time; default [1, 4]. */
  rows?: number[];
  /** Context position for attention timing; default min(ctx/4, 256). */
  position?: number;
  subgroupSize?: number;
  onProgress?: (line: string) => void;
}

export interface TuneResult {
  key: string;
  family: Tunable['family'];
  best: Record<string, number>;
  bestMs: number;
  defaultMs: number;
  tried: number;
}

const pow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** Configurations worth trying, by family: a curated grid rather than the full product. */
export function candidates(t: Tunable, subgroupSize = 0): Record<string, number>[] {
  if (t.family === 'argmax') return [1, 8, 32, 64, 128, 256].map((threads) => ({ threads }));
  if (t.family === 'attention') {
    const lanes = [1, 4, 8, 16].flatMap((block) => [1, 2, 4, 8].map((rows) => ({ block, ...(block > 1 ? { lanes: 1 } : {}), ...(rows > 1 ? { rows } : {}) })));
    return [...lanes, ...[16, 32, 64, 128].map((block) => ({ block }))];
  }
  const out: Record<string, number>[] = [];
  const add = (split: number, perThread: number, threads: number, rowBlock: number): void => {
    const base = { split, units: (threads / split) * perThread, perThread, rowBlock, subgroup: 0 };
    out.push(base);
    if (split > 1 && subgroupSize >= split && pow2(split)) out.push({ ...base, subgroup: 1 });
  };
  // one thread per output group (CPU drivers like this), a few split-K shapes (GPUs like these)
  for (const perThread of [1, 2, 4, 8]) for (const threads of [32, 64]) for (const rowBlock of [2, 4]) add(1, perThread, threads, rowBlock);
  for (const perThread of [1, 2]) for (const threads of [64, 128]) add(4, perThread, threads, 2);
  for (const threads of [64, 256]) for (const rowBlock of [1, 2]) add(8, 1, threads, rowBlock);
  for (const threads of [128, 256]) add(32, 1, threads, 1);
  return out;
}

function representative(plan: Plan, t: Tunable): PlanDispatch | undefined {
  const order = ['decode', ...plan.entries.map((e) => e.name)];
  for (const name of order) {
    const e = plan.entries.find((x) => x.name === name);
    const d = e?.stages.flatMap((s) => s.dispatches).find((x) => t.kernelIds.has(x.kernel));
    if (d) return d;
  }
  return undefined;
}

export async function tune(ex: Executor, tunables: Tunable[], adapter: string, o: TuneOptions = {}): Promise<{ results: TuneResult[]; records: TuningRecord[] }> {
  const rows = (o.rows ?? [1, 4]).filter((r) => r <= ex.plan.rows.max);
  const position = o.position ?? Math.min(Math.floor(ex.plan.dims.ctx / 4), 256);
  const results: TuneResult[] = [];
  const records: TuningRecord[] = [];
  const date = new Date().toISOString();
  for (const t of tunables) {
    const disp = representative(ex.plan, t);
    if (!disp) continue;
    const score = async (cfg: Record<string, number>): Promise<number> => {
      let total = 0;
      for (const r of rows) {
        const src = (() => { try { return t.emit(cfg); } catch { return undefined; } })();
        if (!src) return Infinity;
        total += await timeKernel(ex, src, disp, r, { posBase: Math.min(position, ex.plan.dims.ctx - r) });
        if (!Number.isFinite(total)) return Infinity;
      }
      return total;
    };
    const defaultMs = await score(t.config);
    let best = { cfg: t.config, ms: defaultMs };
    const tried = [t.config, ...candidates(t, o.subgroupSize).filter((c) => JSON.stringify(c) !== JSON.stringify(t.config))];
    for (const [i, cfg] of tried.entries()) {
      const ms = i === 0 ? defaultMs : await score(cfg);
      records.push({ adapter, key: t.key, family: t.family, config: cfg, ms: Number.isFinite(ms) ? ms : null, rows, date });
      if (ms < best.ms) best = { cfg, ms };
    }
    results.push({ key: t.key, family: t.family, best: best.cfg, bestMs: best.ms, defaultMs, tried: tried.length });
    o.onProgress?.(`${t.family} ${t.key.slice(0, 80)}: ${defaultMs.toFixed(3)} → ${best.ms.toFixed(3)} ms with ${JSON.stringify(best.cfg)} (${tried.length} tried)`);
  }
  return { results, records };
}
