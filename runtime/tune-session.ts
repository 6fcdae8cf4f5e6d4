import './gpu-globals.js';
import type { Graph } from '../compiler/ir/graph.js';
import { compileGraph, type CompileOptions } from '../compiler/compile.js';
import { checkPlanFits, openDevice, planLimits, type GpuContext } from './device.js';
import { Executor } from './executor.js';
import { LscModel } from './model.js';
import { tune, type TuneOptions, type TuneResult } from './tuner.js';
import { adapterKey, appendRecords, recordedFor, userDbPath } from './tuning-db.js';

export interface TuneSessionOptions extends TuneOptions {
  /** Tuning database to append to (default: the user's). */
  db?: string;
  /** Only these families. */
  families?: string[];
  ctx?: number;
  /** Weight formats to tune the kernels of (quantized matmuls are shapes of their own); default the graph's. */
  weights?: CompileOptions['weights'];
  gpu?: GpuContext;
  /** Wall-clock seconds for the whole run, loading included: no measurement starts that would end after. */
  budgetSeconds?: number;
  /** When the budget started (Date.now() ms); default: when tuneSession is called. */
  budgetFrom?: number;
  /** What the run is doing before the measurements start (loading can take a while). */
  onStatus?: (line: string) => void;
}

export interface TuneSessionResult {
  adapter: string;
  db: string;
  results: TuneResult[];
  /** Records written by this run. */
  appended: number;
  /**
   * Set when a measurement overran the budget and was given up: the GPU is released when its
   * compile ends (it cannot be cancelled); a command line may exit without waiting.
   */
  releasing?: Promise<void>;
}

/**
 * Tunes every kernel shape of a model (its weights loaded) or of a bare graph (zero-filled
 * weight buffers: timings do not depend on the values). Each measurement is appended to the
 * database as soon as it is made, and configurations the database already holds for this
 * adapter are not measured again, so an interrupted run resumes where it stopped.
 */
export async function tuneSession(source: { modelDir: string } | { graph: Graph; file?: string }, o: TuneSessionOptions = {}): Promise<TuneSessionResult> {
  const deadline = o.budgetSeconds === undefined ? undefined : (o.budgetFrom ?? Date.now()) + o.budgetSeconds * 1000;
  const gpu = o.gpu ?? await openDevice();
  const adapter = adapterKey(gpu);
  let executor: Executor | undefined;
  let model: LscModel | undefined;
  let pending: Promise<void> | undefined;
  try {
    let tunables;
    if ('modelDir' in source) {
      o.onStatus?.(`loading ${source.modelDir}`);
      model = await LscModel.load(source.modelDir, { gpu, ctx: o.ctx, weights: o.weights, tuned: false });
      executor = model.executor;
      tunables = model.tunables;
    } else {
      o.onStatus?.(`compiling ${source.file ?? 'the graph'}`);
      const compiled = compileGraph(source.graph, {
        file: source.file, ctx: o.ctx, weights: o.weights, target: gpu.isCpu ? 'cpu' : 'gpu',
        limits: planLimits(gpu),
      });
      checkPlanFits(gpu.limits, gpu.features, compiled.plan);
      const weights = new Map(compiled.plan.buffers.filter((b) => b.kind === 'weight').map((b) => [b.id,
        gpu.device.createBuffer({ size: Math.ceil(b.bytes / 4) * 4, usage: GPUBufferUsage.STORAGE, label: b.id })]));
      executor = await Executor.create(gpu, compiled.plan, compiled.wgsl, weights);
      tunables = compiled.tunables;
    }
    const chosen = tunables.filter((t) => !o.families || o.families.includes(t.family));
    const db = o.db ?? userDbPath();
    const { results, records, inFlight } = await tune(executor, chosen, adapter, {
      ...o, deadline, known: recordedFor(adapter, db), onRecord: (r) => appendRecords([r], db),
    });
    pending = inFlight;
    return { adapter, db, results, appended: records.length, releasing: inFlight };
  } finally {
    const release = (): void => {
      if (model) model.dispose();
      else executor?.destroy();
      if (!o.gpu) gpu.dispose();
    };
    // destroying the device would block until a given-up compile ends: release it after, in the background
    if (pending) void pending.then(release);
    else release();
  }
}
