/**
 * Seeds and mutation for the graph and config.json fuzzers: the checked-in graphs and configs,
 * mutated by test/helpers/json-mutate.ts, half of the time inside one of the sections where sizes
 * and names live (so dims, attrs, exits and config sizes get most of the attention).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LscError } from '../../../compiler/errors.js';
import type { Rng } from '../../../runtime/sampling.js';
import { ROOT } from '../run-cli.js';
import { int, mutateOnce, pick } from '../json-mutate.js';

type Json = Parameters<typeof mutateOnce>[0];

export interface Seed { name: string; file: string; doc: Json }

const load = (file: string): Seed => ({ name: path.relative(ROOT, file), file, doc: JSON.parse(fs.readFileSync(file, 'utf8')) as Json });

export function graphSeeds(): Seed[] {
  const dir = path.join(ROOT, 'graphs');
  return fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => load(path.join(dir, f)));
}

export function configSeeds(): Seed[] {
  const dir = path.join(ROOT, 'graphs', 'configs');
  return [path.join(ROOT, 'examples', 'models', 'tiny-code', 'config.json'),
    ...fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f))].map(load);
}

/**
 * A seed drawn for a case: the first (smallest) seed 70% of the time, so that most cases that
 * survive mutation compile in tens of milliseconds; the large graphs take up to 2 s each.
 */
export function drawSeed(seeds: Seed[], rng: Rng): Seed {
  return rng.next() < 0.7 ? seeds[0] : pick(rng, seeds);
}

/** 1..3 mutations of a copy of `seed`, each inside `hot[key]` half of the time; the text a user's file would hold. */
export function mutate(seed: Json, rng: Rng, hot: string[]): { text: string; label: string } {
  const doc = structuredClone(seed);
  const labels: string[] = [];
  for (let n = 1 + int(rng, 3); n > 0; n--) {
    const obj = doc as Record<string, Json>;
    const key = pick(rng, hot);
    const sub = Object.hasOwn(obj, key) ? obj[key] : undefined;
    if (rng.next() < 0.5 && sub && typeof sub === 'object') labels.push(`/${key}${mutateOnce(sub, rng).replace(/^(?!\/)/, ' ')}`);
    else labels.push(mutateOnce(doc, rng));
  }
  let text = JSON.stringify(doc);
  if (rng.next() < 0.03) {
    text = text.slice(0, int(rng, text.length));
    labels.push('text truncated');
  }
  return { text, label: labels.join('; ') };
}

/** JSON.parse with the CLI's error for a file that is not JSON (runtime/model-dir.ts readJsonFile). */
export function parseAs(text: string, file: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LscError(`${what} is not valid JSON: ${(e as Error).message}`, { file });
  }
}
