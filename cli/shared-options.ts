import { Option, type Command } from 'commander';
import { LscError } from '../compiler/errors.js';
import { nonNegativeInt, nonNegativeNumber, positiveInt, probability, seed32 } from './options.js';
import { STRATEGY_NAMES, type Strategy } from '../runtime/generate.js';
import { parseWeightsSpec, type WeightsSpec } from '../compiler/ir/weights-spec.js';

/**
 * Option definitions shared by the commands that take them (parser, help and default written
 * once), and the one rule for flags that do not apply.
 */

/** The rule, as --help states it. */
export const NOT_APPLICABLE_RULE =
  'A flag that does not apply to the request is refused (exit 2), never silently ignored: --top-p, --top-k and --seed\n' +
  'need --temperature > 0; --exit-layer needs early-exit or self-speculative decoding; --num-speculations needs\n' +
  'self-speculative decoding; --rounds-per-submission needs greedy self-speculative decoding; --ctx does not apply\n' +
  "to --plan (an artifact's context is fixed when it is compiled), nor does --weights; --force-ctx needs --ctx.";

/** The one help sentence about --ctx past the model's trained length (see checkCtx). */
export const FORCE_CTX_HELP = "allow --ctx beyond the model's trained length (config.json max_position_embeddings; RoPE past it degrades output)";

/** Where the model is the main argument: `[model]` and `--model`, either form (see pickModel). */
export function addModelSource(cmd: Command, name: string, doc: string): Command {
  return cmd.argument(`[${name}]`, doc).option('--model <path>', `the same as the ${name.toUpperCase()} argument`);
}

/** The model given as the argument or as --model, exactly once. */
export function pickModel(positional: string | undefined, flag: string | undefined, name: string): string {
  if (positional !== undefined && flag !== undefined && positional !== flag) {
    throw new LscError(`the ${name} is given twice ('${positional}' and --model '${flag}')`, {}, `pass it once, as the argument or as --model`);
  }
  const m = positional ?? flag;
  if (m === undefined) throw new LscError(`no ${name} given`, {}, `pass it as the argument or as --model`);
  return m;
}

/** --weights FORMAT[:head=FORMAT]: the matrices' format and the LM head's (compiler/ir/weights-spec.ts), for commands that compile. */
export function weightsOption(): Option {
  return new Option('--weights <format>', "weight matrices as f16, q8 or q4 (GGUF's Q8_0 / Q4_0 blocks); q4 keeps the LM head at q8, " +
    "q4:head=q4 (or head=f16) sets the head's format; the embedding stays f16 (default: the graph's)")
    .argParser((v: string): WeightsSpec => parseWeightsSpec(v));
}

/** --graph, --plan, --ctx, --force-ctx, --weights: how a model is compiled or loaded. */
export function addLoadOptions(cmd: Command): Command {
  return cmd
    .option('--graph <file>', 'use this graph file instead of building one from config.json')
    .option('--plan <dir>', 'run this compiled artifact (lsc compile) instead of compiling')
    .option('--ctx <n>', "KV-cache context length (default: the graph's)", positiveInt)
    .option('--force-ctx', FORCE_CTX_HELP)
    .addOption(weightsOption());
}

/** --speculation-max-batch, for the commands that run many sequences at once (serve, bench --concurrency). */
export const SPECULATION_MAX_BATCH_FLAGS = '--speculation-max-batch <n>';
export const SPECULATION_MAX_BATCH_HELP = 'greedy speculation only while at most N sequences run at once; more decode plainly, with the same tokens (default: 1 on a CPU adapter, 8 on a GPU)';

export const STRATEGIES = STRATEGY_NAMES;
export const DEFAULT_ROUNDS_PER_SUBMISSION = 8;

