import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { LscError } from '../../compiler/errors.js';
import { nonNegativeNumber, positiveInt, ROUNDS_PER_SUBMISSION_HELP } from '../options.js';
import { withModel } from '../load-model.js';
import { checkExitLayer } from '../checks.js';
import { runBench, sweepGrid, type BenchReport } from '../../runtime/bench.js';

interface Opts {
  model: string; prompts?: string; maxNewTokens: number; temperature: number; exitLayer?: number;
  numSpeculations?: number; roundsPerSubmission?: number; sweep?: boolean; repeat: number; json?: boolean; graph?: string; ctx?: number; seed?: number;
  profile?: boolean;
}

const DEFAULT_PROMPTS = fileURLToPath(new URL('../../../examples/prompts/code.json', import.meta.url));

function readPrompts(file: string): string[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
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
    `prompts ${r.prompts} · ${r.maxNewTokens} new tokens each · temperature ${r.temperature} · ${r.autoregressive.repeats} repeats`,
    `autoregressive   ${r.autoregressive.tokensPerSecond.toFixed(1).padStart(7)} tok/s`,
  ];
  const row = (s: NonNullable<BenchReport['sweep']>[number]): string =>
    `E=${String(s.exitLayer).padEnd(2)} k=${String(s.numSpeculations).padEnd(2)} ${s.tokensPerSecond.toFixed(1).padStart(7)} tok/s  ×${s.speedup.toFixed(2)}  ` +
    `acceptance ${(s.acceptanceRate * 100).toFixed(1)}%  ${s.tokensPerRound.toFixed(2)} tokens/round` +
    (s.matchesAutoregressive === null ? '' : s.matchesAutoregressive ? '  output = autoregressive' : '  OUTPUT DIFFERS');
  if (r.sweep) {
    lines.push('sweep:');
    for (const s of [...r.sweep].sort((a, b) => b.tokensPerSecond - a.tokensPerSecond)) lines.push(`  ${row(s)}`);
  }
  lines.push(`self-speculative ${row(r.selfSpeculative)}`);
  lines.push(`speedup ×${r.speedup.toFixed(2)} · acceptance ${(r.acceptanceRate * 100).toFixed(1)}%`);
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
  program.command('bench')
    .description('autoregressive vs self-speculative decoding on the same prompts, in one process, with warm-up and repeats')
    .requiredOption('--model <dir>', 'Hugging Face model dir')
    .option('--prompts <file>', 'JSON array of prompt strings (default: examples/prompts/code.json)')
    .option('--max-new-tokens <n>', 'tokens per prompt', positiveInt, 96)
    .option('--temperature <t>', 'sampling temperature; 0 is greedy', nonNegativeNumber, 0)
    .option('--seed <s>', 'seed of the first prompt (the others follow)', positiveInt)
    .option('--exit-layer <e>', "exit layer (default: the graph's)", positiveInt)
    .option('--num-speculations <k>', "drafts per round (default: the graph's)", positiveInt)
    .option('--rounds-per-submission <r>', ROUNDS_PER_SUBMISSION_HELP, positiveInt)
    .option('--sweep', 'sweep a grid of (exit layer, k) and report the best pair')
    .option('--repeat <r>', 'repeats after the warm-up', positiveInt, 3)
    .option('--profile', 'also break one run of each strategy down by phase: GPU draft/verify/decode, latency, encoding, CPU')
    .option('--graph <file>', 'use this graph file instead of building one from config.json')
    .option('--ctx <n>', "KV-cache context length (default: the graph's)", positiveInt)
    .option('--json', 'print the report as JSON')
    .action(async (o: Opts) => {
      if (o.sweep && (o.exitLayer !== undefined || o.numSpeculations !== undefined)) {
        throw new LscError('--sweep chooses the exit layer and k itself', {}, 'drop --exit-layer/--num-speculations, or drop --sweep');
      }
      const prompts = readPrompts(o.prompts ?? DEFAULT_PROMPTS);
      const check = (plan: Parameters<typeof checkExitLayer>[0]): void => checkExitLayer(plan, o.exitLayer);
      const report = await withModel({ ...o, check }, !o.json && process.stderr.isTTY === true, async (model) => {
        const pairs = o.sweep ? sweepGrid(model) : [{
          exitLayer: o.exitLayer ?? model.plan.exits.defaultExitLayer,
          numSpeculations: o.numSpeculations ?? model.plan.exits.defaultNumSpeculations,
        }];
        return runBench(model, {
          prompts, maxNewTokens: o.maxNewTokens, temperature: o.temperature, seed: o.seed, repeat: o.repeat, pairs, profile: o.profile,
          roundsPerSubmission: o.roundsPerSubmission,
          onProgress: o.json ? undefined : (line) => process.stderr.write(`lsc: ${line}\n`),
        });
      });
      process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : table(report));
    });
}
