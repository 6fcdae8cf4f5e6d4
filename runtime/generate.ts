import { LscError } from '../compiler/errors.js';
import type { Plan } from '../compiler/plan.js';
import type { Steps } from './steps.js';
import type { LscTokenizer } from './tokenizer.js';
import { Rng, distribution, probabilityOf, residual, sample, type Distribution, type SamplingOptions } from './sampling.js';
import { TextStream } from './text-stream.js';
import { StopFilter, checkStopStrings } from './stop.js';
import { AdaptiveController, type Counts, type RoundTimes } from './adaptive-controller.js';
import { RoundCost } from './round-cost.js';

/** GPU memory a model holds (LscModel.gpuBytes). */
export interface GpuBytes {
  weights: number;
  /** KV cache of all slots (allocated at load). */
  kvCache: number;
  activations: number;
  total: number;
  /** KV bytes of one sequence's slot. */
  kvPerSequence: number;
  /** KV slots: sequences generated at once. */
  sequences: number;
  /** Sequences holding a slot now, and their KV bytes (absent where runs are not tracked: the browser page). */
  activeSequences?: number;
  kvInUse?: number;
}

/**
 * The GPU work generation asks for: the model's Steps, or a sequence's view of the batch engine
 * (runtime/batch/engine.ts), which runs the same requests of many sequences together.
 */
export type Decoder = Pick<Steps, 'prefill' | 'greedySteps' | 'stepLogits' | 'maxChainedRounds' | 'greedyRounds' | 'verifyLogits'> & {
  /** Runs a round of several submissions with no other sequence's work in between (absent: nothing else runs anyway). */
  round?<T>(body: () => Promise<T>): Promise<T>;
  /** Sequences sharing the model's steps now, this one included (absent: one). */
  activeSequences?(): number;
};

/** What generation uses of a loaded model (runtime/model.ts LscModel, which imports this module). */
interface LscModel {
  readonly layers: number;
  readonly plan: Plan;
  readonly tokenizer: LscTokenizer;
  readonly steps: Steps;
  readonly executor: { readonly timing: { submissions: number; encodeMs: number; waitMs: number } };
  readonly gpuBytes: GpuBytes;
  /** The default of GenerateOptions.speculationMaxBatch on this model's adapter. */
  readonly speculationMaxBatch: number;
  /** Whether the adapter runs shaders on the CPU (dispatch-bound: see DRAFT_STOP). */
  readonly gpu: { readonly isCpu: boolean };
  checkExit(exitLayer: number | undefined): void;
  checkTokens(ids: number[], where?: string): void;
  whileUsable<T>(work: () => Promise<T>, continuing?: boolean): Promise<T>;
}

export type Strategy = 'autoregressive' | 'early-exit' | 'self-speculative' | 'adaptive';
export const STRATEGY_NAMES: readonly Strategy[] = ['autoregressive', 'early-exit', 'self-speculative', 'adaptive'];

export interface GenerateOptions {
  maxNewTokens?: number;
  /**
   * Default 'self-speculative' at the graph's default exit and k (the CLI's default too); greedy
   * output equals 'autoregressive' decoding's, sampled output follows the same distribution.
   * 'adaptive' is self-speculative with E and k chosen while generating (adaptive-controller.ts).
   */
  strategy?: Strategy;
  /** Exit layer E for early-exit and self-speculative (default: the graph's); adaptive: fixes E. */
  exitLayer?: number;
  /** Drafts per round k (default: the graph's); adaptive: the largest k (default: the plan's). */
  numSpeculations?: number;
  /**
   * Adaptive: a round stops drafting after a draft whose own probability under the draft is below
   * this (0: never). Default 0.1, except greedy rounds on a CPU adapter: 0 (see DRAFT_STOP).
   */
  draftStopProbability?: number;
  /** 0 (default) is greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** Generation ends when the text contains one of these (the stop string is not emitted). */
  stop?: string[];
  /** Stop at the model's EOS ids (default true). */
  stopAtEos?: boolean;
  /** End-of-sequence ids to stop at instead of the model's. */
  eosTokens?: number[];
  /**
   * Greedy self-speculative rounds chained in one GPU submission, with acceptance on the GPU
   * (default 8; 1 reads back after every round). Output is the same either way.
   */
  roundsPerSubmission?: number;
  /**
   * Greedy speculative strategies speculate while at most this many sequences share the model
   * (the batch engine); with more, they decode plainly, as vLLM's speculative_disable_by_batch_size
   * does: in a full batch the steps are bound by the rows' arithmetic, and a round's k + 1 verify
   * rows and k draft rows cost more per token than one plain row. The tokens are the same either
   * way (greedy speculation emits exactly the autoregressive tokens). Sampled sequences always
   * speculate: switching would change which random numbers their seed gives to which token.
   * Default: the model's (LscModel.speculationMaxBatch).
   */
  speculationMaxBatch?: number;
  /** Aborting it ends the generation within one step (stop reason 'cancelled'), or before it starts. */
  signal?: AbortSignal;
}

