import { LscError } from '../compiler/errors.js';
import type { LscModel, GpuBytes } from './model.js';
import { Rng, distribution, probabilityOf, residual, sample, type Distribution, type SamplingOptions } from './sampling.js';
import { TextStream } from './text-stream.js';
import { StopFilter } from './stop.js';

export type Strategy = 'autoregressive' | 'early-exit' | 'self-speculative';

export interface GenerateOptions {
  maxNewTokens?: number;
  strategy?: Strategy;
  /** Exit layer E for early-exit and self-speculative (default: the graph's). */
  exitLayer?: number;
  /** Drafts per round k (default: the graph's). */
  numSpeculations?: number;
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
  stopReason: 'eos' | 'max-tokens' | 'stop-string' | 'context';
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
}

function resolve(model: LscModel, o: GenerateOptions): Resolved {
  const strategy = o.strategy ?? 'autoregressive';
  if (!['autoregressive', 'early-exit', 'self-speculative'].includes(strategy)) {
    throw new LscError(`unknown strategy '${strategy}'`, {}, 'use autoregressive, early-exit or self-speculative');
  }
  const maxNew = o.maxNewTokens ?? 128;
  if (!Number.isInteger(maxNew) || maxNew < 1) throw new LscError(`max new tokens must be a positive integer, got ${maxNew}`);
  const E = o.exitLayer ?? model.plan.exits.defaultExitLayer;
  const K = o.numSpeculations ?? model.plan.exits.defaultNumSpeculations;
  if (strategy !== 'autoregressive') {
    if (!Number.isInteger(E) || E < 1 || E >= model.layers) {
      throw new LscError(`exit layer must be in 1..${model.layers - 1}, got ${E}`);
    }
    model.checkExit(E);
  }
  if (strategy === 'self-speculative' && (!Number.isInteger(K) || K < 1 || K > model.plan.rows.kMax)) {
    throw new LscError(`number of speculations must be in 1..${model.plan.rows.kMax}, got ${K}`, {}, 'recompile with a larger dims.k.max for more');
  }
  const t = o.temperature ?? 0;
  if (!(t >= 0) || !Number.isFinite(t)) throw new LscError(`temperature must be ≥ 0, got ${o.temperature}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new LscError(`top-p must be in (0, 1], got ${o.topP}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new LscError(`top-k must be a non-negative integer, got ${o.topK}`);
  const chain = o.roundsPerSubmission ?? 8;
  if (!Number.isInteger(chain) || chain < 1) throw new LscError(`rounds per submission must be a positive integer, got ${chain}`);
  const sampling = { temperature: t, topK: o.topK, topP: o.topP };
  return { strategy, maxNew, E, K, sampling, greedy: t === 0, rng: new Rng(o.seed ?? 0), chain };
}

/**
 * Generation with any strategy. Tokens flow through `accept()`, which applies the stops exactly
 * (EOS, max tokens, stop strings, context) even in the middle of a speculation round.
 */
export async function* generate(model: LscModel, prompt: string | number[], o: GenerateOptions): AsyncGenerator<GenerateEvent, GenerateResult> {
  const r = resolve(model, o);
  const promptIds = typeof prompt === 'string' ? model.tokenizer.encode(prompt) : [...prompt];
  model.checkTokens(promptIds, 'prompt');
  const steps = model.steps;
  const ctx = model.plan.dims.ctx;
  const stream = new TextStream(model.tokenizer, promptIds);
  const stopText = new StopFilter(o.stop ?? []);
  const eos = new Set(o.eosTokens ?? (o.stopAtEos === false ? [] : model.tokenizer.eosIds));
  const tokens: number[] = [];
  let stopReason: GenerateStats['stopReason'] | undefined;
  let drafted = 0;
  let accepted = 0;
  let rounds = 0;

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
      else if (promptIds.length + tokens.length >= ctx) stopReason = 'context';
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
    const left = Math.min(r.maxNew - tokens.length, ctx - p - 1);
    if (left <= 0) {
      stopReason = tokens.length >= r.maxNew ? 'max-tokens' : 'context';
      yield { text: stopText.flush(stream.flush()), tokens: [] };
      break;
    }
    // tokens in order, in groups: one per speculation round, or one group of decode steps
    let groups: number[][];
    let k = 0;
    if (r.strategy === 'self-speculative' && left >= 2) {
      // k clamped, and greedy rounds chained only whole, so nothing passes max tokens or the
      // context; stops inside a round or a chain are applied exactly by accept()
      k = Math.min(r.K, left - 1);
      const chain = Math.max(1, Math.min(r.chain, steps.maxChainedRounds(r.E, k), Math.floor(left / (k + 1))));
      groups = r.greedy ? await steps.greedyRounds(cur, p, k, r.E, chain) : [await sampledRound(model, cur, p, k, r)];
    } else if (r.greedy) {
      groups = [await steps.greedySteps(cur, p, Math.min(left, model.plan.rows.decodeSteps), exitOnly)];
    } else {
      const logits = await steps.stepLogits(cur, p, 0, exitOnly);
      groups = [[sample(distribution(logits, r.sampling), r.rng)]];
    }
    const ev: GenerateEvent = { text: '', tokens: [] };
    for (const group of groups) {
      if (stopReason) break;
      if (k) {
        rounds++;
        drafted += k;
        accepted += group.length - 1;
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
  const decodeMs = t2 - t1;
  const spec = r.strategy === 'self-speculative';
  const stats: GenerateStats = {
    strategy: r.strategy,
    exitLayer: r.strategy === 'autoregressive' ? null : r.E,
    numSpeculations: spec ? r.K : null,
    promptTokens: promptIds.length,
    generatedTokens: tokens.length,
    prefillMs: t1 - t0,
    decodeMs,
    tokensPerSecond: tokens.length > 1 && decodeMs > 0 ? ((tokens.length - 1) * 1000) / decodeMs : 0,
    acceptanceRate: spec ? (drafted ? accepted / drafted : 0) : null,
    draftedTokens: drafted,
    acceptedTokens: accepted,
    rounds,
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
export async function sampledRound(model: LscModel, cur: number, p: number, k: number, r: Resolved): Promise<number[]> {
  const steps = model.steps;
  const qs: Distribution[] = [];
  const drafts: number[] = [];
  let t = cur;
  for (let i = 0; i < k; i++) {
    const logits = await steps.stepLogits(t, p, i, r.E);
    const q = distribution(logits, r.sampling);
    t = sample(q, r.rng);
    qs.push(q);
    drafts.push(t);
  }
  const rows = await steps.verifyLogits([cur, ...drafts], p, r.E);
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const pd = distribution(rows[i], r.sampling);
    const ratio = probabilityOf(pd, drafts[i]) / probabilityOf(qs[i], drafts[i]);
    if (r.rng.next() < Math.min(1, ratio)) {
      out.push(drafts[i]);
    } else {
      out.push(sample(residual(pd, qs[i]), r.rng));
      return out;
    }
  }
  out.push(sample(distribution(rows[k], r.sampling), r.rng));
  return out;
}
