import { LscError } from '../compiler/errors.js';
import type { LscModel } from './model.js';
import { adaptiveRoundTimes, type AdaptiveRoundTime, type GenerateOptions, type GenerateResult } from './generate.js';
import { speculationBounds, type SpeculationBounds } from './speculation-bounds.js';
import { profileKernels, type KernelProfile } from './kernel-profile.js';
import { RoundCost } from './round-cost.js';
import { median } from './median.js';

/**
 * Autoregressive vs self-speculative decoding on the same prompts, in one process, with a
 * warm-up and interleaved repeats (AR, SS, AR, SS, ...) so drift on a shared machine hits both
 * alike. Throughput is decode tokens over decode time summed over all prompts and repeats.
 */
export interface BenchOptions {
  prompts: string[];
  maxNewTokens: number;
  temperature: number;
  /** Nucleus mass and top-k of sampling (temperature > 0), as in GenerateOptions. */
  topP?: number;
  topK?: number;
  seed?: number;
  repeat: number;
  /** One (E, k) pair, or a sweep over a grid. */
  pairs: { exitLayer: number; numSpeculations: number }[];
  /** Greedy rounds chained per GPU submission (see GenerateOptions). */
  roundsPerSubmission?: number;
  /** Also run the adaptive strategy, paired against the same autoregressive runs. */
  adaptive?: boolean;
  /** Also break the time of one extra run of each strategy down by phase (GPU timestamps). */
  profile?: boolean;
  /**
   * With a sweep and adaptive: repeats of the head-to-head after the sweep (default: `repeat`);
   * 0 skips it.
   */
  confirmRepeats?: number;
  /** The graph's default pair, for the head-to-head (default: the sweep's first pair). */
  defaultPair?: { exitLayer: number; numSpeculations: number };
  onProgress?: (line: string) => void;
}

/** Where decoding time goes, per generated token and (self-speculative) per round, in ms. */
export interface PhaseProfile {
  tokens: number;
  rounds: number;
  submissions: number;
  decodeMs: number;
  /** GPU time by section: decode (autoregressive), draft and verify (self-speculative). */
  gpuMs: Record<string, number>;
  /** Submit → results on the CPU, minus the GPU time: queue, driver and readback latency. */
  latencyMs: number;
  /** Recording commands on the CPU. */
  encodeMs: number;
  /** The rest of the loop on the CPU: acceptance, detokenizing, stops. */
  cpuMs: number;
  perToken: Record<string, number>;
  perRound?: Record<string, number>;
}

export interface RunFigures {
  tokensPerSecond: number;
  /** Median over repeats of each repeat's tokens per second. */
  medianTokensPerSecond: number;
  decodeMs: number;
  prefillMs: number;
  generatedTokens: number;
  repeats: number;
}

/** What every speculating run reports (a fixed pair, or adaptive). */
export interface SpeculationFigures extends RunFigures {
  acceptanceRate: number;
  draftedTokens: number;
  acceptedTokens: number;
  /** Tokens emitted per speculation round. */
  tokensPerRound: number;
  /** Whether every prompt gave exactly the autoregressive tokens (greedy only). */
  matchesAutoregressive: boolean | null;
  /** Median over (prompt, repeat) of this run's tok/s over the autoregressive run just before it. */
  speedup: number;
  /** Ratio of the summed throughputs (more exposed to drift during the benchmark). */
  speedupOfTotals: number;
}

export interface SpecFigures extends SpeculationFigures {
  exitLayer: number;
  numSpeculations: number;
  /** Best speedups at this run's tokens per round on idealized devices (speculation-bounds.ts). */
  bounds: SpeculationBounds;
  /** The adaptive controller's cost model at this run's tokens per round: τ / c(E, k) (round-cost.ts). */
  predictedSpeedup: number;
}

/** The adaptive strategy's run (E and k vary; the histograms count rounds). */
export interface AdaptiveFigures extends SpeculationFigures {
  roundsByExit: Record<string, number>;
  roundsByK: Record<string, number>;
  /** Rounds whose drafting stopped at a draft below the draft-stop probability, before the k chosen. */
  draftStops: number;
  /** Per prompt: median paired speedup over the repeats. */
  perPrompt: number[];
  /** The controller's measured round times at the end (the pairs it ran most first): what it ranked pairs by. */
  roundTimes: AdaptiveRoundTime[];
}

