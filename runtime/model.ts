import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import { compileGraph, type CompileOptions } from '../compiler/compile.js';
import type { Plan } from '../compiler/plan.js';
import type { Graph } from '../compiler/ir/graph.js';
import { checkPlanFits, openDevice, type DeviceOptions, type GpuContext } from './device.js';
import { Executor } from './executor.js';
import { checkModelDir, modelGraph } from './model-dir.js';
import { SafetensorsCheckpoint } from './safetensors.js';
import { Steps } from './steps.js';
import { LscTokenizer } from './tokenizer.js';
import { uploadWeights, weightBytes, type UploadProgress } from './weights.js';
import { generate, type GenerateOptions, type GenerateEvent, type GenerateResult } from './generate.js';
import { loadTuning } from './tuning-db.js';

export interface LoadOptions {
  /** A graph file to use instead of building one from config.json. */
  graph?: string;
  /** KV context length (default: the graph's). */
  ctx?: number;
  prefillChunk?: number;
  decodeSteps?: number;
  device?: DeviceOptions;
  /** Use an already open device (tests share one). */
  gpu?: GpuContext;
  onProgress?: UploadProgress;
  /** Use tuned kernel configurations from the tuning database when present (default true). */
  tuned?: boolean;
  /** Tuning decisions to use instead of the database (the tuner and benchmarks). */
  tuningOverride?: CompileOptions["tuning"];
}

export interface GpuBytes {
  weights: number;
  kvCache: number;
  activations: number;
  total: number;
}

/**
 * A loaded model: plan, weights on the GPU, tokenizer. Generation and scoring go through it;
 * dispose() releases the GPU.
 */
export class LscModel {
  private constructor(
    readonly dir: string,
    readonly graph: Graph,
    readonly plan: Plan,
    readonly tokenizer: LscTokenizer,
    readonly gpu: GpuContext,
    private readonly ownsGpu: boolean,
    readonly executor: Executor,
    readonly steps: Steps,
    readonly gpuBytes: GpuBytes,
  ) {}

  static async load(dir: string, opts: LoadOptions = {}): Promise<LscModel> {
    checkModelDir(dir);
    const { graph } = modelGraph(dir, { graphFile: opts.graph });
    const tokenizer = LscTokenizer.load(dir);
    const ckpt = SafetensorsCheckpoint.open(dir);
    const gpu = opts.gpu ?? await openDevice(opts.device);
    try {
      const compileOpts: CompileOptions = {
        file: opts.graph, ctx: opts.ctx, prefillChunk: opts.prefillChunk, decodeSteps: opts.decodeSteps,
        limits: {
          maxStorageBufferBindingSize: gpu.limits.maxStorageBufferBindingSize,
          maxStorageBuffersPerShaderStage: gpu.limits.maxStorageBuffersPerShaderStage,
          maxComputeWorkgroupStorageSize: gpu.limits.maxComputeWorkgroupStorageSize,
          maxComputeInvocationsPerWorkgroup: gpu.limits.maxComputeInvocationsPerWorkgroup,
          maxBufferSize: gpu.limits.maxBufferSize,
        },
        tuning: opts.tuningOverride ?? (opts.tuned === false ? undefined : loadTuning(gpu)),
      };
      const { plan, wgsl } = compileGraph(graph, compileOpts);
      checkPlanFits(gpu.limits, gpu.features, plan);
      const weights = await uploadWeights(gpu.device, plan, ckpt, opts.onProgress);
      ckpt.close();
      const executor = await Executor.create(gpu, plan, wgsl, weights);
      const kv = plan.buffers.filter((b) => b.kind === 'kv').reduce((a, b) => a + b.bytes, 0);
      const w = weightBytes(plan);
      const act = executor.allocatedBytes - kv;
      return new LscModel(path.resolve(dir), graph, plan, tokenizer, gpu, !opts.gpu, executor, new Steps(executor),
        { weights: w, kvCache: kv, activations: act, total: w + kv + act });
    } catch (e) {
      if (!opts.gpu) gpu.dispose();
      throw e;
    }
  }

  get layers(): number { return this.plan.dims.layers; }
  get exitCandidates(): number[] { return this.plan.exits.candidates; }

  /** Bytes of the exit query cache (trunk rows 0..kMax) — part of the trunk buffer, not extra. */
  get exitQueryCacheBytes(): number {
    return (this.plan.rows.kMax + 1) * this.plan.dims.d * 4;
  }

  checkTokens(ids: number[], where = 'tokens'): void {
    const vocab = this.plan.dims.vocab;
    const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
    if (bad !== undefined) throw new LscError(`${where}: token id ${bad} is outside the vocabulary 0..${vocab - 1}`);
    if (ids.length === 0) throw new LscError(`${where}: no tokens`);
    if (ids.length >= this.plan.dims.ctx) {
      throw new LscError(`${where}: ${ids.length} tokens do not fit the context of ${this.plan.dims.ctx} positions`, {},
        'shorten the prompt or load with a larger --ctx');
    }
  }

  checkExit(exitLayer: number | undefined): void {
    if (exitLayer === undefined || exitLayer === this.layers) return;
    if (!this.plan.exits.candidates.includes(exitLayer)) {
      throw new LscError(`exit layer ${exitLayer} is not compiled into this model's plan (candidates: ${this.plan.exits.candidates.join(', ')})`,
        {}, 'choose one of the candidates, or add it to exit.candidates in the graph');
    }
  }

  /** Logits of the last position (or all), through the full model or exit E. */
  async logits(ids: number[], opts: { exitLayer?: number; allPositions?: boolean } = {}): Promise<Float32Array[]> {
    this.checkTokens(ids);
    this.checkExit(opts.exitLayer);
    return this.steps.scoreAll(ids, opts.exitLayer, opts.allPositions ?? false);
  }

  /** Streams generation events; the last event carries the result. */
  generate(prompt: string | number[], opts: GenerateOptions = {}): AsyncGenerator<GenerateEvent, GenerateResult> {
    return generate(this, prompt, opts);
  }

  /** Runs generation to the end and returns the result. */
  async complete(prompt: string | number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
    const it = this.generate(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  dispose(): void {
    this.executor.destroy();
    if (this.ownsGpu) this.gpu.dispose();
  }
}
