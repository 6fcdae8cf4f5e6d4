/**
 * Self-speculative sweeps of both bundled models in one process, one after the other, so their
 * figures share a machine state: per model the grid of (E, k) with paired speedups over
 * autoregressive decoding, acceptance, and the three ideals at the measured tokens per round;
 * then one line per model with its best pair.
 *
 *   node dist/bench/bundled-models.js [--repeat N] [--max-new-tokens N] [--json]
 *
 * Grids: tiny-code every exit 1..7 × k ∈ {1, 2, 3, 4, 6}; tiny-code-deep exits 1..6 and 8 (up to
 * half its depth, to keep the run near ten minutes here) × the same k.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LscModel } from '../runtime/model.js';
import { runBench, type BenchReport } from '../runtime/bench.js';

const { values } = parseArgs({
  options: {
    repeat: { type: 'string', default: '1' },
    'max-new-tokens': { type: 'string', default: '96' },
    json: { type: 'boolean', default: false },
  },
});
const repeat = Number(values.repeat);
const maxNewTokens = Number(values['max-new-tokens']);
const prompts = JSON.parse(fs.readFileSync(new URL('../../examples/prompts/code.json', import.meta.url), 'utf8')) as string[];
const KS = [1, 2, 3, 4, 6];
const models: { name: string; exits: number[] }[] = [
  { name: 'tiny-code', exits: [1, 2, 3, 4, 5, 6, 7] },
  { name: 'tiny-code-deep', exits: [1, 2, 3, 4, 5, 6, 8] },
];

const x = (v: number): string => `×${v.toFixed(2)}`;
const reports: Record<string, BenchReport> = {};
for (const m of models) {
  const dir = fileURLToPath(new URL(`../../examples/models/${m.name}`, import.meta.url));
  const model = await LscModel.load(dir);
  try {
    const pairs = m.exits.flatMap((exitLayer) => KS.map((numSpeculations) => ({ exitLayer, numSpeculations })));
    reports[m.name] = await runBench(model, {
      prompts, maxNewTokens, temperature: 0, repeat, pairs,
      onProgress: values.json ? undefined : (line) => process.stderr.write(`${m.name}: ${line}\n`),
    });
  } finally {
    model.dispose();
  }
}

if (values.json) {
  process.stdout.write(JSON.stringify(reports, null, 2) + '\n');
} else {
  const lines: string[] = [];
  for (const m of models) {
    const r = reports[m.name];
    lines.push(`\n${m.name}: autoregressive ${r.autoregressive.tokensPerSecond.toFixed(1)} tok/s; paired speedup (acceptance; ideals bandwidth · compute · dispatch)`);
    lines.push(`| E \\ k | ${KS.join(' | ')} |`, `|---|${KS.map(() => '---').join('|')}|`);
    for (const E of m.exits) {
      const cells = KS.map((k) => {
        const s = r.sweep!.find((f) => f.exitLayer === E && f.numSpeculations === k)!;
        const b = s.bounds;
        const cell = `${x(s.speedup)} (${(s.acceptanceRate * 100).toFixed(0)}%; ${b.bandwidthBound.toFixed(2)} · ${b.computeBound.toFixed(2)} · ${b.dispatchBound.toFixed(2)})`;
        return s.matchesAutoregressive === false ? `${cell} MISMATCH` : cell;
      });
      lines.push(`| ${E} | ${cells.join(' | ')} |`);
    }
  }
  lines.push('');
  for (const m of models) {
    const s = reports[m.name].selfSpeculative;
    const all = reports[m.name].sweep!;
    const maxOf = (key: 'bandwidthBound' | 'computeBound' | 'dispatchBound'): number => Math.max(...all.map((f) => f.bounds[key]));
    lines.push(`${m.name}: best E=${s.exitLayer} k=${s.numSpeculations} ${x(s.speedup)} at ${(s.acceptanceRate * 100).toFixed(1)}% acceptance `
      + `(ideals there ${x(s.bounds.bandwidthBound)} · ${x(s.bounds.computeBound)} · ${x(s.bounds.dispatchBound)}; best in the grid ${x(maxOf('bandwidthBound'))} · ${x(maxOf('computeBound'))} · ${x(maxOf('dispatchBound'))}); `
      + `every pair = autoregressive: ${all.every((f) => f.matchesAutoregressive !== false)}`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}