/**
 * The sweep's best pair is the maximum of many noisy cells, so its figure is biased upward (the
 * winner's curse). After a sweep with adaptive, the oracle pair, the graph's default pair and
 * adaptive run again head to head: every run right after an autoregressive run of the same prompt,
 * the three in rotated order, so each meets the machine as the others do.
 */
export interface HeadToHead {
  repeats: number;
  /** Paired runs per strategy (prompts × repeats). */
  pairs: number;
  oracle: { exitLayer: number; numSpeculations: number; speedup: number; sweepSpeedup: number };
  default: { exitLayer: number; numSpeculations: number; speedup: number; sweepSpeedup: number };
  adaptive: { speedup: number; sweepSpeedup: number };
  /** Adaptive's median paired speedup over the oracle's and the default's (1 = equal). */
  adaptiveOverOracle: number;
  adaptiveOverDefault: number;
}

export interface BenchReport {
  model: string;
  prompts: number;
  maxNewTokens: number;
  temperature: number;
  topP: number | null;
  topK: number | null;
  autoregressive: RunFigures;
  selfSpeculative: SpecFigures;
  speedup: number;
  acceptanceRate: number;
  sweep?: SpecFigures[];
  adaptive?: AdaptiveFigures;
  /** Sweep and adaptive: the oracle, default and adaptive measured again head to head. */
  headToHead?: HeadToHead;
  /** Per pair (in `sweep` order, or the one pair), each prompt's median paired speedup over the repeats. */
  perPromptSpeedups: number[][];
  gpuBytes: { autoregressive: number; selfSpeculative: number };
  /** kernels: GPU time per dispatch (absent without timestamp-query), for `lsc inspect --profile`. */
  profile?: { autoregressive: PhaseProfile; selfSpeculative: PhaseProfile; kernels?: KernelProfile };
}

async function profileRun(model: LscModel, o: BenchOptions, gen: GenerateOptions): Promise<PhaseProfile> {
  const ex = model.executor;
  ex.gpuSections.clear();
  model.steps.profile = true;
  let tokens = 0;
  let rounds = 0;
  let decodeMs = 0;
  let waitMs = 0;
  let encodeMs = 0;
  let submissions = 0;
  try {
    for (const [i, prompt] of o.prompts.entries()) {
      const r = await model.complete(prompt, { ...gen, seed: (o.seed ?? 0) + i, stopAtEos: false });
      tokens += Math.max(0, r.tokens.length - 1);
      rounds += r.stats.rounds;
      decodeMs += r.stats.decodeMs;
      waitMs += r.stats.waitMs;
      encodeMs += r.stats.encodeMs;
      submissions += r.stats.submissions;
    }
  } finally {
    model.steps.profile = false;
  }
  const gpuMs: Record<string, number> = {};
  for (const [name, v] of ex.gpuSections) gpuMs[name] = v.ms;
  const gpuTotal = Object.values(gpuMs).reduce((a, b) => a + b, 0);
  const latencyMs = Math.max(0, waitMs - gpuTotal);
  const cpuMs = Math.max(0, decodeMs - waitMs - encodeMs);
  const per = (n: number): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(gpuMs)) out[`gpu.${k}`] = v / n;
    return { ...out, latency: latencyMs / n, encode: encodeMs / n, cpu: cpuMs / n, total: decodeMs / n };
  };
  return {
    tokens, rounds, submissions, decodeMs, gpuMs, latencyMs, encodeMs, cpuMs,
    perToken: per(tokens), ...(rounds ? { perRound: per(rounds) } : {}),
  };
}

interface Acc { decodeMs: number; prefillMs: number; tokens: number; drafted: number; accepted: number; rounds: number; draftStops: number; perRepeat: number[]; byExit: Record<string, number>; byK: Record<string, number> }
const newAcc = (): Acc => ({ decodeMs: 0, prefillMs: 0, tokens: 0, drafted: 0, accepted: 0, rounds: 0, draftStops: 0, perRepeat: [], byExit: {}, byK: {} });

