import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { LscError } from '../../compiler/errors.js';
import { positiveInt } from '../options.js';
import { addLoadOptions, addModelSource, addSamplingOptions, addSpeculationOptions, checkApplicable, NOT_APPLICABLE_RULE, pickModel, SPECULATION_MAX_BATCH_FLAGS, SPECULATION_MAX_BATCH_HELP } from '../shared-options.js';
import { readTextInput } from '../prompt-input.js';
import { withModel } from '../load-model.js';
import { checkExitLayer } from '../checks.js';
import { runBench, sweepGrid, type BenchReport } from '../../runtime/bench.js';
import { plural } from '../../compiler/plural.js';
import { concurrencyTable, runConcurrencyBench } from '../../runtime/batch/concurrency-bench.js';
import { DEFAULT_MAX_SEQUENCES } from '../../runtime/batch/capacity.js';

interface Opts {
  model: string; prompts?: string; maxNewTokens: number; temperature: number; exitLayer?: number;
  numSpeculations?: number; roundsPerSubmission?: number; sweep?: boolean; adaptive?: boolean; repeat: number; json?: boolean; graph?: string; plan?: string;
  ctx?: number; forceCtx?: boolean; seed: number; topP?: number; topK?: number; profile?: boolean; concurrency?: number; speculationMaxBatch?: number;
}

const DEFAULT_PROMPTS = fileURLToPath(new URL('../../../examples/prompts/code.json', import.meta.url));

async function readPrompts(file: string): Promise<string[]> {
  const text = await readTextInput(file, '--prompts');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new LscError(`cannot read prompts: ${(e as Error).message}`, { file }, 'pass a JSON array of prompt strings');
  }
  if (!Array.isArray(raw) || !raw.length || !raw.every((p) => typeof p === 'string' && p.length > 0)) {
    throw new LscError('prompts must be a non-empty JSON array of non-empty strings', { file });
  }
  return raw as string[];
}

