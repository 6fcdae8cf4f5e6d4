import type { Command } from 'commander';
import { LscError } from '../../compiler/errors.js';
import type { GenerateOptions, GenerateResult, GenerateStats, Strategy } from '../../runtime/generate.js';
import { collect, positiveInt } from '../options.js';
import { addLoadOptions, addModelSource, addSamplingOptions, addSpeculationOptions, checkApplicable, NOT_APPLICABLE_RULE, pickModel } from '../shared-options.js';
import { readPrompt } from '../prompt-input.js';
import { withModel, type ModelFlags } from '../load-model.js';
import { checkExitLayer } from '../checks.js';
import { checkStopStrings } from '../../runtime/stop.js';
import { plural } from '../../compiler/plural.js';

interface Opts {
  model: string; prompt?: string; promptFile?: string; maxNewTokens: number; strategy: Strategy; forceCtx?: boolean;
  exitLayer?: number; numSpeculations?: number; roundsPerSubmission?: number; temperature: number; topP?: number; topK?: number;
  seed?: number; stop?: string[]; graph?: string; plan?: string; ctx?: number; json?: boolean; compare?: boolean;
  check?: ModelFlags['check'];
}

export function statsLine(s: GenerateStats): string {
  const parts = [
    `${plural(s.generatedTokens, 'token')} (${s.stopReason})`,
    `prefill ${plural(s.promptTokens, 'token')} in ${s.prefillMs.toFixed(0)} ms`,
    `decode ${s.tokensPerSecond.toFixed(1)} tok/s`,
  ];
  if (s.strategy === 'autoregressive') parts.push('autoregressive');
  if (s.strategy === 'early-exit') parts.push(`early exit after layer ${s.exitLayer}`);
  if (s.strategy === 'self-speculative') {
    parts.push(`self-speculative E=${s.exitLayer} k=${s.numSpeculations}: acceptance ${((s.acceptanceRate ?? 0) * 100).toFixed(1)}% ` +
      `(${s.acceptedTokens}/${plural(s.draftedTokens, 'draft')}, ${plural(s.rounds, 'round')})`);
  }
  if (s.strategy === 'adaptive') {
    const hist = (h: Record<string, number> | null): string => Object.entries(h ?? {}).map(([v, n]) => `${v}:${n}`).join(' ');
    parts.push(`adaptive: acceptance ${((s.acceptanceRate ?? 0) * 100).toFixed(1)}% (${s.acceptedTokens}/${plural(s.draftedTokens, 'draft')}, ${plural(s.rounds, 'round')}); ` +
      `rounds by E ${hist(s.roundsByExit)}; by k ${hist(s.roundsByK)}; drafting stopped early in ${plural(s.draftStops ?? 0, 'round')}`);
  }
  if (s.plainTokens) parts.push(`${plural(s.plainTokens, 'token')} decoded plainly (more sequences ran than --speculation-max-batch)`);
  return `lsc: ${parts.join(' · ')}\n`;
}

/** The strategy against the autoregressive baseline on the same prompt. */
/** Median of a non-empty list. */
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1];

/**
 * The comparison of --compare: `runs` and `bases` are interleaved runs (base, run, base, run, ...;
 * the last run is the one streamed), so the speedup is the median of paired ratios.
 */
function compareLine(runs: GenerateResult[], bases: GenerateResult[]): { speedup: number; tokensPerSecond: number; autoregressiveTokensPerSecond: number; pairs: number; identical: boolean; line: string } {
  const r = runs[runs.length - 1];
  const tps = (x: GenerateResult): number => x.stats.tokensPerSecond;
  const speedup = median(runs.map((x, i) => (tps(bases[i]) > 0 ? tps(x) / tps(bases[i]) : 0)));
  const identical = runs.every((x, i) => x.tokens.join() === bases[i].tokens.join());
  const acc = r.stats.acceptanceRate === null ? '' : `, acceptance ${(r.stats.acceptanceRate * 100).toFixed(1)}%`;
  const same = r.stats.strategy === 'self-speculative' || r.stats.strategy === 'adaptive' || identical ? `; output ${identical ? 'identical to' : 'differs from'} autoregressive` : '';
  const [mine, base] = [median(runs.map(tps)), median(bases.map(tps))];
  return {
    speedup, tokensPerSecond: mine, autoregressiveTokensPerSecond: base, pairs: runs.length, identical,
    line: `${r.stats.strategy} ${mine.toFixed(1)} tok/s vs autoregressive ${base.toFixed(1)} tok/s (medians of ${runs.length} interleaved runs): ` +
      `speedup ×${speedup.toFixed(2)}${acc}${same}`,
  };
}