function addHistogram(into: Record<string, number>, h: Record<string, number> | null): void {
  for (const [v, n] of Object.entries(h ?? {})) into[v] = (into[v] ?? 0) + n;
}

async function runAll(model: LscModel, o: BenchOptions, gen: GenerateOptions, acc: Acc | null): Promise<GenerateResult[]> {
  const results: GenerateResult[] = [];
  let ms = 0;
  let toks = 0;
  for (const [i, prompt] of o.prompts.entries()) {
    const r = await model.complete(prompt, { ...gen, seed: (o.seed ?? 0) + i, stopAtEos: false });
    results.push(r);
    if (acc) {
      acc.decodeMs += r.stats.decodeMs;
      acc.prefillMs += r.stats.prefillMs;
      acc.tokens += Math.max(0, r.tokens.length - 1);
      acc.drafted += r.stats.draftedTokens;
      acc.accepted += r.stats.acceptedTokens;
      acc.rounds += r.stats.rounds;
      acc.draftStops += r.stats.draftStops ?? 0;
      addHistogram(acc.byExit, r.stats.roundsByExit);
      addHistogram(acc.byK, r.stats.roundsByK);
      ms += r.stats.decodeMs;
      toks += Math.max(0, r.tokens.length - 1);
    }
  }
  if (acc) acc.perRepeat.push(ms > 0 ? (toks * 1000) / ms : 0);
  return results;
}

const rate = (a: Acc): number => (a.decodeMs > 0 ? (a.tokens * 1000) / a.decodeMs : 0);

function merge(into: Acc, a: Acc): void {
  into.decodeMs += a.decodeMs; into.prefillMs += a.prefillMs; into.tokens += a.tokens;
  into.drafted += a.drafted; into.accepted += a.accepted; into.rounds += a.rounds; into.draftStops += a.draftStops;
  addHistogram(into.byExit, a.byExit); addHistogram(into.byK, a.byK);
}

const figures = (a: Acc, repeats: number): RunFigures => ({
  tokensPerSecond: a.decodeMs > 0 ? (a.tokens * 1000) / a.decodeMs : 0,
  medianTokensPerSecond: median(a.perRepeat),
  decodeMs: a.decodeMs, prefillMs: a.prefillMs, generatedTokens: a.tokens, repeats,
});