export interface GenerateStats {
  strategy: Strategy;
  exitLayer: number | null;
  numSpeculations: number | null;
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  /** Tokens after the first (which prefill yields) per second of decoding. */
  tokensPerSecond: number;
  acceptanceRate: number | null;
  draftedTokens: number;
  acceptedTokens: number;
  rounds: number;
  /** Speculative strategies: rounds run at each exit E and with each draft count k. */
  roundsByExit: Record<string, number> | null;
  roundsByK: Record<string, number> | null;
  /** Speculative strategies: rounds whose drafting stopped, at a draft below draftStopProbability, before the k chosen. */
  draftStops: number | null;
  /** Speculative strategies: tokens decoded plainly because more than speculationMaxBatch sequences were running. */
  plainTokens: number | null;
  stopReason: 'eos' | 'max-tokens' | 'stop-string' | 'context' | 'cancelled';
  gpuBytes: GpuBytes;
  /** Decode phase on the CPU: GPU submissions, time recording them, time from submit to results. */
  submissions: number;
  encodeMs: number;
  waitMs: number;
}

export interface GenerateEvent {
  /** Text that is now final (may be empty while a multi-byte character is incomplete). */
  text: string;
  tokens: number[];
}

export interface GenerateResult {
  text: string;
  promptTokens: number[];
  tokens: number[];
  stats: GenerateStats;
}

/** @internal exported for the statistical test of speculative sampling */
export interface Resolved {
  strategy: Strategy;
  maxNew: number;
  E: number;
  K: number;
  sampling: SamplingOptions;
  greedy: boolean;
  rng: Rng;
  chain: number;
  speculationMaxBatch?: number;
  /** Adaptive: the exits the controller may use; the draft-confidence stop. */
  exits?: number[];
  draftStop?: number;
}

/**
 * A number option of the library: undefined, or a finite number obeying `rule` (the CLI parses
 * strings; callers of the API may pass anything, e.g. a string seed).
 */
function numberOption(v: unknown, what: string, rule: (v: number) => boolean, want: string): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || !rule(v))) {
    throw new LscError(`${what} must be ${want}, got ${typeof v === 'number' ? String(v) : JSON.stringify(v) ?? String(v)}`);
  }
}

const isPositiveInt = (v: number): boolean => Number.isSafeInteger(v) && v >= 1;
const isNonNegativeInt = (v: number): boolean => Number.isSafeInteger(v) && v >= 0;

