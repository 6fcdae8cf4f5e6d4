import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { intList, positiveInt } from '../options.js';
import { addModelSource, pickModel } from '../shared-options.js';
import { loadGraphSource } from '../sources.js';
import { resolveModelPath } from '../../runtime/hf-cache.js';
import { tuneSession } from '../../runtime/tune-session.js';

interface Opts { model?: string; rows?: number[]; db?: string; family?: string[]; ctx?: number; json?: boolean }

export function registerTune(program: Command): void {
  const cmd = program.command('tune')
    .description('autotune kernel configurations on this adapter; every configuration tried is stored, the fastest is used at load');
  addModelSource(cmd, 'source', 'model dir or Hugging Face id (weights loaded), graph file or artifact dir (zero-filled weights)')
    .option('--rows <list>', 'row counts each configuration is timed at (decode/draft 1, verify k+1)', intList('row counts', 1), [1, 4])
    .option('--family <name>', 'only this kernel family: matmul, attention, argmax (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--db <file>', 'tuning database to append to (default: $LSC_TUNING_DB, else ~/.cache/lsc/tuning.jsonl)')
    .option('--ctx <n>', "KV-cache context length (default: the graph's)", positiveInt)
    .option('--json', 'print the results as JSON')
    .action(async (positional: string | undefined, o: Opts) => {
      const source = resolveModelPath(pickModel(positional, o.model, 'source'), { need: 'config' }); // org/name[@rev]: its cached snapshot
      const isModel = fs.existsSync(source) && fs.statSync(source).isDirectory() && fs.existsSync(path.join(source, 'config.json'))
        && fs.readdirSync(source).some((f) => f.endsWith('.safetensors') || f.endsWith('.safetensors.index.json'));
      const src = isModel ? { modelDir: source } : (() => { const g = loadGraphSource(source); return { graph: g.graph, file: g.file }; })();
      const r = await tuneSession(src, {
        rows: o.rows, db: o.db, families: o.family, ctx: o.ctx,
        onProgress: o.json ? undefined : (line) => process.stderr.write(`lsc: ${line}\n`),
      });
      if (o.json) {
        process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        return;
      }
      process.stdout.write(`adapter: ${r.adapter}\ndatabase: ${r.db}\n`);
      for (const x of r.results) {
        const gain = x.defaultMs / x.bestMs;
        process.stdout.write(`${x.family.padEnd(9)} ${x.defaultMs.toFixed(3).padStart(8)} → ${x.bestMs.toFixed(3).padStart(8)} ms  ×${gain.toFixed(2)}  ${JSON.stringify(x.best)}  (${x.tried} tried)\n`);
      }
    });
}