/** Interleaved (autoregressive, strategy) pairs that --compare times. */
const COMPARE_PAIRS = 5;

export function registerGenerate(program: Command): void {
  const cmd = program.command('generate')
    .description("generate text with self-speculative decoding (default: the graph's exit and k) or another strategy; " +
      'streams it to stdout (stats to stderr), or prints one JSON object with --json');
  addModelSource(cmd, 'model', 'model dir or Hugging Face id (config.json, tokenizer.json, model.safetensors)')
    .option('--prompt <text>', 'prompt text, or - to read it from stdin (BOS is added as the tokenizer config says)')
    .option('--prompt-file <file>', 'read the prompt from this file (- for stdin), used exactly as written')
    .option('--max-new-tokens <n>', 'most tokens to generate', positiveInt, 128);
  addSpeculationOptions(cmd, true);
  addSamplingOptions(cmd);
  cmd.option('--stop <str>', 'stop when the text contains this (repeatable; not emitted)', collect);
  addLoadOptions(cmd)
    .option('--json', 'print {"text","promptTokens","tokens","stats"} instead of streaming')
    .option('--compare', `also decode autoregressively, in turns with this strategy (warm-up, then ${COMPARE_PAIRS} timed runs each), and report the median speedup and whether the outputs match`)
    .addHelpText('after', `\n${NOT_APPLICABLE_RULE}`)
    .action(async (positional: string | undefined, o: Opts, self: Command) => {
      o.model = pickModel(positional, o.model, 'model');
      checkApplicable(self, o);
      checkStopStrings(o.stop);
      if (o.compare && o.strategy === 'autoregressive') {
        throw new LscError('--compare measures a strategy against autoregressive decoding', {}, 'drop --strategy autoregressive (self-speculative is the default)');
      }
      const prompt = await readPrompt(o);
      // fail before the weights upload: exit layer, k and prompt length against the plan
      o.check = (plan, tok) => {
        if (o.strategy !== 'autoregressive') checkExitLayer(plan, o.exitLayer);
        if (o.numSpeculations !== undefined && o.numSpeculations > plan.rows.kMax) {
          throw new LscError(`--num-speculations ${o.numSpeculations} exceeds the plan's maximum ${plan.rows.kMax}`, {}, 'recompile with a larger dims.k.max');
        }
        const n = tok.encode(prompt).length;
        if (n > plan.dims.ctx) {
          throw new LscError(`prompt: ${n} tokens do not fit the context of ${plan.dims.ctx} positions`, {}, 'shorten the prompt or pass a larger --ctx');
        }
      };
      const gen: GenerateOptions = {
        maxNewTokens: o.maxNewTokens, strategy: o.strategy, exitLayer: o.exitLayer, numSpeculations: o.numSpeculations,
        roundsPerSubmission: o.roundsPerSubmission, temperature: o.temperature, topP: o.topP, topK: o.topK, seed: o.seed, stop: o.stop,
      };
      const bases: GenerateResult[] = [];
      const runs: GenerateResult[] = [];
      const result = await withModel(o, !o.json && process.stderr.isTTY === true, async (model) => {
        if (o.compare) {
          // warm both paths (pipelines, caches); then autoregressive and this strategy in turns, so
          // a shared machine's drift hits both alike; the third run of this strategy is streamed
          const arOpts: GenerateOptions = { ...gen, strategy: 'autoregressive', exitLayer: undefined, numSpeculations: undefined, roundsPerSubmission: undefined };
          await model.complete(prompt, { ...gen, maxNewTokens: Math.min(8, gen.maxNewTokens ?? 8) });
          await model.complete(prompt, { ...arOpts, maxNewTokens: Math.min(8, gen.maxNewTokens ?? 8) });
          for (let i = 0; i < COMPARE_PAIRS; i++) {
            bases.push(await model.complete(prompt, arOpts));
            if (i + 1 < COMPARE_PAIRS) runs.push(await model.complete(prompt, gen));
          }
        }
        const run = model.generate(prompt, gen);
        for await (const chunk of run) if (!o.json && chunk.text) process.stdout.write(chunk.text);
        return run.result;
      });
      runs.push(result);
      const comparison = o.compare ? compareLine(runs, bases) : undefined;
      if (o.json) {
        process.stdout.write(JSON.stringify(comparison ? { ...result, comparison } : result) + '\n');
      } else {
        process.stdout.write('\n');
        process.stderr.write(statsLine(result.stats));
        if (comparison) process.stderr.write(`lsc: ${comparison.line}\n`);
      }
    });
}
