import './gpu-globals.js';
import type { Graph } from '../compiler/ir/graph.js';
import { compileGraph } from '../compiler/compile.js';
import { checkPlanFits, openDevice, planLimits, type GpuContext } from './device.js';
import { Executor } from './executor.js';
import { LscModel } from './model.js';
import { tune, type TuneOptions, type TuneResult } from './tuner.js';
import { adapterKey, appendRecords, userDbPath } from './tuning-db.js';

export interface TuneSessionOptions extends TuneOptions {
  /** Tuning database to append to (default: the user's). */
  db?: string;
  /** Only these families. */
  families?: string[];
  ctx?: number;
  gpu?: GpuContext;
}

export interface TuneSessionResult {
  adapter: string;
  db: string;
  results: TuneResult[];
}

/**
 * Tunes every kernel shape of a model (its weights loaded) or of a bare graph (zero-filled
 * weight buffers: timings do not depend on the values).
 */
export async function tuneSession(source: { modelDir: string } | { graph: Graph; file?: string }, o: TuneSessionOptions = {}): Promise<TuneSessionResult> {
  const gpu = o.gpu ?? await openDevice();
  const adapter = adapterKey(gpu);
  let executor: Executor | undefined;
  let model: LscModel | undefined;
  try {
    let tunables;
    if ('modelDir' in source) {
      model = await LscModel.load(source.modelDir, { gpu, ctx: o.ctx, tuned: false });
      executor = model.executor;
      tunables = model.tunables;
    } else {
      const compiled = compileGraph(source.graph, {
        file: source.file, ctx: o.ctx, target: gpu.isCpu ? 'cpu' : 'gpu',
        limits: planLimits(gpu),
      });
      checkPlanFits(gpu.limits, gpu.features, compiled.plan);
      const weights = new Map(compiled.plan.buffers.filter((b) => b.kind === 'weight').map((b) => [b.id,
        gpu.device.createBuffer({ size: Math.ceil(b.bytes / 4) * 4, usage: GPUBufferUsage.STORAGE, label: b.id })]));
      executor = await Executor.create(gpu, compiled.plan, compiled.wgsl, weights);
      tunables = compiled.tunables;
    }
    const chosen = tunables.filter((t) => !o.families || o.families.includes(t.family));
    const { results, records } = await tune(executor, chosen, adapter, o);
    const db = o.db ?? userDbPath();
    if (records.length) appendRecords(records, db);
    return { adapter, db, results };
  } finally {
    if (model) model.dispose();
    else executor?.destroy();
    if (!o.gpu) gpu.dispose();
  }
}
