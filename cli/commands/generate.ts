import { Option, type Command } from 'commander';
import { LscError } from '../../compiler/errors.js';
import type { GenerateOptions, GenerateResult, GenerateStats, Strategy } from '../../runtime/generate.js';
import { collect, nonNegativeInt, nonNegativeNumber, positiveInt, probability, ROUNDS_PER_SUBMISSION_HELP } from '../options.js';
import { withModel, type ModelFlags } from '../load-model.js';
import { checkExitLayer } from '../checks.js';
import { checkStopStrings } from '../../runtime/stop.js';

interface Opts {
  model: string; prompt: string; maxNewTokens: number; strategy: Strategy;
  exitLayer?: number; numSpeculations?: number; roundsPerSubmission?: number; temperature: number; topP?: number; topK?: number;
  seed?: number; stop?: string[]; graph?: string; plan?: string; ctx?: number; json?: boolean; compare?: boolean;
  check?: ModelFlags['check'];
}

/** Flags that only one strategy reads are errors elsewhere: a silently ignored --exit-layer misleads. */
function checkStrategyFlags(o: Opts): void {
  if (o.exitLayer !== undefined && o.strategy === 'autoregressive') {
    throw new LscError('--exit-layer applies to --strategy early-exit or self-speculative', {}, 'add --strategy self-speculative (or early-exit)');
  }
  if (o.numSpeculations !== undefined && o.strategy !== 'self-speculative') {
    throw new LscError('--num-speculations applies to --strategy self-speculative', {}, 'add --strategy self-speculative');
  }
  if (o.roundsPerSubmission !== undefined && o.strategy !== 'self-speculative') {
    throw new LscError('--rounds-per-submission applies to --strategy self-speculative', {}, 'add --strategy self-speculative');
  }
}

export function statsLine(s: GenerateStats): string {
  const parts = [
    `${s.generatedTokens} tokens (${s.stopReason})`,
    `prefill ${s.promptTokens} tokens in ${s.prefillMs.toFixed(0)} ms`,
    `decode ${s.tokensPerSecond.toFixed(1)} tok/s`,
  ];
  if (s.strategy === 'early-exit') parts.push(`early exit after layer ${s.exitLayer}`);
  if (s.strategy === 'self-speculative') {
    parts.push(`self-speculative E=${s.exitLayer} k=${s.numSpeculations}: acceptance ${((s.acceptanceRate ?? 0) * 100).toFixed(1)}% ` +
      `(${s.acceptedTokens}/${s.draftedTokens} drafts, ${s.rounds} rounds)`);
  }
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
  const same = r.stats.strategy === 'self-speculative' || identical ? `; output ${identical ? 'identical to' : 'differs from'} autoregressive` : '';
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
  program.command('generate')
    .description('generate text; streams it to stdout (stats to stderr), or prints one JSON object with --json')
    .requiredOption('--model <dir>', 'Hugging Face model dir (config.json, tokenizer.json, model.safetensors)')
    .requiredOption('--prompt <text>', 'prompt text (BOS is added as the tokenizer config says)')
    .option('--max-new-tokens <n>', 'most tokens to generate', positiveInt, 128)
    .addOption(new Option('--strategy <name>', 'decoding strategy')
      .choices(['autoregressive', 'early-exit', 'self-speculative']).default('autoregressive'))
    .option('--exit-layer <e>', "exit layer for early-exit / self-speculative (default: the graph's)", positiveInt)
    .option('--num-speculations <k>', "drafts per round for self-speculative (default: the graph's)", positiveInt)
    .option('--rounds-per-submission <r>', ROUNDS_PER_SUBMISSION_HELP, positiveInt)
    .option('--temperature <t>', 'sampling temperature; 0 is greedy', nonNegativeNumber, 0)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', probability)
    .option('--top-k <k>', 'sample from the k most likely tokens (0: all)', nonNegativeInt)
    .option('--seed <s>', 'random seed for sampling (default 0)', nonNegativeInt)
    .option('--stop <str>', 'stop when the text contains this (repeatable; not emitted)', collect)
    .option('--graph <file>', 'use this graph file instead of building one from config.json')
    .option('--plan <dir>', 'run this compiled artifact (lsc compile) instead of compiling')
    .option('--ctx <n>', "KV-cache context length (default: the graph's)", positiveInt)
    .option('--json', 'print {"text","promptTokens","tokens","stats"} instead of streaming')
    .option('--compare', `also decode autoregressively, in turns with this strategy (warm-up, then ${COMPARE_PAIRS} timed runs each), and report the median speedup and whether the outputs match`)
    .action(async (o: Opts) => {
      checkStrategyFlags(o);
      checkStopStrings(o.stop);
      if (o.compare && o.strategy === 'autoregressive') {
        throw new LscError('--compare measures a strategy against autoregressive decoding', {}, 'add --strategy self-speculative (or early-exit)');
      }
      // fail before the weights upload: exit layer, k and prompt length against the plan
      o.check = (plan, tok) => {
        if (o.strategy !== 'autoregressive') checkExitLayer(plan, o.exitLayer);
        if (o.numSpeculations !== undefined && o.numSpeculations > plan.rows.kMax) {
          throw new LscError(`--num-speculations ${o.numSpeculations} exceeds the plan's maximum ${plan.rows.kMax}`, {}, 'recompile with a larger dims.k.max');
        }
        const n = tok.encode(o.prompt).length;
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
          await model.complete(o.prompt, { ...gen, maxNewTokens: Math.min(8, gen.maxNewTokens ?? 8) });
          await model.complete(o.prompt, { ...arOpts, maxNewTokens: Math.min(8, gen.maxNewTokens ?? 8) });
          for (let i = 0; i < COMPARE_PAIRS; i++) {
            bases.push(await model.complete(o.prompt, arOpts));
            if (i + 1 < COMPARE_PAIRS) runs.push(await model.complete(o.prompt, gen));
          }
        }
        const run = model.generate(o.prompt, gen);
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
