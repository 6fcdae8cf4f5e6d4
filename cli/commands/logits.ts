import type { Command } from 'commander';
import { LscError } from '../../compiler/errors.js';
import type { LscTokenizer } from '../../runtime/tokenizer.js';
import { intList, positiveInt } from '../options.js';
import { addLoadOptions, addModelSource, checkApplicable, pickModel } from '../shared-options.js';
import { withModel, type ModelFlags } from '../load-model.js';
import { checkExitLayer } from '../checks.js';

interface Opts {
  model: string; prompt?: string; tokens?: number[]; exitLayer?: number; allPositions?: boolean;
  json?: boolean; graph?: string; plan?: string; ctx?: number; forceCtx?: boolean; weights?: ModelFlags['weights'];
  check?: ModelFlags['check'];
}

/** Shortest decimal that reads back as the same f32: half the JSON of Array.from(f32). */
function f32(v: number): string {
  if (!Number.isFinite(v)) return 'null';
  for (let p = 6; p < 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return String(s);
  }
  return String(Number(v.toPrecision(9)));
}

function top(row: Float32Array, n: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (best.length < n || row[i] > row[best[best.length - 1]]) {
      best.push(i);
      best.sort((a, b) => row[b] - row[a]);
      if (best.length > n) best.pop();
    }
  }
  return best;
}

/** Text `id` adds after `prefix`, not the decoding of `id` alone (which drops a leading space). */
function piece(tok: LscTokenizer, prefix: number[], id: number): string {
  const ctx = prefix.slice(-16);
  const base = tok.decode(ctx);
  const full = tok.decode([...ctx, id]);
  const s = full.startsWith(base) ? full.slice(base.length) : '';
  return JSON.stringify(s || tok.tokenText(id));
}

function formatRows(tok: LscTokenizer, ids: number[], rows: Float32Array[], exitLayer?: number): string {
  const first = ids.length - rows.length;
  const out: string[] = [];
  rows.forEach((row, r) => {
    const pos = first + r;
    const via = exitLayer === undefined ? 'full model' : `exit after layer ${exitLayer}`;
    out.push(`position ${pos}: token ${ids[pos]} ${piece(tok, ids.slice(0, pos), ids[pos])} → next (${via}):`);
    top(row, 5).forEach((id, i) => {
      out.push(`  ${i + 1}. ${String(id).padStart(6)}  ${row[id].toFixed(4).padStart(10)}  ${piece(tok, ids.slice(0, pos + 1), id)}`);
    });
  });
  return out.join('\n') + '\n';
}

export function registerLogits(program: Command): void {
  const cmd = program.command('logits')
    .description('logits of the last position (or all) through the full model or exit E: for checking lsc against another engine');
  addModelSource(cmd, 'model', 'model dir or Hugging Face id (config.json, tokenizer.json, model.safetensors)')
    .option('--prompt <text>', 'prompt text (tokenized as generate does)')
    .option('--tokens <ids>', 'token ids, e.g. 1,535,300 (used as given: no BOS added)', intList('token ids', 0))
    .option('--exit-layer <e>', 'through the exit after layer E (shared final norm + LM head)', positiveInt)
    .option('--all-positions', 'one row per position instead of the last only')
    .option('--json', 'print {"tokens":[ids],"logits":[[floats]]}');
  addLoadOptions(cmd)
    .action(async (positional: string | undefined, o: Opts, self: Command) => {
      o.model = pickModel(positional, o.model, 'model');
      checkApplicable(self, { temperature: 0, ctx: o.ctx, plan: o.plan, forceCtx: o.forceCtx, weights: o.weights });
      if ((o.prompt === undefined) === (o.tokens === undefined)) {
        throw new LscError('pass exactly one of --prompt TEXT and --tokens IDS');
      }
      o.check = (plan) => checkExitLayer(plan, o.exitLayer);
      await withModel(o, !o.json && process.stderr.isTTY === true, async (model) => {
        const ids = o.tokens ?? model.tokenizer.encode(o.prompt!);
        const rows = await model.logits(ids, { exitLayer: o.exitLayer, allPositions: o.allPositions });
        if (o.json) {
          const logits = rows.map((r) => `[${Array.from(r, f32).join(',')}]`).join(',');
          process.stdout.write(`{"tokens":${JSON.stringify(ids)},"logits":[${logits}]}\n`);
        } else {
          process.stdout.write(formatRows(model.tokenizer, ids, rows, o.exitLayer));
        }
      });
    });
}
