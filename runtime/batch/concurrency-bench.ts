import { LscError } from '../../compiler/errors.js';
import type { LscModel } from '../model.js';
import type { GenerateOptions } from '../generate.js';
import { median } from '../median.js';

/**
 * Many streams at once on one model (`lsc bench --concurrency N`): each stream generates for its
 * own sequence of prompts, all streams start together, and throughput is tokens over wall-clock
 * time (prefill included), for one stream alone and for each level of concurrency, per strategy.
 * Every level runs `repeat` times, the levels' order rotating with the repeat, and a level's ratio
 * is the median over repeats of its throughput over one stream's in the same repeat: a shared
 * machine's speed drifts by tens of percent within a minute, so one run of each level is not a
 * measurement of the ratio.
 */
export interface ConcurrencyBenchOptions {
  prompts: string[];
  maxNewTokens: number;
  /** Prompts each stream generates for, one after another (stream s starts at prompt s). */
  promptsPerStream: number;
  /** Concurrency levels; 1 is measured anyway, as the single-stream reference. */
  levels: number[];
  /** Runs of every level (default 1). */
  repeat?: number;
  temperature: number;
  topP?: number;
  topK?: number;
  seed?: number;
  exitLayer: number;
  numSpeculations: number;
  onProgress?: (line: string) => void;
}

export interface LevelFigures {
  concurrency: number;
  /** All streams' tokens over the wall-clock time from the common start to the last stream's end: the median over repeats. */
  aggregateTokensPerSecond: number;
  /** The same, per repeat. */
  aggregateRuns: number[];
  /** Each stream's tokens over its own wall-clock time (every repeat's streams). */
  perStreamTokensPerSecond: number[];
  /** Median over repeats of aggregate / single stream in the same repeat. */
  ratio: number;
  tokens: number;
  /** Self-speculative: tokens decoded plainly because more than speculationMaxBatch sequences ran. */
  plainTokens: number;
  /** Summed over repeats, as tokens. */
  wallMs: number;
}

export interface StrategyConcurrency {
  strategy: 'autoregressive' | 'self-speculative';
  /** The highest level asked for, and its figures (what `--json` readers want first). */
  concurrency: number;
  aggregateTokensPerSecond: number;
  singleStreamTokensPerSecond: number;
  ratio: number;
  levels: LevelFigures[];
  /** Whether every greedy stream's tokens equalled the same prompt's tokens alone. */
  matchesSingleStream: boolean | null;
}

export interface ConcurrencyReport {
  model: string;
  prompts: number;
  maxNewTokens: number;
  promptsPerStream: number;
  temperature: number;
  repeats: number;
  sequences: number;
  /** Greedy speculation ran while at most this many sequences shared the model (LscModel.speculationMaxBatch). */
  speculationMaxBatch: number;
  autoregressive: StrategyConcurrency;
  selfSpeculative: StrategyConcurrency;
  /** KV bytes: per sequence, allocated (all slots), and in use at the peak of each level. */
  kv: { perSequence: number; allocated: number; peakInUse: Record<number, number> };
}

