import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { intList, positiveInt } from '../options.js';
import { addModelSource, pickModel, weightsOption } from '../shared-options.js';
import type { WeightsSpec } from '../../compiler/ir/weights-spec.js';
import { loadGraphSource } from '../sources.js';
import { resolveModelPath } from '../../runtime/hf-cache.js';
import { tuneSession } from '../../runtime/tune-session.js';
import { userDbPath } from '../../runtime/tuning-db.js';
import { plural } from '../../compiler/plural.js';
import { shapeLabel, summaryTable, tuneReporter, type TuneReporter } from '../tune-report.js';

interface Opts { model?: string; rows?: number[]; db?: string; family?: string[]; ctx?: number; json?: boolean; budget?: number; weights?: WeightsSpec }

function budgetSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('It must be a number of seconds > 0, e.g. --budget 600.');
  return n;
}

/**
 * Records are appended as they are measured, so a stop loses at most the measurement in flight:
 * end the bar (cursor back), say how to resume, then die of the same signal.
 */
function onInterrupt(reporter: TuneReporter, db: () => string): () => void {
  const handler = (sig: NodeJS.Signals): void => {
    reporter.stop();
    process.stderr.write(`lsc: interrupted; every finished measurement is in ${db()}: rerun the same command to resume\n`);
    process.removeListener('SIGINT', handler);
    process.removeListener('SIGTERM', handler);
    process.kill(process.pid, sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => { process.removeListener('SIGINT', handler); process.removeListener('SIGTERM', handler); };
}

export function registerTune(program: Command): void {
  const cmd = program.command('tune')
    .description('autotune kernel configurations on this adapter; every configuration tried is stored, the fastest is used at load');
  addModelSource(cmd, 'source', 'model dir or Hugging Face id (weights loaded), graph file or artifact dir (zero-filled weights)')
    .option('--rows <list>', 'row counts each configuration is timed at (decode/draft 1, verify k+1)', intList('row counts', 1), [1, 4])
    .option('--family <name>', 'only this kernel family: matmul, attention, argmax (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--db <file>', 'tuning database to append to (default: $LSC_TUNING_DB, else ~/.cache/lsc/tuning.jsonl)')
    .option('--ctx <n>', "KV-cache context length (default: the graph's)", positiveInt)
    .addOption(weightsOption())
    .option('--budget <seconds>', 'wall-clock seconds for the run, loading included: no measurement starts that would end later, one still running 5 s past it is given up (a rerun resumes the rest)', budgetSeconds)
    .option('--json', 'print the results as JSON')
    .action(async (positional: string | undefined, o: Opts) => {
      const source = resolveModelPath(pickModel(positional, o.model, 'source'), { need: 'config' }); // org/name[@rev]: its cached snapshot
      const isModel = fs.existsSync(source) && fs.statSync(source).isDirectory() && fs.existsSync(path.join(source, 'config.json'))
        && fs.readdirSync(source).some((f) => f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json'));
      const src = isModel ? { modelDir: source } : (() => { const g = loadGraphSource(source); return { graph: g.graph, file: g.file }; })();
      // progress goes to stderr, also under --json (stdout stays the JSON)
      const reporter = tuneReporter(!!process.stderr.isTTY);
      const unhook = onInterrupt(reporter, () => o.db ?? userDbPath());
      let r;
      try {
        r = await tuneSession(src, {
          rows: o.rows, db: o.db, families: o.family, ctx: o.ctx, weights: o.weights, budgetSeconds: o.budget, budgetFrom: performance.timeOrigin, // from the command's start
          onStatus: (line) => reporter.status(line), onEvent: (e) => reporter.event(e),
        });
      } finally {
        reporter.stop();
        unhook();
      }
      const untried = r.results.reduce((n, x) => n + x.untried, 0);
      if (o.json) {
        const num = (x: number): number | null => (Number.isFinite(x) ? x : null); // JSON has no Infinity/NaN
        const results = r.results.map((x) => ({ ...x, bestMs: num(x.bestMs), defaultMs: num(x.defaultMs) }));
        process.stdout.write(JSON.stringify({ ...r, releasing: undefined, results, untried }, null, 2) + '\n');
        if (r.releasing) process.exit(0); // see below
        return;
      }
      process.stdout.write(`adapter: ${r.adapter}\ndatabase: ${r.db} (${plural(r.appended, 'record')} appended)\n`);
      process.stdout.write(summaryTable(r.results));
      for (const x of r.results.filter((y) => y.abandoned)) {
        process.stdout.write(`budget: gave up measuring ${shapeLabel(x.key)} ${JSON.stringify(x.abandoned)} 5 s past the budget (nothing recorded for it)\n`);
      }
      if (untried) process.stdout.write(`budget spent: ${plural(untried, 'configuration')} left untried; rerun to measure them\n`);
      // a given-up compile would hold the process until it ends (tens of seconds): the records are written, so go
      if (r.releasing) process.exit(0);
    });
}