export async function runBench(model: LscModel, o: BenchOptions): Promise<BenchReport> {
  if (!o.prompts.length) throw new LscError('no prompts to benchmark');
  if (!o.pairs.length) throw new LscError('no (exit layer, speculations) pair to benchmark');
  const base: GenerateOptions = { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP, topK: o.topK };
  const spec = (p: BenchOptions['pairs'][number]): GenerateOptions => ({ ...base, strategy: 'self-speculative', roundsPerSubmission: o.roundsPerSubmission, ...p });
  const greedy = o.temperature === 0;
  // the fixed pairs, then (with --adaptive) the adaptive strategy, each paired with the same autoregressive runs
  const runs: GenerateOptions[] = [...o.pairs.map(spec), ...(o.adaptive ? [{ ...base, strategy: 'adaptive' as const, roundsPerSubmission: o.roundsPerSubmission }] : [])];
  // warm-up: pipelines, caches, and the driver's first-use costs
  const reference = await runAll(model, o, { ...base, strategy: 'autoregressive' }, null);
  let firstSpec: GenerateResult | undefined;
  for (const g of runs) {
    const [r] = await runAll(model, { ...o, prompts: o.prompts.slice(0, 1) }, g, null);
    firstSpec ??= r;
  }

  const ar = newAcc();
  const ss = runs.map(newAcc);
  const matches = runs.map(() => true);
  // paired ratios: each pair's run right after the autoregressive run of the same prompt, so both
  // see the same machine (a shared machine's speed drifts by tens of percent within minutes)
  const ratios: number[][] = runs.map(() => []);
  const promptRatios: number[][][] = runs.map(() => o.prompts.map(() => []));
  for (let rep = 0; rep < o.repeat; rep++) {
    const repAr = newAcc();
    const repSs = runs.map(newAcc);
    for (const [i, prompt] of o.prompts.entries()) {
      const one = { ...o, prompts: [prompt], seed: (o.seed ?? 0) + i };
      const a = newAcc();
      await runAll(model, one, { ...base, strategy: 'autoregressive' }, a);
      merge(ar, a); merge(repAr, a);
      for (const [pi, g] of runs.entries()) {
        const b = newAcc();
        const [res] = await runAll(model, one, g, b);
        merge(ss[pi], b); merge(repSs[pi], b);
        if (greedy && res.tokens.join() !== reference[i].tokens.join()) matches[pi] = false;
        if (a.tokens && b.tokens) {
          const ratio = (b.tokens / b.decodeMs) / (a.tokens / a.decodeMs);
          ratios[pi].push(ratio);
          promptRatios[pi][i].push(ratio);
        }
      }
    }
    ar.perRepeat.push(rate(repAr));
    repSs.forEach((x, pi) => ss[pi].perRepeat.push(rate(x)));
    o.onProgress?.(`repeat ${rep + 1}/${o.repeat}: autoregressive ${rate(repAr).toFixed(1)} tok/s`);
  }
  const arFig = figures(ar, o.repeat);
  const cost = new RoundCost(model.plan);
  const specFigs: SpecFigures[] = o.pairs.map((p, pi) => {
    const f = figures(ss[pi], o.repeat);
    const a = ss[pi];
    const tokensPerRound = a.rounds ? (a.accepted + a.rounds) / a.rounds : 0;
    return {
      ...f, ...p,
      acceptanceRate: a.drafted ? a.accepted / a.drafted : 0,
      draftedTokens: a.drafted, acceptedTokens: a.accepted,
      tokensPerRound,
      matchesAutoregressive: greedy ? matches[pi] : null,
      speedup: median(ratios[pi]),
      speedupOfTotals: arFig.tokensPerSecond ? f.tokensPerSecond / arFig.tokensPerSecond : 0,
      bounds: speculationBounds(model.plan, p.exitLayer, p.numSpeculations, tokensPerRound),
      predictedSpeedup: tokensPerRound / cost.round(p.exitLayer, p.numSpeculations),
    };
  });
  const perPrompt = (pi: number): number[] => promptRatios[pi].map(median);
  const ad = o.adaptive ? ss[o.pairs.length] : undefined;
  const adaptive: AdaptiveFigures | undefined = ad && {
    ...figures(ad, o.repeat),
    acceptanceRate: ad.drafted ? ad.accepted / ad.drafted : 0,
    draftedTokens: ad.drafted, acceptedTokens: ad.accepted,
    tokensPerRound: ad.rounds ? (ad.accepted + ad.rounds) / ad.rounds : 0,
    matchesAutoregressive: greedy ? matches[o.pairs.length] : null,
    speedup: median(ratios[o.pairs.length]),
    speedupOfTotals: arFig.tokensPerSecond ? figures(ad, o.repeat).tokensPerSecond / arFig.tokensPerSecond : 0,
    roundsByExit: ad.byExit, roundsByK: ad.byK, draftStops: ad.draftStops,
    perPrompt: perPrompt(o.pairs.length),
    roundTimes: adaptiveRoundTimes(model),
  };
  const best = specFigs.reduce((b, s) => (s.speedup > b.speedup ? s : b));
  const confirmRepeats = o.confirmRepeats ?? o.repeat;
  const headToHead = adaptive && o.pairs.length > 1 && confirmRepeats > 0
    ? await runHeadToHead(model, o, base, spec, best, specFigs, adaptive, confirmRepeats)
    : undefined;
  const profile = o.profile ? {
    autoregressive: await profileRun(model, o, { ...base, strategy: 'autoregressive' }),
    selfSpeculative: await profileRun(model, o, spec({ exitLayer: best.exitLayer, numSpeculations: best.numSpeculations })),
    kernels: await profileKernels(model, best.exitLayer, best.numSpeculations),
  } : undefined;
  return {
    model: model.dir,
    prompts: o.prompts.length,
    maxNewTokens: o.maxNewTokens,
    temperature: o.temperature,
    topP: o.topP ?? null,
    topK: o.topK ?? null,
    autoregressive: arFig,
    selfSpeculative: best,
    speedup: best.speedup,
    acceptanceRate: best.acceptanceRate,
    ...(o.pairs.length > 1 ? { sweep: specFigs } : {}),
    ...(adaptive ? { adaptive } : {}),
    ...(headToHead ? { headToHead } : {}),
    perPromptSpeedups: o.pairs.map((_, pi) => perPrompt(pi)),
    // as each strategy's first run saw them: self-speculation adds only its GPU acceptance state
    gpuBytes: { autoregressive: reference[0].stats.gpuBytes.total, selfSpeculative: firstSpec!.stats.gpuBytes.total },
    ...(profile ? { profile } : {}),
  };
}