export async function runConcurrencyBench(model: LscModel, o: ConcurrencyBenchOptions): Promise<ConcurrencyReport> {
  if (!o.prompts.length) throw new LscError('no prompts to benchmark');
  const slots = model.gpuBytes.sequences;
  const top = Math.max(...o.levels);
  if (top > slots + model.queue.maxQueued) {
    throw new LscError(`--concurrency ${top} is more than the model's ${slots} sequences and ${model.queue.maxQueued} queued requests`);
  }
  const levels = [...new Set([1, ...o.levels])].sort((a, b) => a - b);
  const base: GenerateOptions = { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP, topK: o.topK, stopAtEos: false };
  const peakInUse: Record<number, number> = {};
  const reference = new Map<string, string>();

  const runLevel = async (opts: GenerateOptions, n: number, key: string): Promise<{ fig: LevelFigures; matches: boolean }> => {
    let matches = true;
    if (model.engine) model.engine.stats.peakActive = 0;
    const t0 = performance.now();
    const streams = Array.from({ length: n }, async (_, s) => {
      let tokens = 0;
      let plain = 0;
      for (let j = 0; j < o.promptsPerStream; j++) {
        const pi = (s + j) % o.prompts.length;
        const r = await model.complete(o.prompts[pi], { ...opts, seed: (o.seed ?? 0) + pi });
        tokens += r.tokens.length;
        plain += r.stats.plainTokens ?? 0;
        const ref = `${key}:${pi}`;
        if (o.temperature === 0 && reference.get(ref) !== r.tokens.join()) matches = false;
      }
      return { tokens, plain, ms: performance.now() - t0 };
    });
    const done = await Promise.all(streams);
    const wallMs = performance.now() - t0;
    const tokens = done.reduce((a, d) => a + d.tokens, 0);
    const b = model.gpuBytes;
    peakInUse[n] = Math.max(peakInUse[n] ?? 0, (model.engine?.stats.peakActive ?? 1) * b.kvPerSequence);
    return {
      fig: {
        concurrency: n, aggregateTokensPerSecond: (tokens * 1000) / wallMs, aggregateRuns: [(tokens * 1000) / wallMs],
        perStreamTokensPerSecond: done.map((d) => (d.tokens * 1000) / d.ms), ratio: 0, tokens,
        plainTokens: done.reduce((a, d) => a + d.plain, 0), wallMs,
      },
      matches,
    };
  };

  const repeats = o.repeat ?? 1;
  if (!Number.isSafeInteger(repeats) || repeats < 1) throw new LscError(`repeat must be a positive integer, got ${repeats}`);
  const strategy = async (name: StrategyConcurrency['strategy'], opts: GenerateOptions): Promise<StrategyConcurrency> => {
    // warm-up: every prompt alone (the references each stream's tokens must equal), then one batched level
    for (const [pi, p] of o.prompts.entries()) reference.set(`${name}:${pi}`, (await model.complete(p, { ...opts, seed: (o.seed ?? 0) + pi })).tokens.join());
    await runLevel(opts, Math.min(2, top), name);
    const runs = levels.map((): LevelFigures[] => []);
    let matches = true;
    for (let rep = 0; rep < repeats; rep++) {
      for (let j = 0; j < levels.length; j++) {
        const li = (j + rep) % levels.length;
        const { fig, matches: m } = await runLevel(opts, levels[li], name);
        matches &&= m;
        runs[li].push(fig);
        o.onProgress?.(`${name}: ${levels[li]} stream${levels[li] > 1 ? 's' : ''} ${fig.aggregateTokensPerSecond.toFixed(1)} tok/s` +
          (repeats > 1 ? ` (repeat ${rep + 1}/${repeats})` : ''));
      }
    }
    const figs = runs.map((rs, li): LevelFigures => ({
      concurrency: levels[li],
      aggregateTokensPerSecond: median(rs.map((f) => f.aggregateTokensPerSecond)),
      aggregateRuns: rs.map((f) => f.aggregateTokensPerSecond),
      perStreamTokensPerSecond: rs.flatMap((f) => f.perStreamTokensPerSecond),
      ratio: median(rs.map((f, rep) => (runs[0][rep].aggregateTokensPerSecond ? f.aggregateTokensPerSecond / runs[0][rep].aggregateTokensPerSecond : 0))),
      tokens: rs.reduce((a, f) => a + f.tokens, 0),
      plainTokens: rs.reduce((a, f) => a + f.plainTokens, 0),
      wallMs: rs.reduce((a, f) => a + f.wallMs, 0),
    }));
    const last = figs.find((f) => f.concurrency === top)!;
    return {
      strategy: name, concurrency: top, aggregateTokensPerSecond: last.aggregateTokensPerSecond,
      singleStreamTokensPerSecond: figs[0].aggregateTokensPerSecond, ratio: last.ratio, levels: figs,
      matchesSingleStream: o.temperature === 0 ? matches : null,
    };
  };

  const ar = await strategy('autoregressive', { ...base, strategy: 'autoregressive' });
  const ss = await strategy('self-speculative', { ...base, strategy: 'self-speculative', exitLayer: o.exitLayer, numSpeculations: o.numSpeculations });
  const b = model.gpuBytes;
  return {
    model: model.dir, prompts: o.prompts.length, maxNewTokens: o.maxNewTokens, promptsPerStream: o.promptsPerStream,
    temperature: o.temperature, repeats, sequences: slots, speculationMaxBatch: model.speculationMaxBatch, autoregressive: ar, selfSpeculative: ss,
    kv: { perSequence: b.kvPerSequence, allocated: b.kvCache, peakInUse },
  };
}

/** The report as the CLI prints it. */
export function concurrencyTable(r: ConcurrencyReport): string {
  const mb = (x: number): string => `${(x / 2 ** 20).toFixed(1)} MiB`;
  const lines = [`${r.prompts} prompts · ${r.maxNewTokens} new tokens each · ${r.promptsPerStream} prompts per stream · temperature ${r.temperature} · ${r.sequences} KV slots · ` +
    `greedy speculation only while at most ${r.speculationMaxBatch} at once`];
  if (r.repeats > 1) lines.push(`each level ${r.repeats} times, in rotated order: medians, and × is the median of each repeat's ratio to one stream`);
  for (const s of [r.autoregressive, r.selfSpeculative]) {
    lines.push(`${s.strategy}:`);
    for (const f of s.levels) {
      const per = f.perStreamTokensPerSecond;
      lines.push(`  ${String(f.concurrency).padStart(2)} stream${f.concurrency > 1 ? 's' : ' '}  ${f.aggregateTokensPerSecond.toFixed(1).padStart(7)} tok/s aggregate  ×${f.ratio.toFixed(2)}  ` +
        `per stream ${Math.min(...per).toFixed(1)}–${Math.max(...per).toFixed(1)} tok/s` +
        (f.plainTokens ? `  (${((100 * f.plainTokens) / f.tokens).toFixed(0)}% of tokens decoded plainly)` : ''));
    }
    if (s.matchesSingleStream !== null) lines.push(`  output = single stream: ${s.matchesSingleStream ? 'yes' : 'NO'}`);
  }
  lines.push(`KV cache: ${mb(r.kv.perSequence)} per sequence, ${mb(r.kv.allocated)} allocated; peak in use ` +
    Object.entries(r.kv.peakInUse).map(([n, v]) => `${n} streams ${mb(v)}`).join(', '));
  return lines.join('\n') + '\n';
}
