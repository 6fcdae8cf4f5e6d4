/**
 * Mutations of JSON documents for the parser fuzzers: values replaced by ones of other types or
 * out-of-range numbers, keys deleted or added (prototype names included, as own properties the
 * way JSON.parse makes them), arrays shortened or grown, references swapped, deep nesting.
 */
import type { Rng } from '../../runtime/sampling.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

export function int(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n);
}

export function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[int(rng, xs.length)];
}

/** Names that break code which looks names up in plain objects. */
export const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype'];

/** Values that are valid JSON but wrong almost everywhere. */
const ODD_VALUES: Json[] = [
  null, true, false, 0, -1, 1, 2, 3, 0.5, -0.5, 1e-300, 1e308, -1e308, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 2 ** 53 + 2,
  1e6, 1e9, 1e12, 1e15, 7, 65, 127, 4097, '', ' ', 'x', '1', '-1', 'NaN', 'Infinity', '../../x', '/etc/passwd',
  'a'.repeat(10_000), [], [1], [-1, 1e12], {}, { max: 1e12 }, ...PROTOTYPE_NAMES,
];

/** A fresh copy of an odd value: the arrays and objects in ODD_VALUES are shared, and a later mutation may grow them. */
const oddValue = (rng: Rng): Json => structuredClone(pick(rng, ODD_VALUES));

function nested(depth: number): Json {
  let v: Json = 1;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

/** Every path in the document (root excluded), in document order. */
export function paths(doc: Json, prefix: Path = []): Path[] {
  const out: Path[] = [];
  if (Array.isArray(doc)) doc.forEach((v, i) => { out.push([...prefix, i], ...paths(v, [...prefix, i])); });
  else if (doc && typeof doc === 'object') for (const k of Object.keys(doc)) out.push([...prefix, k], ...paths(doc[k], [...prefix, k]));
  return out;
}

function strings(doc: Json): string[] {
  if (typeof doc === 'string') return [doc];
  if (Array.isArray(doc)) return doc.flatMap(strings);
  if (doc && typeof doc === 'object') return Object.values(doc).flatMap(strings);
  return [];
}

function set(obj: Json[] | { [k: string]: Json }, key: string | number, v: Json): void {
  Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
}

function parentOf(doc: Json, p: Path): Json[] | { [k: string]: Json } {
  let v = doc;
  for (const k of p.slice(0, -1)) v = (v as Record<string | number, Json>)[k];
  return v as Json[] | { [k: string]: Json };
}

function oddNumber(rng: Rng, old: number): number {
  switch (int(rng, 6)) {
    case 0: return -old;
    case 1: return old * pick(rng, [2, 10, 1000, 1e6]);
    case 2: return old + pick(rng, [-1, 1, 0.5]);
    case 3: return 0;
    case 4: return pick(rng, [2 ** 53 + 2, 1e12, 1e308, 2 ** 31 - 1, 2 ** 32]);
    default: return Math.floor(old / pick(rng, [2, 3, 7]));
  }
}

/** One mutation of `doc` in place; returns its label ("/dims/d := 1e12"). */
export function mutateOnce(doc: Json, rng: Rng): string {
  const all = paths(doc);
  if (!all.length) return 'empty document';
  const p = pick(rng, all);
  const parent = parentOf(doc, p);
  const key = p[p.length - 1];
  const at = '/' + p.join('/');
  const old = (parent as Record<string | number, Json>)[key];
  const kind = int(rng, 9);
  if (kind === 0 && !Array.isArray(parent)) {
    delete (parent as Record<string, Json>)[key as string];
    return `${at} deleted`;
  }
  if (kind === 1 && !Array.isArray(parent)) {
    const name = pick(rng, [...PROTOTYPE_NAMES, 'extra', String(key)]);
    const v = rng.next() < 0.5 ? old : oddValue(rng);
    set(parent, name, v);
    return `${p.slice(0, -1).map((k) => '/' + k).join('')}/${name} := ${JSON.stringify(v)?.slice(0, 40)}`;
  }
  if (kind === 2 && Array.isArray(old)) {
    if (old.length && rng.next() < 0.5) { old.splice(int(rng, old.length), 1); return `${at} shortened`; }
    old.push(old.length ? structuredClone(pick(rng, old)) : oddValue(rng));
    return `${at} grown`;
  }
  if (kind === 3 && typeof old === 'number') {
    const v = oddNumber(rng, old);
    set(parent, key, v);
    return `${at} := ${v}`;
  }
  if (kind === 4 && typeof old === 'string') {
    // a reference swapped for another name from the document
    const v = pick(rng, [...strings(doc), ...PROTOTYPE_NAMES]);
    set(parent, key, v);
    return `${at} := ${JSON.stringify(v).slice(0, 40)}`;
  }
  if (kind === 5) {
    set(parent, key, nested(pick(rng, [10, 100, 1000])));
    return `${at} := deeply nested`;
  }
  const v = oddValue(rng);
  set(parent, key, v);
  return `${at} := ${JSON.stringify(v)?.slice(0, 40)}`;
}

/** 1..maxMutations mutations of a copy of `seed`; returns the text a user's file would hold. */
export function mutateJson(seed: unknown, rng: Rng, maxMutations = 3): { text: string; label: string } {
  const doc = structuredClone(seed) as Json;
  const labels: string[] = [];
  const n = 1 + int(rng, maxMutations);
  for (let i = 0; i < n; i++) labels.push(mutateOnce(doc, rng));
  let text = JSON.stringify(doc);
  if (rng.next() < 0.05) {
    text = text.slice(0, int(rng, text.length));
    labels.push('text truncated');
  }
  return { text, label: labels.join('; ') };
}
