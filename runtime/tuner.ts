import type { Plan, PlanDispatch } from '../compiler/plan.js';
import type { Tunable } from '../compiler/passes/schedule.js';
import { familyNamed } from '../codegen/registry.js';
import type { Executor } from './executor.js';
import { timeKernel } from './kernel-timer.js';
import { configId, recordId, type TuningRecord } from './tuning-db.js';

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
  /** Date.now() by which measuring ends: none starts that would, at the average pace so far, end later (one in flight finishes). */
  deadline?: number;
  /** A measurement still running this long past the deadline is abandoned (not recorded); default 5000. */
  overrunMs?: number;
  /** Records already measured on this adapter (by recordId): not measured again. */
  known?: Map<string, TuningRecord>;
  /** Called with each record right after its measurement, so an interrupted run keeps it. */
  onRecord?: (r: TuningRecord) => void;
  onEvent?: (e: TuneEvent) => void;
}

/** Progress of a tuning run, for a progress bar or a log. */
export type TuneEvent =
  | { type: 'plan'; shapes: number; total: number; skipped: number }
  | { type: 'measure'; family: Tunable['family']; key: string; config: Record<string, number>; done: number; total: number }
  | { type: 'measured'; family: Tunable['family']; key: string; config: Record<string, number>; ms: number; done: number; total: number }
  | { type: 'shape'; result: TuneResult };

export interface TuneResult {
  key: string;
  family: Tunable['family'];
  best: Record<string, number>;
  /** Infinity when no configuration was timed (all failed, or the budget ran out). */
  bestMs: number;
  /** The compiler's configuration; NaN when it was never timed (budget). */
  defaultMs: number;
  /** Configurations measured in this run. */
  tried: number;
  /** Configurations already in the database for this adapter (their times count for best). */
  skipped: number;
  /** Configurations left unmeasured because the budget ran out. */
  untried: number;
  /** The configuration whose measurement overran the budget and was given up (counted in untried). */
  abandoned?: Record<string, number>;
}

/** Configurations worth trying: each family's curated grid (codegen/families/*) rather than the full product. */
export function candidates(t: Tunable, subgroupSize = 0): Record<string, number>[] {
  return familyNamed(t.family).candidates?.(subgroupSize) ?? [];
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

const ABANDONED = Symbol('abandoned');

/** The measurement, or ABANDONED if it is still running at `until` (Date.now() ms). */
async function withinBudget(measurement: Promise<number>, until: number | undefined): Promise<number | typeof ABANDONED> {
  if (until === undefined) return measurement;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof ABANDONED>((resolve) => { timer = setTimeout(() => resolve(ABANDONED), Math.max(0, until - Date.now())); });
  try {
    return await Promise.race([measurement, late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function tune(ex: Executor, tunables: Tunable[], adapter: string, o: TuneOptions = {}): Promise<{ results: TuneResult[]; records: TuningRecord[]; inFlight?: Promise<void> }> {
  const rows = (o.rows ?? [1, 4]).filter((r) => r <= ex.plan.rows.max);
  const position = o.position ?? Math.min(Math.floor(ex.plan.dims.ctx / 4), 256);
  const results: TuneResult[] = [];
  const records: TuningRecord[] = [];
  const date = new Date().toISOString();
  // the work list first, so progress has a total and resumed configurations are counted up front
  const shapes = tunables.flatMap((t) => {
    const disp = representative(ex.plan, t);
    if (!disp) return [];
    const configs = [t.config, ...candidates(t, o.subgroupSize).filter((c) => configId(c) !== configId(t.config))];
    return [{ t, disp, configs, known: configs.map((c) => o.known?.get(recordId(t.key, c, rows))) }];
  });
  const total = shapes.reduce((n, s) => n + s.known.filter((k) => !k).length, 0);
  o.onEvent?.({ type: 'plan', shapes: shapes.length, total, skipped: shapes.reduce((n, s) => n + s.known.filter(Boolean).length, 0) });
  let done = 0;
  let spentMs = 0;
  let abandoned = false;
  let inFlight: Promise<void> | undefined;
  for (const { t, disp, configs, known } of shapes) {
    const score = async (cfg: Record<string, number>): Promise<number> => {
      let sum = 0;
      for (const r of rows) {
        const src = (() => { try { return t.emit(cfg); } catch { return undefined; } })();
        if (!src) return Infinity;
        sum += await timeKernel(ex, src, disp, r, { posBase: Math.min(position, ex.plan.dims.ctx - r) });
        if (!Number.isFinite(sum)) return Infinity;
      }
      return sum;
    };
    let best = { cfg: t.config, ms: Infinity };
    let defaultMs = NaN;
    let tried = 0;
    let untried = 0;
    let abandonedCfg: Record<string, number> | undefined;
    for (const [i, cfg] of configs.entries()) {
      let ms: number;
      const rec = known[i];
      if (rec) {
        ms = rec.ms ?? Infinity;
      } else if (abandoned || (o.deadline !== undefined && Date.now() + (done ? spentMs / done : 0) > o.deadline)) {
        // at the pace so far this measurement would end past the budget: leave it to a rerun
        untried++;
        continue;
      } else {
        o.onEvent?.({ type: 'measure', family: t.family, key: t.key, config: cfg, done, total });
        const t0 = Date.now();
        const measurement = score(cfg);
        const m = await withinBudget(measurement, o.deadline === undefined ? undefined : o.deadline + (o.overrunMs ?? 5000));
        spentMs += Date.now() - t0;
        if (m === ABANDONED) {
          // a first compile can take half a minute on a CPU driver: the budget wins, a rerun measures it
          abandoned = true;
          abandonedCfg = cfg;
          inFlight = measurement.then(() => undefined, () => undefined);
          untried++;
          continue;
        }
        ms = m;
        const r: TuningRecord = { adapter, key: t.key, family: t.family, config: cfg, ms: Number.isFinite(ms) ? ms : null, rows, date };
        records.push(r);
        o.onRecord?.(r);
        tried++;
        done++;
        o.onEvent?.({ type: 'measured', family: t.family, key: t.key, config: cfg, ms, done, total });
      }
      if (i === 0) defaultMs = ms;
      if (ms < best.ms) best = { cfg, ms };
    }
    const result: TuneResult = { key: t.key, family: t.family, best: best.cfg, bestMs: best.ms, defaultMs, tried, skipped: known.filter(Boolean).length, untried, ...(abandonedCfg ? { abandoned: abandonedCfg } : {}) };
    results.push(result);
    o.onEvent?.({ type: 'shape', result });
  }
  // an abandoned measurement still holds the device (its compile cannot be cancelled): the caller waits for this before destroying it
  return { results, records, inFlight };
}
