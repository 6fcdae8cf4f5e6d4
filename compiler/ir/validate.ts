import { Ajv, type ErrorObject } from 'ajv';
import { LscError, pointer } from '../errors.js';
import type { Graph, NodeDecl } from './graph.js';
import { graphSchema } from './schema.js';
import { checkAttrs } from './attrs.js';
import { own } from './own.js';

let compiled: ReturnType<Ajv['compile']> | undefined;

function describe(e: ErrorObject): string {
  switch (e.keyword) {
    case 'required': return `missing property '${(e.params as { missingProperty: string }).missingProperty}'`;
    case 'additionalProperties': return `unknown property '${(e.params as { additionalProperty: string }).additionalProperty}'`;
    case 'enum': return `must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
    case 'const': return `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
    default: return e.message ?? e.keyword;
  }
}

/** The most specific of ajv's errors, as one LscError with its JSON pointer (shared by the graph and plan schemas). */
export function schemaError(errors: ErrorObject[], what: string, file: string | undefined, hint: string): LscError {
  // oneOf failures report every branch; prefer the deepest concrete error
  const best = [...errors].sort((a, b) => b.instancePath.length - a.instancePath.length
    || Number(a.keyword === 'oneOf') - Number(b.keyword === 'oneOf'))[0];
  return new LscError(`${what}: ${best ? describe(best) : 'invalid'}`, { file, pointer: best?.instancePath ?? '' }, hint);
}

/** Schema check with ajv: the most specific error, as one message with its JSON pointer. */
function checkSchema(raw: unknown, file?: string): void {
  compiled ??= new Ajv({ allErrors: true, strict: false }).compile(graphSchema);
  if (compiled(raw)) return;
  throw schemaError(compiled.errors ?? [], 'graph does not match the lsc.graph/1 schema', file, 'see graphs/*.json for valid graphs');
}

function checkIds(nodes: NodeDecl[], at: (i: number) => string, file?: string): void {
  const seen = new Map<string, number>();
  const later = new Map(nodes.map((n, i) => [n.id, i]));
  nodes.forEach((n, i) => {
    checkAttrs(n, at(i), file);
    if (seen.has(n.id)) throw new LscError(`duplicate node id '${n.id}'`, { file, pointer: `${at(i)}/id` });
    n.in.forEach((name, j) => {
      const k = later.get(name);
      if (k !== undefined && k >= i) {
        throw new LscError(`node '${n.id}' reads '${name}', which is produced by itself or a later node (a cycle)`,
          { file, pointer: `${at(i)}/in/${j}` }, 'order nodes so that every input is produced first');
      }
    });
    seen.set(n.id, i);
  });
}

/**
 * RoPE numbers the schema cannot bound: JSON's 1e999 parses as Infinity, and Llama 3 scaling
 * divides by high_freq_factor − low_freq_factor (runtime/rope-table.ts).
 */
function checkRope(rope: Graph['rope'], file?: string): void {
  const fields: [string, unknown][] = [['theta', rope.theta], ...Object.entries(rope.scaling ?? {}).filter(([k]) => k !== 'type')];
  for (const [key, v] of fields) {
    if (typeof v === 'number' && !Number.isFinite(v)) {
      throw new LscError(`rope ${key} must be a finite number, got ${v}`,
        { file, pointer: key === 'theta' ? '/rope/theta' : pointer('rope', 'scaling', key) });
    }
  }
  const s = rope.scaling;
  if (s?.type === 'llama3' && !(s.highFreqFactor > s.lowFreqFactor)) {
    throw new LscError(`rope scaling highFreqFactor (${s.highFreqFactor}) must be larger than lowFreqFactor (${s.lowFreqFactor})`,
      { file, pointer: '/rope/scaling/highFreqFactor' });
  }
}

/** Schema plus the semantic checks that need no shapes; shapes are checked by infer-shapes. */
export function validateGraph(raw: unknown, file?: string): Graph {
  checkSchema(raw, file);
  const g = raw as Graph;
  checkRope(g.rope, file);
  checkIds(g.body, (i) => pointer('body', i), file);
  for (const [name, b] of Object.entries(g.blocks)) {
    checkIds(b.nodes, (i) => pointer('blocks', name, 'nodes', i), file);
    if (!b.nodes.some((n) => n.id === b.out)) {
      throw new LscError(`block output '${b.out}' is not a node of block '${name}'`, { file, pointer: pointer('blocks', name, 'out') });
    }
  }
  for (const [name, w] of Object.entries(g.weights)) {
    if (w.tiedTo !== undefined) {
      const t = own(g.weights, w.tiedTo);
      if (!t) throw new LscError(`weight '${name}' is tied to unknown weight '${w.tiedTo}'`, { file, pointer: pointer('weights', name, 'tiedTo') });
      if (t.tiedTo !== undefined) throw new LscError(`weight '${name}' is tied to '${w.tiedTo}', which is itself tied`, { file, pointer: pointer('weights', name, 'tiedTo') });
      if (JSON.stringify(t.shape) !== JSON.stringify(w.shape) || !!t.perLayer !== !!w.perLayer) {
        throw new LscError(`weight '${name}' must have the shape of '${w.tiedTo}' it is tied to`, { file, pointer: pointer('weights', name, 'shape') });
      }
    }
  }
  for (const out of g.outputs) {
    if (!g.body.some((n) => n.id === out)) throw new LscError(`output '${out}' is not a body node`, { file, pointer: '/outputs' });
  }
  if (!g.exit.candidates.includes(g.defaults.exitLayer)) {
    throw new LscError(`default exit layer ${g.defaults.exitLayer} is not among the exit candidates ${JSON.stringify(g.exit.candidates)}`,
      { file, pointer: '/defaults/exitLayer' });
  }
  const k = g.dims.k;
  const kMax = typeof k === 'object' && typeof k.max === 'number' ? k.max : undefined;
  if (kMax !== undefined && g.defaults.numSpeculations > kMax) {
    throw new LscError(`default numSpeculations ${g.defaults.numSpeculations} exceeds dims.k.max ${kMax}`, { file, pointer: '/defaults/numSpeculations' });
  }
  return g;
}
