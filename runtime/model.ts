import fs from 'node:fs';
import path from 'node:path';
import type { MatrixFormat } from '../compiler/ir/weight-formats.js';
import type { WeightsSpec } from '../compiler/ir/weights-spec.js';
import { isGgufFile, openGgufModel, type GgufCheckpoint } from './gguf-llama.js';
import { LscError } from '../compiler/errors.js';
import { compileGraph, type CompileOptions } from '../compiler/compile.js';
import type { Plan, PlanLimits } from '../compiler/plan.js';
import type { Tunable } from '../compiler/passes/schedule.js';
import type { Graph } from '../compiler/ir/graph.js';
import { checkPlanFits, openDevice, planLimits, type DeviceOptions, type GpuContext } from './device.js';
import { Executor, KernelCompileError } from './executor.js';
import { checkModelDir, modelGraph, readModelConfig } from './model-dir.js';
import { resolveModelPath } from './hf-cache.js';
import { checkConfigAgainstCheckpoint } from './checkpoint-config.js';
import { SafetensorsCheckpoint } from './safetensors.js';
import { Steps } from './steps.js';
import { LscTokenizer } from './tokenizer.js';
import { ggufTokenizer } from './gguf-tokenizer.js';
import { uploadWeights, weightBytes, type UploadProgress } from './weights.js';
import { generate, type Decoder, type GenerateEvent, type GenerateOptions, type GenerateResult, type GpuBytes } from './generate.js';

export type { GpuBytes } from './generate.js';
import { GenerationRun } from './generation-run.js';
import { ChatTemplate, type ChatMessage } from './chat-template.js';
import { loadTuning } from './tuning-db.js';
import { graphForFeatures } from './kv-dtype.js';
import { checkExit, checkTokens } from './model-checks.js';
import { readArtifact } from '../compiler/artifact.js';
import { DEFAULT_MAX_QUEUED, ModelQueue } from './batch/model-queue.js';
import { BatchEngine } from './batch/engine.js';
import { checkSequences, checkSpeculationMaxBatch, defaultSequences } from './batch/capacity.js';
import { resolveDims } from '../compiler/ir/dims.js';

/** A compiled artifact (readArtifact checks all of it against its own graph.json), checked against the model's graph. */
function loadArtifact(dir: string, graph: Graph): { plan: Plan; wgsl: Map<string, string> } {
  const { plan, wgsl } = readArtifact(dir);
  for (const key of ['vocab', 'd', 'layers', 'heads', 'kvHeads', 'headDim', 'ffn'] as const) {
    const want = graph.dims[key];
    if (typeof want === 'number' && plan.dims[key] !== want) {
      throw new LscError(`the plan in ${dir} has ${key} = ${plan.dims[key]} but the model has ${want}`, { file: dir },
        'compile the artifact from this model (lsc compile MODEL_DIR)');
    }
  }
  return { plan, wgsl };
}

/** The adapter's limits, lowered where `want` asks for less. */
function tighter(adapter: PlanLimits, want: Partial<PlanLimits> = {}): PlanLimits {
  const out = { ...adapter };
  for (const key of Object.keys(want) as (keyof PlanLimits)[]) out[key] = Math.min(adapter[key], want[key]!);
  return out;
}