async function runHeadToHead(model: LscModel, o: BenchOptions, base: GenerateOptions,
  spec: (p: BenchOptions['pairs'][number]) => GenerateOptions, best: SpecFigures, sweep: SpecFigures[], adaptive: AdaptiveFigures,
  repeats: number): Promise<HeadToHead> {
  const pairOf = (f: { exitLayer: number; numSpeculations: number }): BenchOptions['pairs'][number] => ({ exitLayer: f.exitLayer, numSpeculations: f.numSpeculations });
  const dflt = o.defaultPair ?? pairOf(sweep[0]);
  const dfltFig = sweep.find((f) => f.exitLayer === dflt.exitLayer && f.numSpeculations === dflt.numSpeculations);
  const runs: GenerateOptions[] = [spec(pairOf(best)), spec(dflt), { ...base, strategy: 'adaptive', roundsPerSubmission: o.roundsPerSubmission }];
  const ratios: number[][] = runs.map(() => []);
  // each run's ratio over the oracle's in the same (prompt, repeat): adaptive against the oracle directly
  const versus: number[][] = [[], []];
  let turn = 0;
  for (let rep = 0; rep < repeats; rep++) {
    for (const [i, prompt] of o.prompts.entries()) {
      const one = { ...o, prompts: [prompt], seed: (o.seed ?? 0) + i };
      const order = [0, 1, 2].map((j) => (j + turn) % 3);
      turn++;
      const speed: number[] = [];
      for (const j of order) {
        const a = newAcc();
        await runAll(model, one, { ...base, strategy: 'autoregressive' }, a);
        const b = newAcc();
        await runAll(model, one, runs[j], b);
        if (a.tokens && b.tokens) {
          speed[j] = (b.tokens / b.decodeMs) / (a.tokens / a.decodeMs);
          ratios[j].push(speed[j]);
        }
      }
      if (speed[0] && speed[1] && speed[2]) {
        versus[0].push(speed[2] / speed[0]);
        versus[1].push(speed[2] / speed[1]);
      }
    }
    o.onProgress?.(`head to head ${rep + 1}/${repeats}: oracle ×${median(ratios[0]).toFixed(2)}, default ×${median(ratios[1]).toFixed(2)}, adaptive ×${median(ratios[2]).toFixed(2)}`);
  }
  return {
    repeats, pairs: ratios[2].length,
    oracle: { ...pairOf(best), speedup: median(ratios[0]), sweepSpeedup: best.speedup },
    default: { ...dflt, speedup: median(ratios[1]), sweepSpeedup: dfltFig?.speedup ?? NaN },
    adaptive: { speedup: median(ratios[2]), sweepSpeedup: adaptive.speedup },
    adaptiveOverOracle: median(versus[0]),
    adaptiveOverDefault: median(versus[1]),
  };
}

/** The (E, k) grid of a sweep: every compiled exit up to the middle layer (or all, for small models) × k. */
export function sweepGrid(model: LscModel, ks: number[] = [1, 2, 3, 4, 6, 8]): BenchOptions['pairs'] {
  const L = model.layers;
  const exits = model.exitCandidates.filter((e) => L <= 16 || e <= L / 2);
  return exits.flatMap((exitLayer) => ks.filter((k) => k <= model.plan.rows.kMax).map((numSpeculations) => ({ exitLayer, numSpeculations })));
}