function resolve(model: LscModel, o: GenerateOptions): Resolved {
  if (o === null || typeof o !== 'object') throw new LscError(`generate options must be an object, got ${JSON.stringify(o)}`);
  const strategy = o.strategy ?? 'self-speculative';
  if (!STRATEGY_NAMES.includes(strategy)) {
    throw new LscError(`unknown strategy '${strategy}'`, {}, `use ${STRATEGY_NAMES.slice(0, -1).join(', ')} or ${STRATEGY_NAMES[STRATEGY_NAMES.length - 1]}`);
  }
  numberOption(o.exitLayer, 'exit layer', isPositiveInt, `in 1..${model.layers - 1}`);
  numberOption(o.maxNewTokens, 'max new tokens', isPositiveInt, 'a positive integer');
  numberOption(o.numSpeculations, 'number of speculations', isPositiveInt, `in 1..${model.plan.rows.kMax}`);
  numberOption(o.roundsPerSubmission, 'rounds per submission', isPositiveInt, 'a positive integer');
  numberOption(o.temperature, 'temperature', (v) => v >= 0, '≥ 0');
  numberOption(o.topP, 'top-p', (v) => v > 0 && v <= 1, 'in (0, 1]');
  numberOption(o.topK, 'top-k', isNonNegativeInt, 'a non-negative integer');
  numberOption(o.speculationMaxBatch, 'speculation max batch', isPositiveInt, 'a positive integer');
  numberOption(o.draftStopProbability, 'draft stop probability', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  numberOption(o.seed, 'seed', (v) => isNonNegativeInt(v) && v < 2 ** 32, 'an integer in 0..4294967295');
  checkStopStrings(o.stop);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new LscError('signal must be an AbortSignal');
  if (o.stopAtEos !== undefined && typeof o.stopAtEos !== 'boolean') throw new LscError(`stopAtEos must be true or false, got ${JSON.stringify(o.stopAtEos)}`);
  if (o.eosTokens !== undefined) {
    const vocab = model.plan.dims.vocab;
    if (!Array.isArray(o.eosTokens) || o.eosTokens.some((t) => !Number.isInteger(t) || t < 0 || t >= vocab)) {
      throw new LscError(`eosTokens must be a list of token ids in 0..${vocab - 1}, got ${JSON.stringify(o.eosTokens)}`);
    }
  }
  const maxNew = o.maxNewTokens ?? 128;
  const E = o.exitLayer ?? model.plan.exits.defaultExitLayer;
  const adaptive = strategy === 'adaptive';
  const K = o.numSpeculations ?? (adaptive ? model.plan.rows.kMax : model.plan.exits.defaultNumSpeculations);
  if (strategy !== 'autoregressive') {
    numberOption(E, 'exit layer', (v) => Number.isInteger(v) && v >= 1 && v < model.layers, `in 1..${model.layers - 1}`);
    model.checkExit(E);
  }
  if ((strategy === 'self-speculative' || adaptive) && K > model.plan.rows.kMax) {
    throw new LscError(`number of speculations must be in 1..${model.plan.rows.kMax}, got ${K}`, {}, 'recompile with a larger dims.k.max for more');
  }
  const t = o.temperature ?? 0;
  const sampling = { temperature: t, topK: o.topK, topP: o.topP };
  const exits = adaptive ? (o.exitLayer !== undefined ? [E] : adaptiveExits(model)) : undefined;
  const draftStop = adaptive ? o.draftStopProbability ?? (t === 0 && model.gpu.isCpu ? DRAFT_STOP.greedyOnCpu : DRAFT_STOP.default) : undefined;
  return { strategy, maxNew, E, K, sampling, greedy: t === 0, rng: new Rng(o.seed ?? 0), chain: o.roundsPerSubmission ?? 8,
    speculationMaxBatch: o.speculationMaxBatch ?? model.speculationMaxBatch, exits, draftStop };
}

/**
 * Default draft-stop probabilities of adaptive decoding. Greedy rounds chained on a CPU adapter
 * (lavapipe) never stop by default: a stopped round's later draft steps still run their
 * dispatches (each returning at once), so the stop saves little, while every draft step pays for
 * the probability and the gate. Measured on tiny-code, 60 paired runs each: adaptive over E=2
 * k=3 ×0.936 [0.908, 0.977] with the stop at 0.1 and ×0.978 [0.956, 1.007] without it (95%
 * bootstrap intervals; BENCHMARKS.md). Sampled rounds run draft by draft on the CPU side, where
 * a stop skips real work; on a GPU the stop's cost is not measured (0.1 is a guess).
 */
export const DRAFT_STOP = { default: 0.1, greedyOnCpu: 0 } as const;

/** The exits adaptive decoding tries by default: every compiled one, up to the middle layer for deep models (as `lsc bench --sweep`). */
function adaptiveExits(model: LscModel): number[] {
  const L = model.layers;
  return model.plan.exits.candidates.filter((e) => L <= 16 || e <= L / 2);
}

const roundCosts = new WeakMap<Plan, RoundCost>();
/**
 * Per loaded model, the acceptance counts the last greedy adaptive sequence ended with. Greedy
 * only: its output does not depend on the choices, while a sampled sequence's does, through the
 * random numbers each choice draws (a seed must give the same text on every call).
 */
const histories = new WeakMap<LscModel, Map<number, Counts>>();
/** Per loaded model, the round times the last greedy adaptive sequence ended with (greedy only, as above). */
const timeHistories = new WeakMap<LscModel, RoundTimes>();

/** A controller for one sequence of adaptive decoding, starting from the model's acceptance history. */
function newController(model: LscModel, r: Resolved): AdaptiveController {
  let cost = roundCosts.get(model.plan);
  if (!cost) roundCosts.set(model.plan, (cost = new RoundCost(model.plan)));
  const c = cost;
  const history = r.greedy ? histories.get(model) : undefined;
  const timeHistory = r.greedy ? timeHistories.get(model) : undefined;
  return new AdaptiveController({ exits: r.exits!, kMax: r.K, maxRounds: r.chain, roundCost: (E, k) => c.round(E, k), history, timeHistory });
}

/** A pair's measured wall-clock time per round, as adaptive decoding learned it (greedy sequences alone). */
export interface AdaptiveRoundTime {
  exitLayer: number;
  numSpeculations: number;
  /** Rounds measured, forgotten with the controller's half-life. */
  weight: number;
  msPerRound: number;
  /** The plan's cost model in milliseconds at the measured scale (runtime/round-cost.ts). */
  modelMsPerRound: number;
}

/** The round times the model's last greedy adaptive sequence ended with, the pairs it ran most first. */
export function adaptiveRoundTimes(model: LscModel): AdaptiveRoundTime[] {
  const t = timeHistories.get(model);
  const cost = roundCosts.get(model.plan);
  if (!t || !cost || !(t.scale.w > 0)) return [];
  const scale = t.scale.sum / t.scale.w;
  return t.pairs.filter((v) => v.w > 0)
    .map((v) => ({ exitLayer: v.E, numSpeculations: v.k, weight: v.w, msPerRound: v.ms / v.w, modelMsPerRound: scale * cost.round(v.E, v.k) }))
    .sort((a, b) => b.weight - a.weight);
}

/** Keeps a finished sequence's acceptance counts for the model's next one. */
function keepHistory(model: LscModel, r: Resolved, c: AdaptiveController): void {
  if (!r.greedy) return;
  histories.set(model, new Map([...(histories.get(model) ?? []), ...c.counts()]));
  timeHistories.set(model, c.times());
}

/**
 * Generation with any strategy. Tokens flow through `accept()`, which applies the stops exactly
 * (EOS, max tokens, stop strings, context) even in the middle of a speculation round.
 */
export async function* generate(model: LscModel, prompt: string | number[], o: GenerateOptions,
  steps: Decoder = model.steps): AsyncGenerator<GenerateEvent, GenerateResult> {
  const inner = generateOnModel(model, prompt, o, steps);
  for (let started = false; ; started = true) {
    const step = await model.whileUsable(() => inner.next(), started);
    if (step.done) return step.value;
    yield step.value;
  }
}

async function* generateOnModel(model: LscModel, prompt: string | number[], o: GenerateOptions, steps: Decoder): AsyncGenerator<GenerateEvent, GenerateResult> {
  const r = resolve(model, o);
  if (typeof prompt !== 'string' && !Array.isArray(prompt)) {
    throw new LscError(`the prompt must be a string or a list of token ids, got ${typeof prompt}`);
  }
  const promptIds = typeof prompt === 'string' ? model.tokenizer.encode(prompt) : [...prompt];
  model.checkTokens(promptIds, 'prompt');
  const ctx = model.plan.dims.ctx;
  const stream = new TextStream(model.tokenizer, promptIds);
  const stopText = new StopFilter(o.stop ?? []);
  const eos = new Set(o.eosTokens ?? (o.stopAtEos === false ? [] : model.tokenizer.eosIds));
  const tokens: number[] = [];
  let stopReason: GenerateStats['stopReason'] | undefined;
  let drafted = 0;
  let accepted = 0;
  let rounds = 0;
  let draftStops = 0;
  let plain = 0;
  const spec = r.strategy === 'self-speculative' || r.strategy === 'adaptive';
  const byExit = new Map<number, number>();
  const byK = new Map<number, number>();
  const controller = r.strategy === 'adaptive' ? newController(model, r) : undefined;

  /** Takes tokens in order until a stop; returns the text to emit. */
  const accept = (ids: number[]): GenerateEvent => {
    const taken: number[] = [];
    let text = '';
    for (const id of ids) {
      if (stopReason) break;
      tokens.push(id);
      taken.push(id);
      text += stopText.push(stream.push([id]));
      if (eos.has(id)) stopReason = 'eos';
      else if (stopText.stopped) stopReason = 'stop-string';
      else if (tokens.length >= r.maxNew) stopReason = 'max-tokens';
      // the newest token needs a KV slot only to produce another: positions 0..ctx-1 hold ctx + 1 tokens' worth
      else if (promptIds.length + tokens.length > ctx) stopReason = 'context';
    }
    if (stopReason) text += stopText.flush(stream.flush());
    return { text, tokens: taken };
  };

  const t0 = performance.now();
  const exitOnly = r.strategy === 'early-exit' ? r.E : undefined;
  const first = await steps.prefill(promptIds, { exitLayer: exitOnly, wantLogits: !r.greedy });
  const firstId = r.greedy ? first.next : sample(distribution(first.logits!, r.sampling), r.rng);
  const t1 = performance.now();
  const timing0 = { ...model.executor.timing };
  yield accept([firstId]);
  let cur = firstId;
  let p = promptIds.length; // position of `cur`

  while (!stopReason) {
    if (o.signal?.aborted) {
      stopReason = 'cancelled';
      yield { text: stopText.flush(stream.flush()), tokens: [] };
      break;
    }
    const left = Math.min(r.maxNew - tokens.length, ctx - p); // positions p..ctx-1 each yield one token
    if (left <= 0) {
      stopReason = tokens.length >= r.maxNew ? 'max-tokens' : 'context';
      yield { text: stopText.flush(stream.flush()), tokens: [] };
      break;
    }
    // tokens in order, in groups: one per speculation round, or one group of decode steps
    let groups: number[][];
    /** Drafts each group's round made (none outside speculation). */
    let drafts: number[] = [];
    /** Drafts each round was allowed. */
    let asked = 0;
    let E = r.E;
    // a greedy speculative sequence in a batch fuller than speculationMaxBatch decodes plainly
    const crowded = spec && r.greedy && (steps.activeSequences?.() ?? 1) > (r.speculationMaxBatch ?? Infinity);
    if (spec && left >= 2 && !crowded) {
      // k clamped, and greedy rounds chained only whole, so nothing passes max tokens or the
      // context; stops inside a round or a chain are applied exactly by accept()
      const choice = controller?.next() ?? { E: r.E, k: r.K, rounds: r.chain };
      E = choice.E;
      const k = Math.min(choice.k, left - 1);
      asked = k;
      const chain = Math.max(1, Math.min(choice.rounds, r.chain, steps.maxChainedRounds(E, k), Math.floor(left / (k + 1))));
      if (r.greedy) {
        const t0 = performance.now();
        ({ rounds: groups, drafts } = await steps.greedyRounds(cur, p, k, E, chain, r.draftStop ?? 0));
        // a greedy sequence's choices never change its tokens, so its controller may learn from
        // the clock; alone only (in a batch the time is the batch's)
        if ((steps.activeSequences?.() ?? 1) <= 1 && groups.length) controller?.recordTime(E, k, (performance.now() - t0) / groups.length, groups.length);
      } else {
        const body = (): ReturnType<typeof speculativeRound> => speculativeRound(model, cur, p, k, E, r, r.draftStop ?? 0, steps);
        const round = await (steps.round ? steps.round(body) : body());
        groups = [round.tokens];
        drafts = [round.drafted];
      }
      groups.forEach((g, j) => controller?.record(E, drafts[j], g.length - 1));
    } else if (r.greedy) {
      groups = [await steps.greedySteps(cur, p, Math.min(left, model.plan.rows.decodeSteps), exitOnly)];
      if (crowded) plain += groups[0].length;
    } else {
      const logits = await steps.stepLogits(cur, p, 0, exitOnly);
      groups = [[sample(distribution(logits, r.sampling), r.rng)]];
    }
    const ev: GenerateEvent = { text: '', tokens: [] };
    for (const [j, group] of groups.entries()) {
      if (stopReason) break;
      if (drafts.length) {
        rounds++;
        drafted += drafts[j];
        if (drafts[j] < asked) draftStops++;
        accepted += group.length - 1;
        byExit.set(E, (byExit.get(E) ?? 0) + 1);
        byK.set(drafts[j], (byK.get(drafts[j]) ?? 0) + 1);
      }
      const e = accept(group);
      ev.text += e.text;
      ev.tokens.push(...e.tokens);
      p += group.length;
      cur = group[group.length - 1];
    }
    if (ev.tokens.length || ev.text) yield ev;
  }
  const t2 = performance.now();
  if (controller) keepHistory(model, r, controller);
  const decodeMs = t2 - t1;
  const histogram = (m: Map<number, number>): Record<string, number> => Object.fromEntries([...m].sort((x, y) => x[0] - y[0]).map(([v, n]) => [String(v), n]));
  /** Adaptive reports the E and k it used most. */
  const mostUsed = (m: Map<number, number>): number | null => [...m].reduce<[number, number] | null>((b, x) => (!b || x[1] > b[1] ? x : b), null)?.[0] ?? null;
  const stats: GenerateStats = {
    strategy: r.strategy,
    exitLayer: r.strategy === 'autoregressive' ? null : controller ? mostUsed(byExit) : r.E,
    numSpeculations: !spec ? null : controller ? mostUsed(byK) : r.K,
    promptTokens: promptIds.length,
    generatedTokens: tokens.length,
    prefillMs: t1 - t0,
    decodeMs,
    tokensPerSecond: tokens.length > 1 && decodeMs > 0 ? ((tokens.length - 1) * 1000) / decodeMs : 0,
    acceptanceRate: spec ? (drafted ? accepted / drafted : 0) : null,
    draftedTokens: drafted,
    acceptedTokens: accepted,
    rounds,
    roundsByExit: spec ? histogram(byExit) : null,
    roundsByK: spec ? histogram(byK) : null,
    draftStops: spec ? draftStops : null,
    plainTokens: spec ? plain : null,
    stopReason: stopReason ?? 'max-tokens',
    gpuBytes: model.gpuBytes,
    submissions: model.executor.timing.submissions - timing0.submissions,
    encodeMs: model.executor.timing.encodeMs - timing0.encodeMs,
    waitMs: model.executor.timing.waitMs - timing0.waitMs,
  };
  return { text: stopText.text, promptTokens: promptIds, tokens, stats };
}

/**
 * Speculative sampling (Leviathan et al. / Chen et al.): draft d_i ~ q_i; accept with
 * probability min(1, p(d_i)/q(d_i)); at the first rejection draw from normalize(max(p − q, 0));
 * if all k pass, draw the bonus token from p_k. The output is distributed exactly as p.
 */
export async function sampledRound(model: LscModel, cur: number, p: number, k: number, r: Resolved,
  steps: Decoder = model.steps): Promise<number[]> {
  return (await speculativeRound(model, cur, p, k, r.E, r, 0, steps)).tokens;
}

/**
 * A sampled round at exit E of up to k drafts: drafting stops after a draft whose probability
 * under the draft distribution is below `stopBelow`. Whether to draft on depends only on the
 * drafts so far, so the round stays distribution-exact with the drafts it made.
 * @internal exported for the statistical test
 */
export async function speculativeRound(model: LscModel, cur: number, p: number, maxK: number, E: number, r: Resolved, stopBelow: number,
  steps: Decoder = model.steps): Promise<{ tokens: number[]; drafted: number }> {
  const qs: Distribution[] = [];
  const drafts: number[] = [];
  let t = cur;
  for (let i = 0; i < maxK; i++) {
    const logits = await steps.stepLogits(t, p, i, E);
    const q = distribution(logits, r.sampling);
    t = sample(q, r.rng);
    qs.push(q);
    drafts.push(t);
    if (probabilityOf(q, t) < stopBelow) break;
  }
  const k = drafts.length;
  const rows = await steps.verifyLogits([cur, ...drafts], p, E);
  const out: number[] = [];
  const done = (): { tokens: number[]; drafted: number } => ({ tokens: out, drafted: k });
  for (let i = 0; i < k; i++) {
    const pd = distribution(rows[i], r.sampling);
    const ratio = probabilityOf(pd, drafts[i]) / probabilityOf(qs[i], drafts[i]);
    if (r.rng.next() < Math.min(1, ratio)) {
      out.push(drafts[i]);
    } else {
      out.push(sample(residual(pd, qs[i]), r.rng));
      return done();
    }
  }
  out.push(sample(distribution(rows[k], r.sampling), r.rng));
  return done();
}
