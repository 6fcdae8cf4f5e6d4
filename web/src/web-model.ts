/**
 * A model loaded in a page: the same plan, executor, generation loops, sampling and speculation
 * as LscModel in Node (runtime/), with weights fetched over HTTP. loadWebModel is the entry.
 */
import { LscError, isLscError } from '../../compiler/errors.js';
import type { Plan } from '../../compiler/plan.js';
import type { GpuContext } from '../../runtime/device.js';
import { checkPlanFits } from '../../runtime/plan-fit.js';
import { Executor } from '../../runtime/executor.js';
import { Steps } from '../../runtime/steps.js';
import { LscTokenizer } from '../../runtime/tokenizer.js';
import { uploadWeights, weightBytes } from '../../runtime/weights.js';
import { generate, type GenerateOptions, type GenerateResult, type GpuBytes } from '../../runtime/generate.js';
import { GenerationRun } from '../../runtime/generation-run.js';
import { ModelQueue } from '../../runtime/batch/model-queue.js';
import { checkExit, checkTokens } from '../../runtime/model-checks.js';
import { pickWebPlan } from '../../runtime/web-plan.js';
import { openBrowserDevice } from './device.js';
import { RangeFetcher, type ByteCounts } from './fetch-bytes.js';
import { HttpCheckpoint } from './http-checkpoint.js';

export interface LoadProgress {
  phase: 'download' | 'upload';
  done: number;
  total: number;
}

export interface WebLoadOptions {
  /** The model directory's URL (config.json, tokenizer.json, safetensors), e.g. '/model/'. */
  model: string;
  /** The plans.json `lsc web` serves (default: plans.json next to the page). */
  plans?: string;
  /** Cache Storage bucket for the weights (default 'lsc-weights'); false keeps nothing. */
  cache?: string | false;
  onProgress?: (p: LoadProgress) => void;
}

export class WebModel {
  private constructor(
    readonly plan: Plan,
    readonly tokenizer: LscTokenizer,
    readonly gpu: GpuContext,
    readonly executor: Executor,
    readonly steps: Steps,
    private readonly fixedBytes: { weights: number; kvCache: number },
    /** Bytes of the checkpoint (headers and data) by origin: the network, or Cache Storage (a reload). */
    readonly loadedBytes: ByteCounts,
  ) {}

  static async load(opts: WebLoadOptions): Promise<WebModel> {
    const base = new URL(opts.model, location.href).href.replace(/\/?$/, '/');
    const fetcher = new RangeFetcher(opts.cache === false ? undefined : opts.cache ?? 'lsc-weights');
    const json = async (name: string, optional = false): Promise<object | undefined> => {
      const url = new URL(name, base).href;
      const text = await fetcher.text(url, name, optional);
      if (text === undefined) return undefined;
      try {
        return JSON.parse(text) as object;
      } catch (e) {
        throw new LscError(`${name} is not valid JSON: ${(e as Error).message}`, { file: url });
      }
    };
    // cheap checks first: the tokenizer, the plan and every checkpoint header, before the GPU
    const [tj, tc, config, gen] = await Promise.all([json('tokenizer.json'), json('tokenizer_config.json', true),
      json('config.json'), json('generation_config.json', true)]);
    const tokenizer = LscTokenizer.fromObjects(tj!, tc, config, gen);
    const plansUrl = new URL(opts.plans ?? 'plans.json', location.href).href;
    const plans = JSON.parse((await fetcher.text(plansUrl, 'plans.json'))!) as unknown;
    const ckpt = await HttpCheckpoint.open(base, fetcher);
    const gpu = await openBrowserDevice();
    try {
      const { plan, wgsl } = pickWebPlan(plans, gpu.features, gpu.isCpu, plansUrl);
      tokenizer.checkVocab(plan.dims.vocab);
      try {
        checkPlanFits(gpu.limits, gpu.features, plan);
      } catch (e) {
        // the Node hint (recompile, --ctx) does not apply: the page's plans target WebGPU's default limits
        if (!isLscError(e)) throw e;
        throw new LscError(`this adapter is below the model's needs: ${e.message}`, e.where,
          'use a browser and GPU whose WebGPU adapter offers at least the default limits, or a smaller model');
      }
      await ckpt.download((done, total) => opts.onProgress?.({ phase: 'download', done, total }));
      const loaded = { ...fetcher.counts };
      const weights = await uploadWeights(gpu.device, plan, ckpt,
        (done, total) => opts.onProgress?.({ phase: 'upload', done, total }), { adapterInfo: gpu.adapterInfo, isCpu: false });
      const executor = await Executor.create(gpu, plan, wgsl, weights);
      const kv = plan.buffers.filter((b) => b.kind === 'kv').reduce((a, b) => a + b.bytes, 0);
      const model = new WebModel(plan, tokenizer, gpu, executor, new Steps(executor), { weights: weightBytes(plan), kvCache: kv }, loaded);
      void gpu.device.lost.then((info) => { if (info.reason !== 'destroyed') model.lost = info.message || 'no reason given'; });
      return model;
    } catch (e) {
      gpu.dispose();
      throw e;
    }
  }

  get layers(): number { return this.plan.dims.layers; }
  /** One generation at a time in a page (no batch engine): the cap never applies. */
  readonly speculationMaxBatch = 1;
  get exitCandidates(): number[] { return this.plan.exits.candidates; }

  get gpuBytes(): GpuBytes {
    const { weights, kvCache } = this.fixedBytes;
    const activations = this.executor.allocatedBytes - kvCache;
    const sequences = this.plan.rows.sequences ?? 1;
    return { weights, kvCache, activations, total: weights + kvCache + activations, kvPerSequence: kvCache / sequences, sequences };
  }

  checkTokens(ids: number[], where = 'tokens'): void { checkTokens(this.plan, ids, where); }
  checkExit(exitLayer: number | undefined): void { checkExit(this.plan, exitLayer); }

  private isDisposed = false;
  /** Why the browser took the GPU device away (a driver reset, a tab in the background too long). */
  private lost?: string;

  async whileUsable<T>(work: () => Promise<T>): Promise<T> {
    if (this.isDisposed) throw new LscError('this model was disposed', {}, 'load the model again');
    if (this.lost) throw new LscError(`the GPU device was lost: ${this.lost}`, {}, 'reload the page');
    return work();
  }

  /**
   * Calls take turns (a page may start a second generation before the first ends): the KV cache
   * and activation rows are shared, so one generation holds the model from its first step to its
   * end and the others wait in arrival order, as LscModel's do with `sequences: 1`.
   */
  readonly queue = new ModelQueue();

  /** Streams text chunks (`for await`); `await run.result` gives text, ids and stats. */
  generate(prompt: string | number[], opts: GenerateOptions = {}): GenerationRun {
    const cancel = new AbortController();
    if (opts === null || typeof opts !== 'object' || (opts.signal !== undefined && !(opts.signal instanceof AbortSignal))) {
      return new GenerationRun(generate(this, prompt, opts), cancel); // refused by generate() itself
    }
    const signal = opts.signal ? AbortSignal.any([opts.signal, cancel.signal]) : cancel.signal;
    return new GenerationRun(this.queue.hold(() => generate(this, prompt, { ...opts, signal }), signal), cancel);
  }

  complete(prompt: string | number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
    return this.generate(prompt, opts).result;
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.executor.destroy();
    this.gpu.dispose();
  }
}