function table(r: BenchReport): string {
  const lines = [
    `${plural(r.prompts, 'prompt')} · ${plural(r.maxNewTokens, 'new token')} each · temperature ${r.temperature}${r.topP !== null ? ` top-p ${r.topP}` : ''}${r.topK !== null ? ` top-k ${r.topK}` : ''} · ${plural(r.autoregressive.repeats, 'repeat')}`,
    `autoregressive   ${r.autoregressive.tokensPerSecond.toFixed(1).padStart(7)} tok/s`,
  ];
  const row = (s: NonNullable<BenchReport['sweep']>[number]): string =>
    `E=${String(s.exitLayer).padEnd(2)} k=${String(s.numSpeculations).padEnd(2)} ${s.tokensPerSecond.toFixed(1).padStart(7)} tok/s  ×${s.speedup.toFixed(2)}  ` +
    `acceptance ${(s.acceptanceRate * 100).toFixed(1)}%  ${s.tokensPerRound.toFixed(2)} tokens/round  cost model ×${s.predictedSpeedup.toFixed(2)}` +
    (s.matchesAutoregressive === null ? '' : s.matchesAutoregressive ? '  output = autoregressive' : '  OUTPUT DIFFERS');
  if (r.sweep) {
    lines.push('sweep:');
    for (const s of [...r.sweep].sort((a, b) => b.tokensPerSecond - a.tokensPerSecond)) lines.push(`  ${row(s)}`);
  }
  lines.push(`self-speculative ${row(r.selfSpeculative)}`);
  lines.push(`speedup ×${r.speedup.toFixed(2)} · acceptance ${(r.acceptanceRate * 100).toFixed(1)}%`);
  if (r.adaptive) {
    const a = r.adaptive;
    const hist = (h: Record<string, number>): string => Object.entries(h).map(([v, n]) => `${v}:${n}`).join(' ');
    lines.push(`adaptive         ${a.tokensPerSecond.toFixed(1).padStart(7)} tok/s  ×${a.speedup.toFixed(2)}  acceptance ${(a.acceptanceRate * 100).toFixed(1)}%  ` +
      `${a.tokensPerRound.toFixed(2)} tokens/round` + (a.matchesAutoregressive === null ? '' : a.matchesAutoregressive ? '  output = autoregressive' : '  OUTPUT DIFFERS'));
    lines.push(`  rounds by E ${hist(a.roundsByExit)} · by k ${hist(a.roundsByK)} · ${plural(a.draftStops, 'round')} stopped drafting early · per prompt ${a.perPrompt.map((x) => `×${x.toFixed(2)}`).join(' ')}`);
    if (a.roundTimes.length) {
      lines.push(`  measured ms per round (the cost model at the measured scale): ${a.roundTimes.slice(0, 6)
        .map((t) => `E=${t.exitLayer} k=${t.numSpeculations} ${t.msPerRound.toFixed(2)} (${t.modelMsPerRound.toFixed(2)})`).join(' · ')}`);
    }
  }
  const h = r.headToHead;
  if (h) {
    lines.push(`head to head after the sweep (${plural(h.pairs, 'paired run')} each, order rotated; the sweep's figure in brackets):`);
    lines.push(`  oracle E=${h.oracle.exitLayer} k=${h.oracle.numSpeculations} ×${h.oracle.speedup.toFixed(2)} [×${h.oracle.sweepSpeedup.toFixed(2)}] · ` +
      `default E=${h.default.exitLayer} k=${h.default.numSpeculations} ×${h.default.speedup.toFixed(2)} [×${h.default.sweepSpeedup.toFixed(2)}] · ` +
      `adaptive ×${h.adaptive.speedup.toFixed(2)} [×${h.adaptive.sweepSpeedup.toFixed(2)}]`);
    lines.push(`  adaptive over the oracle ×${h.adaptiveOverOracle.toFixed(2)}, over the default ×${h.adaptiveOverDefault.toFixed(2)} (medians of per-prompt ratios)`);
  }
  const b = r.selfSpeculative.bounds;
  lines.push(`ideal at ${r.selfSpeculative.tokensPerRound.toFixed(2)} tokens/round: ×${b.bandwidthBound.toFixed(2)} where reading weights bounds the time (GPU), ` +
    `×${b.computeBound.toFixed(2)} where multiply-adds do (CPU), ×${b.dispatchBound.toFixed(2)} where dispatches do`);
  if (r.profile) {
    const fmt = (x: Record<string, number>): string => Object.entries(x).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(' · ');
    lines.push('profile (ms):');
    lines.push(`  autoregressive per token: ${fmt(r.profile.autoregressive.perToken)}`);
    const sp = r.profile.selfSpeculative;
    if (sp.perRound) lines.push(`  self-speculative per round (${(sp.tokens / Math.max(1, sp.rounds)).toFixed(2)} tokens): ${fmt(sp.perRound)}`);
    lines.push(`  self-speculative per token: ${fmt(sp.perToken)}`);
  }
  return lines.join('\n') + '\n';
}

