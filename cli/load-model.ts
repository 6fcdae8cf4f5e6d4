import cliProgress from 'cli-progress';
import { LscModel, type LoadOptions } from '../runtime/model.js';
import { formatBytes } from '../compiler/summary.js';

export interface ModelFlags {
  model: string;
  graph?: string;
  plan?: string;
  ctx?: number;
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
  try {
    return await LscModel.load(flags.model, { graph: flags.graph, plan: flags.plan, ctx: flags.ctx, onProgress, beforeUpload: flags.check });
  } finally {
    bar?.stop();
  }
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