/** --exit-layer, --num-speculations, --rounds-per-submission (and --strategy when `strategy`). */
export function addSpeculationOptions(cmd: Command, strategy: boolean): Command {
  if (strategy) {
    cmd.addOption(new Option('--strategy <name>', "decoding strategy (self-speculative: draft with the exit layer, verify with the full model; the output is the full model's; adaptive: self-speculative choosing the exit and k while generating)")
      .choices([...STRATEGIES]).default('self-speculative'));
  }
  return cmd
    .option('--exit-layer <e>', "exit layer for early-exit / self-speculative (default: the graph's; adaptive: fixes it)", positiveInt)
    .option('--num-speculations <k>', "drafts per round for self-speculative (default: the graph's; adaptive: the most, default the plan's)", positiveInt)
    .option('--rounds-per-submission <r>', 'greedy speculation rounds chained on the GPU per submission (1: read back every round)',
      positiveInt, DEFAULT_ROUNDS_PER_SUBMISSION);
}

/** --temperature, --top-p, --top-k, --seed. */
export function addSamplingOptions(cmd: Command, seedDoc = 'random seed for sampling'): Command {
  return cmd
    .option('--temperature <t>', 'sampling temperature; 0 is greedy', nonNegativeNumber, 0)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', probability)
    .option('--top-k <k>', 'sample from the k most likely tokens (0: all)', nonNegativeInt)
    .option('--seed <s>', seedDoc, seed32, 0);
}

interface Applicable {
  strategy?: Strategy; temperature: number; ctx?: number; plan?: string; forceCtx?: boolean; weights?: unknown;
}

/**
 * The rule above, for the flags `cmd` has: each one given on the command line must apply.
 * `strategy` undefined: the command runs self-speculative decoding among others (bench).
 */
export function checkApplicable(cmd: Command, o: Applicable): void {
  const given = (flag: string): boolean => {
    const src = cmd.getOptionValueSource(flag);
    return src === 'cli' || src === 'env';
  };
  const refuse = (flag: string, needs: string, fix: string): never => {
    throw new LscError(`${flag} applies only to ${needs}`, {}, fix);
  };
  if (o.temperature === 0) {
    for (const [key, flag] of [['topP', '--top-p'], ['topK', '--top-k'], ['seed', '--seed']]) {
      if (given(key)) refuse(flag, 'sampling (--temperature > 0); greedy decoding has no randomness', `add --temperature T (e.g. 0.8), or drop ${flag}`);
    }
  }
  if (o.strategy === 'autoregressive' && given('exitLayer')) {
    refuse('--exit-layer', 'early-exit or self-speculative decoding', 'drop --strategy autoregressive (self-speculative is the default), or drop --exit-layer');
  }
  const speculative = o.strategy === undefined || o.strategy === 'self-speculative' || o.strategy === 'adaptive';
  if (!speculative && given('numSpeculations')) {
    refuse('--num-speculations', 'self-speculative or adaptive decoding', `drop --strategy ${o.strategy} (self-speculative is the default), or drop --num-speculations`);
  }
  if (given('roundsPerSubmission')) {
    if (!speculative) {
      refuse('--rounds-per-submission', 'self-speculative or adaptive decoding', `drop --strategy ${o.strategy}, or drop --rounds-per-submission`);
    }
    if (o.temperature > 0) {
      refuse('--rounds-per-submission', 'greedy decoding (--temperature 0): sampled rounds read back every round', 'drop --rounds-per-submission');
    }
  }
  if (o.plan !== undefined && o.ctx !== undefined) {
    refuse('--ctx', 'compiling; an artifact (--plan) fixes its context when compiled', 'drop --ctx, or recompile the artifact with lsc compile --ctx N');
  }
  if (o.plan !== undefined && o.weights !== undefined) {
    refuse('--weights', 'compiling; an artifact (--plan) fixes its weight format when compiled', 'drop --weights, or recompile the artifact with lsc compile --weights');
  }
  if (o.forceCtx && o.ctx === undefined) refuse('--force-ctx', 'a --ctx beyond the trained length', 'drop --force-ctx');
}
