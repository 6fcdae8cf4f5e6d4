import cliProgress from 'cli-progress';
import { LscModel, type LoadOptions } from '../runtime/model.js';
import path from 'node:path';
import { formatBytes } from '../compiler/summary.js';
import { parseLlamaConfig } from '../compiler/builder/hf-config.js';
import { readJsonFile } from '../runtime/model-dir.js';
import { resolveModelPath } from '../runtime/hf-cache.js';
import { checkCtx } from './checks.js';
import { hugePageHint } from './huge-page-hint.js';

export interface ModelFlags {
  model: string;
  graph?: string;
  plan?: string;
  ctx?: number;
  /** Allow ctx past config.json's max_position_embeddings. */
  forceCtx?: boolean;
  /** KV slots: sequences generated at once (default: LscModel.load's). */
  sequences?: number;
  /** Greedy speculation only while at most this many sequences run (default: LscModel.load's). */
  speculationMaxBatch?: number;
  /** Requests that may wait for a slot (default: LscModel.load's); more fail with QueueFullError. */
  maxQueued?: number;
  /** Format of the matmul weights (--weights). */
  weights?: LoadOptions['weights'];
  /** Checks of the request against the plan, run before the weights upload. */
  check?: LoadOptions['beforeUpload'];
}

/** Loads a model; a weight-upload progress bar on stderr when `progress` (a TTY, not --json). */
export async function loadModel(flags: ModelFlags, progress: boolean): Promise<LscModel> {
  let bar: cliProgress.SingleBar | undefined;
  const onProgress = progress
    ? (done: number, total: number, tensor: string) => {
      if (!bar) {
        bar = new cliProgress.SingleBar({
          stream: process.stderr, clearOnComplete: true, hideCursor: true,
          format: 'loading weights [{bar}] {percentage}% of {size} {tensor}',
        }, cliProgress.Presets.shades_classic);
        bar.start(total, 0, { size: formatBytes(total, false), tensor });
      }
      bar.update(done, { tensor });
    }
    : undefined;
  // runs once load has checked the model dir, before the weights upload
  const beforeUpload: LoadOptions['beforeUpload'] = (plan, tok) => {
    if (flags.ctx !== undefined) {
      const file = path.join(resolveModelPath(flags.model), 'config.json');
      const trained = parseLlamaConfig(readJsonFile(file, 'config.json'), file).max_position_embeddings;
      checkCtx(flags.ctx, trained, 'this model was trained for (config.json max_position_embeddings)', flags.forceCtx);
    }
    flags.check?.(plan, tok);
  };
  let model: LscModel;
  try {
    model = await LscModel.load(flags.model, { graph: flags.graph, plan: flags.plan, ctx: flags.ctx, sequences: flags.sequences, speculationMaxBatch: flags.speculationMaxBatch, maxQueued: flags.maxQueued, weights: flags.weights, onProgress, beforeUpload });
  } finally {
    bar?.stop();
  }
  // with the progress bar only: a person is watching the load (not --json, not a pipe)
  const hint = progress ? hugePageHint(model.gpu.isCpu, model.gpuBytes.weights) : undefined;
  if (hint) process.stderr.write(`lsc: ${hint}\n`);
  return model;
}

/** Runs `fn` with a loaded model and always releases the GPU, or node would not exit. */
export async function withModel<T>(flags: ModelFlags, progress: boolean, fn: (m: LscModel) => Promise<T>): Promise<T> {
  const model = await loadModel(flags, progress);
  try {
    return await fn(model);
  } finally {
    model.dispose();
  }
}