export function registerBench(program: Command): void {
  const cmd = program.command('bench')
    .description('autoregressive vs self-speculative decoding on the same prompts, in one process, with warm-up and repeats');
  addModelSource(cmd, 'model', 'model dir or Hugging Face id')
    .option('--prompts <file>', 'JSON array of prompt strings, - for stdin (default: examples/prompts/code.json)')
    .option('--max-new-tokens <n>', 'tokens per prompt', positiveInt, 96);
  addSamplingOptions(cmd, 'seed of the first prompt (the others follow)');
  addSpeculationOptions(cmd, false)
    .option('--sweep', 'sweep a grid of (exit layer, k) and report the best pair')
    .option('--adaptive', 'also run the adaptive strategy (exit and k chosen while generating) against the same autoregressive runs')
    .option('--repeat <r>', 'repeats after the warm-up (with --concurrency: runs of every level)', positiveInt, 3)
    .option('--profile', 'also break one run of each strategy down by phase: GPU draft/verify/decode, latency, encoding, CPU')
    .option(SPECULATION_MAX_BATCH_FLAGS, SPECULATION_MAX_BATCH_HELP, positiveInt)
    .option('--concurrency <n>', 'N streams at once (and 1, 2, 4, ... up to N): aggregate and per-stream tok/s against one stream alone', positiveInt);
  addLoadOptions(cmd)
    .option('--json', 'print the report as JSON')
    .addHelpText('after', `\nThe self-speculative side runs at the graph's default exit and k unless --exit-layer/--num-speculations or --sweep say otherwise.\n${NOT_APPLICABLE_RULE}`)
    .action(async (positional: string | undefined, o: Opts, self: Command) => {
      o.model = pickModel(positional, o.model, 'model');
      checkApplicable(self, o);
      if (o.sweep && (o.exitLayer !== undefined || o.numSpeculations !== undefined)) {
        throw new LscError('--sweep chooses the exit layer and k itself', {}, 'drop --exit-layer/--num-speculations, or drop --sweep');
      }
      const check = (plan: Parameters<typeof checkExitLayer>[0]): void => checkExitLayer(plan, o.exitLayer);
      if (o.concurrency !== undefined && (o.sweep || o.profile)) {
        throw new LscError('--concurrency measures streams at the default or given exit and k', {}, 'drop --sweep/--profile, or drop --concurrency');
      }
      if (o.speculationMaxBatch !== undefined && o.concurrency === undefined) {
        throw new LscError('--speculation-max-batch applies only to --concurrency (one stream always speculates)', {}, 'add --concurrency N, or drop --speculation-max-batch');
      }
      const prompts = await readPrompts(o.prompts ?? DEFAULT_PROMPTS);
      if (o.concurrency !== undefined) {
        const n = o.concurrency;
        const levels = [1, 2, 4, 8, 16, 32, 64].filter((x) => x < n).concat(n);
        const sequences = Math.max(n, DEFAULT_MAX_SEQUENCES);
        const rep = await withModel({ ...o, check, sequences }, !o.json && process.stderr.isTTY === true, (model) => runConcurrencyBench(model, {
          prompts, maxNewTokens: o.maxNewTokens, promptsPerStream: prompts.length, levels, temperature: o.temperature, topP: o.topP, topK: o.topK, seed: o.seed,
          repeat: o.repeat, exitLayer: o.exitLayer ?? model.plan.exits.defaultExitLayer, numSpeculations: o.numSpeculations ?? model.plan.exits.defaultNumSpeculations,
          onProgress: o.json ? undefined : (line) => process.stderr.write(`lsc: ${line}\n`),
        }));
        process.stdout.write(o.json ? JSON.stringify(rep, null, 2) + '\n' : concurrencyTable(rep));
        return;
      }
      const report = await withModel({ ...o, check }, !o.json && process.stderr.isTTY === true, async (model) => {
        const pairs = o.sweep ? sweepGrid(model) : [{
          exitLayer: o.exitLayer ?? model.plan.exits.defaultExitLayer,
          numSpeculations: o.numSpeculations ?? model.plan.exits.defaultNumSpeculations,
        }];
        return runBench(model, {
          prompts, maxNewTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP, topK: o.topK, seed: o.seed, repeat: o.repeat, pairs, profile: o.profile, adaptive: o.adaptive,
          roundsPerSubmission: o.roundsPerSubmission,
          defaultPair: { exitLayer: model.plan.exits.defaultExitLayer, numSpeculations: model.plan.exits.defaultNumSpeculations },
          onProgress: o.json ? undefined : (line) => process.stderr.write(`lsc: ${line}\n`),
        });
      });
      process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : table(report));
    });
}