export interface LoadOptions {
  /** A graph file to use instead of building one from config.json. */
  graph?: string;
  /** A compiled artifact directory (lsc compile) to run instead of compiling. */
  plan?: string;
  /** Called after compiling, before any weight is uploaded: cheap checks of a request fail fast here. */
  beforeUpload?: (plan: Plan, tokenizer: LscTokenizer) => void;
  /** KV context length (default: the graph's). */
  ctx?: number;
  /**
   * Format of the matmul weights (default: the graph's dtypes.weights; a GGUF file's own per-tensor
   * types), and optionally the LM head's (compiler/ir/weights-spec.ts); q8_0 / q4_0 quantize the
   * checkpoint while loading.
   */
  weights?: MatrixFormat | WeightsSpec;
  prefillChunk?: number;
  decodeSteps?: number;
  device?: DeviceOptions;
  /** Use an already open device (tests share one). */
  gpu?: GpuContext;
  /**
   * Weight upload progress: `onProgress(done, total, tensor)` after each block of rows is written
   * to the GPU (several calls for a large tensor), with `done` and `total` in bytes of GPU weights
   * (`done / total` is the fraction uploaded) and `tensor` the checkpoint name of the tensor being
   * uploaded, e.g. 'model.layers.3.mlp.up_proj.weight'. Calls begin after compiling and `beforeUpload`.
   */
  onProgress?: UploadProgress;
  /** Use tuned kernel configurations from the tuning database when present (default true). */
  tuned?: boolean;
  /** Tuning decisions to use instead of the database (the tuner and benchmarks). */
  tuningOverride?: CompileOptions["tuning"];
  /** Compile for limits tighter than the adapter's (tests force weight splits with a small binding limit). */
  limits?: Partial<PlanLimits>;
  /** Requests that may wait while another uses the model (default 64); more fail with QueueFullError. */
  maxQueued?: number;
  /**
   * Sequences generated at once, batched (runtime/batch/engine.ts): the KV cache holds a slot
   * per sequence. Default: up to 16, as many as the binding limit and a KV budget allow
   * (runtime/batch/capacity.ts); 1 serves one generation at a time (the others queue).
   */
  sequences?: number;
  /** The default of GenerateOptions.speculationMaxBatch for this model (see LscModel.speculationMaxBatch). */
  speculationMaxBatch?: number;
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
    private readonly fixedBytes: { weights: number; kvCache: number },
    maxQueued = DEFAULT_MAX_QUEUED,
  ) {
    this.queue = new ModelQueue(maxQueued);
    const slots = plan.rows.sequences ?? 1;
    if (slots > 1) this.engine = new BatchEngine(this, slots, maxQueued);
  }

  /** Calls wait here for the GPU state they share (runtime/batch/model-queue.ts). */
  readonly queue: ModelQueue;

  /**
   * GPU memory the model holds now: weights, KV cache, and activations with the runtime's
   * uniforms (the GPU acceptance state of chained speculation rounds joins on first use).
   */
  get gpuBytes(): GpuBytes {
    const { weights, kvCache } = this.fixedBytes;
    const activations = this.executor.allocatedBytes - kvCache;
    const slots = this.plan.rows.sequences ?? 1;
    const active = this.engine?.active ?? (this.queue.busy ? 1 : 0);
    return {
      weights, kvCache, activations, total: weights + kvCache + activations,
      kvPerSequence: kvCache / slots, sequences: slots, activeSequences: active, kvInUse: (kvCache / slots) * active,
    };
  }

  /** Batches concurrent generations when the plan has more than one KV slot (made at load: its buffers count from the start). */
  readonly engine?: BatchEngine;

  static async load(dir: string, opts: LoadOptions = {}): Promise<LscModel> {
    dir = resolveModelPath(dir); // a Hugging Face id (org/name[@rev]) loads its cached snapshot
    // a GGUF file: its metadata stands for config.json and, unless a tokenizer.json lies beside it, the tokenizer
    const gguf = isGgufFile(dir) ? openGgufModel(dir) : undefined;
    if (!gguf) checkModelDir(dir);
    // cheap checks first, from config.json, the tokenizer and the checkpoint's headers: nothing
    // is built, compiled or allocated for a model directory whose parts disagree
    const { config, file: configFile } = gguf ? { config: gguf.config, file: dir } : readModelConfig(dir);
    const ckpt: GgufCheckpoint | SafetensorsCheckpoint = gguf ?? SafetensorsCheckpoint.open(dir);
    const tokDir = gguf ? path.dirname(dir) : dir;
    let graph: Graph;
    let tokenizer: LscTokenizer;
    let artifact: ReturnType<typeof loadArtifact> | undefined;
    try {
      checkConfigAgainstCheckpoint(ckpt, config, configFile);
      tokenizer = gguf && !fs.existsSync(path.join(tokDir, 'tokenizer.json')) ? ggufTokenizer(gguf.gguf) : LscTokenizer.load(tokDir);
      tokenizer.checkVocab(config.vocab_size);
      ({ graph } = modelGraph(dir, { graphFile: opts.graph, config }));
      // a GGUF file runs each matrix in its own type unless --weights or a graph file says otherwise
      if (gguf && opts.weights === undefined && !opts.graph) graph = gguf.withFileFormats(graph);
      // an artifact is user input: checked whole before the device opens or anything runs
      artifact = opts.plan ? loadArtifact(opts.plan, graph) : undefined;
    } catch (e) {
      ckpt.close();
      throw e;
    }
    // small models are dispatch-bound: on a CPU driver, one shader thread beats fork/join per dispatch
    const small = ckpt.totalBytes() < 64 * 2 ** 20;
    let gpu: GpuContext;
    try {
      gpu = opts.gpu ?? await openDevice({ ...(small ? { cpuDriverThreads: 0 } : {}), ...opts.device });
    } catch (e) {
      ckpt.close();
      throw e;
    }
    try {
      // an adapter without shader-f16 (or a device opened without it) keeps the KV cache in f32
      if (!artifact) graph = graphForFeatures(graph, gpu.features);
      checkSequences(opts.sequences);
      checkSpeculationMaxBatch(opts.speculationMaxBatch);
      const sequences = opts.sequences ?? (artifact ? undefined : sequencesFor(graph, gpu, opts));
      const { plan, wgsl, tunables } = artifact ? { ...artifact, tunables: [] } : compileGraph(graph, {
        file: opts.graph, ctx: opts.ctx, weights: opts.weights, prefillChunk: opts.prefillChunk, decodeSteps: opts.decodeSteps, sequences,
        limits: tighter(planLimits(gpu), opts.limits),
        tuning: opts.tuningOverride ?? (opts.tuned === false ? undefined : loadTuning(gpu)),
        target: gpu.isCpu ? 'cpu' : 'gpu',
      });
      checkPlanFits(gpu.limits, gpu.features, plan);
      opts.beforeUpload?.(plan, tokenizer);
      const weights = await uploadWeights(gpu.device, plan, ckpt, opts.onProgress);
      const executor = await Executor.create(gpu, plan, wgsl, weights);
      const kv = plan.buffers.filter((b) => b.kind === 'kv').reduce((a, b) => a + b.bytes, 0);
      const model = new LscModel(path.resolve(dir), graph, plan, tokenizer, gpu, !opts.gpu, executor, new Steps(executor),
        { weights: weightBytes(plan), kvCache: kv }, opts.maxQueued);
      model.tunables = tunables;
      model.specMaxBatch = opts.speculationMaxBatch;
      return model;
    } catch (e) {
      if (!opts.gpu) gpu.dispose();
      if (e instanceof KernelCompileError && opts.plan) {
        const file = path.join(opts.plan, 'kernels', `${e.kernel}.wgsl`);
        throw new LscError(`the artifact's ${e.message}`, { file }, 'recompile the artifact with lsc compile');
      }
      throw e;
    } finally {
      ckpt.close();
    }
  }

  /** Kernel shapes `lsc tune` can re-time with other configurations (empty for loaded artifacts). */
  tunables: Tunable[] = [];

  /**
   * The default of GenerateOptions.speculationMaxBatch: on a CPU adapter (lavapipe) a step of two
   * sequences is already bound by its rows' arithmetic, and two streams of plain decoding gave more
   * tokens per second than two speculating ones (BENCHMARKS.md, "Speculation in a full batch"), so
   * only a sequence running alone speculates. On a GPU a step's rows are nearly free until the
   * batch is large; 8 sequences is a guess, not measured here (no GPU lent to this project yet).
   */
  get speculationMaxBatch(): number { return this.specMaxBatch ?? (this.gpu.isCpu ? 1 : 8); }
  private specMaxBatch?: number;

  get layers(): number { return this.plan.dims.layers; }
  get exitCandidates(): number[] { return this.plan.exits.candidates; }

  /** Bytes of the exit query cache (trunk rows 0..kMax) — part of the trunk buffer, not extra. */
  get exitQueryCacheBytes(): number {
    return (this.plan.rows.kMax + 1) * this.plan.dims.d * 4;
  }

  checkTokens(ids: number[], where = 'tokens'): void {
    checkTokens(this.plan, ids, where);
  }

  checkExit(exitLayer: number | undefined): void {
    checkExit(this.plan, exitLayer);
  }

  /** Logits of the last position (or all), through the full model or exit E. */
  async logits(ids: number[], opts: { exitLayer?: number; allPositions?: boolean } = {}): Promise<Float32Array[]> {
    this.checkTokens(ids);
    this.checkExit(opts.exitLayer);
    // scoring writes the KV cache too: it waits its turn like a generation
    return this.queue.run(() => this.whileUsable(() => this.steps.scoreAll(ids, opts.exitLayer, opts.allPositions ?? false)));
  }

  /** True once dispose() has run: the GPU buffers are gone. */
  get disposed(): boolean { return this.isDisposed; }
  private isDisposed = false;

  /**
   * Runs GPU work on this model; a call after dispose(), or one that dispose() cut short (the GPU
   * then fails with a bare AbortError), is a clear error instead. `continuing`: the work is a later
   * step of a call that began before dispose() (a generation).
   */
  async whileUsable<T>(work: () => Promise<T>, continuing = false): Promise<T> {
    const gone = (when: string): LscError => new LscError(`this model was disposed ${when}`, {}, 'load the model again with LscModel.load');
    if (this.isDisposed) throw gone(continuing ? 'while the call was running' : 'before the call');
    try {
      const out = await work();
      // work that raced dispose() may finish on destroyed buffers: never hand out what it read
      if (this.isDisposed) throw gone('while the call was running');
      return out;
    } catch (e) {
      if (this.isDisposed && !(e instanceof LscError)) throw gone('while the call was running');
      throw e;
    }
  }

  /**
   * Starts a generation: `for await (const chunk of run)` streams text chunks as tokens are
   * accepted; `await run.result` gives the text, ids and stats.
   */
  generate(prompt: string | number[], opts: GenerateOptions = {}): GenerationRun {
    return this.queued(opts, (o, steps) => generate(this, prompt, o, steps), () => prompt);
  }

  /**
   * A generation that waits its turn at the queue (one generation holds the model from its first
   * step to its end), cancellable through opts.signal and run.cancel().
   */
  private queued(opts: GenerateOptions, make: (o: GenerateOptions, steps?: Decoder) => AsyncGenerator<GenerateEvent, GenerateResult>,
    prompt?: () => unknown): GenerationRun {
    const cancel = new AbortController();
    if (opts === null || typeof opts !== 'object' || (opts.signal !== undefined && !(opts.signal instanceof AbortSignal))) {
      return new GenerationRun(make(opts), cancel); // refused by generate() itself, where its errors surface
    }
    const signal = opts.signal ? AbortSignal.any([opts.signal, cancel.signal]) : cancel.signal;
    const o = { ...opts, signal };
    const engine = this.engine;
    if (!engine) return new GenerationRun(this.queue.hold(() => make(o), signal), cancel);
    const model = this;
    return new GenerationRun((async function* () {
      // a prompt that cannot fit is refused before it takes a slot
      const ids = prompt?.();
      if (typeof ids === 'string' || Array.isArray(ids)) model.checkTokens(typeof ids === 'string' ? model.tokenizer.encode(ids) : ids, 'prompt');
      const slot = await engine.takeSlot(signal);
      try {
        return yield* make(o, engine.decoder(slot));
      } finally {
        engine.freeSlot(slot);
      }
    })(), cancel);
  }

  /** The chat template of tokenizer_config.json (read on first use); an LscError for a model without one. */
  get chatTemplate(): ChatTemplate {
    this.template ??= ChatTemplate.load(this.dir);
    return this.template;
  }
  private template?: ChatTemplate;

  /**
   * Replies to a conversation: the messages rendered with the chat template (ending in the
   * opening of an assistant turn), then generated from like generate(); the reply is the run's
   * text. Errors (no template, bad messages) surface where generate's do: iterating or awaiting.
   */
  chat(messages: ChatMessage[], opts: GenerateOptions = {}): GenerationRun {
    const render = (): string => this.chatTemplate.render(messages, { addGenerationPrompt: true });
    const model = this;
    return this.queued(opts, (o, steps) => (async function* () {
      return yield* generate(model, render(), o, steps);
    })());
  }

  /** Runs a generation to the end. */
  complete(prompt: string | number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
    return this.generate(prompt, opts).result;
  }

  /** Releases the GPU (node can exit). Calling it again does nothing. */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.executor.destroy();
    if (this.ownsGpu) this.gpu.dispose();
  }
}

/** The default KV slots for a graph (runtime/batch/capacity.ts); 1 where its dims do not resolve (compiling reports why). */
function sequencesFor(graph: Graph, gpu: GpuContext, opts: LoadOptions): number {
  try {
    const dims = resolveDims(opts.ctx ? { ...graph, dims: { ...graph.dims, ctx: { max: opts.ctx } } } : graph).values;
    const bytes = graph.dtypes.kv === 'f16' ? 2 : 4;
    const maxBinding = Math.min(gpu.limits.maxStorageBufferBindingSize, opts.limits?.maxStorageBufferBindingSize ?? Infinity);
    return defaultSequences({ slotBytesPerLayer: 2 * dims.ctx * dims.kvHeads * dims.headDim * bytes, layers: dims.layers, maxBinding, isCpu: gpu.isCpu });
  } catch {
    return 1;
  }
}
