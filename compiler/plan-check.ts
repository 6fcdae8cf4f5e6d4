import { Ajv } from 'ajv';
import type { Graph } from './ir/graph.js';
import type { Plan } from './plan.js';
import { compileGraph, graphHash, type CompiledPlan } from './compile.js';
import { schemaError, validateGraph } from './ir/validate.js';
import { LscError, isLscError, pointer } from './errors.js';
import { planSchema } from './plan-schema.js';
import { TUNABLE_FAMILIES } from '../codegen/registry.js';
import type { TuningChoice, TuningChoices } from './passes/schedule.js';

/**
 * A plan read back from an artifact is user input: it is checked before any GPU work by
 * compiling its graph.json again with the plan's own compile options (limits, rows) and tuning
 * choices (each kernel's config) and requiring the very same plan. That covers every semantic
 * rule at once (dims, buffer sizes, KV bytes, weights, dispatch buffers, binding limits, kernel
 * bindings and launch shapes) with the compiler's own code instead of a second copy of its rules,
 * and it yields the WGSL each kernel file must hold.
 */
export const RECOMPILE = 'recompile with lsc compile';

let validate: ReturnType<Ajv['compile']> | undefined;

export interface CheckedPlan {
  plan: Plan;
  graph: Graph;
  /** kernel id -> the WGSL the compiler emits for it. */
  wgsl: Map<string, string>;
}

const KERNEL_FILE = /^kernels\/[A-Za-z0-9_]+\.wgsl$/;

function short(v: unknown): string {
  if (v === undefined) return 'missing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** The JSON pointer of the first place where `got` differs from `want`, with both values there. */
function firstDifference(got: unknown, want: unknown, at = ''): { pointer: string; got: unknown; want: unknown } | undefined {
  if (Object.is(got, want)) return undefined;
  const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (!obj(got) || !obj(want) || Array.isArray(got) !== Array.isArray(want)) return { pointer: at, got, want };
  if (Array.isArray(got) && Array.isArray(want) && got.length !== want.length) {
    return { pointer: at, got: `${got.length} items`, want: `${want.length} items` };
  }
  const keys = [...new Set([...Object.keys(want), ...Object.keys(got)])];
  for (const k of keys) {
    const d = firstDifference(got[k], want[k], at + pointer(k));
    if (d) return d;
  }
  return undefined;
}

/** JSON as it is on disk: drops undefined fields the way plan.json does. */
const asJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

function mustEqual(got: unknown, want: unknown, planFile: string, what: string): void {
  const d = firstDifference(got, want);
  if (!d) return;
  const show = (v: unknown): string => (typeof v === 'string' && /^\d+ items$/.test(v) ? v : short(v));
  throw new LscError(`plan.json does not match its graph.json: ${d.pointer || 'the plan'} is ${show(d.got)}, ${what} gives ${show(d.want)}`,
    { file: planFile, pointer: d.pointer }, RECOMPILE);
}

/** The plan with what tuning may change (kernel ids, kernel list, features) blanked out. */
function untuned(plan: Plan): unknown {
  return {
    ...plan, kernels: undefined, features: undefined,
    entries: plan.entries.map((e) => ({
      ...e, stages: e.stages.map((s) => ({ ...s, dispatches: s.dispatches.map((d) => ({ ...d, kernel: '' })) })),
    })),
  };
}

/**
 * Rethrows a compile error of the artifact's graph with the artifact's fix. With the plan's own
 * kernel configs (`configsFrom`), an emitter that rejects one is the plan's fault, not a bug.
 */
function recompiled(compile: () => CompiledPlan, configsFrom?: string): CompiledPlan {
  try {
    return compile();
  } catch (e) {
    if (isLscError(e)) throw new LscError(e.message, e.where, RECOMPILE);
    if (configsFrom === undefined) throw e;
    throw new LscError(`the kernel configs in plan.json cannot be compiled: ${(e as Error).message}`, { file: configsFrom, pointer: '/kernels' }, RECOMPILE);
  }
}

/**
 * The plan's kernel config for each tuning choice the compiler made in `first` (call order).
 * The dispatches of one fused kernel follow its choice; a dispatch belongs to the current choice
 * while its last node is one of that kernel's nodes (a stage computes each node once), and each
 * stage starts with a new one. Plan and recompile have the same dispatches in the same order.
 */
function choicesOf(plan: Plan, first: CompiledPlan, calls: string[][], planFile: string): Record<string, number>[] {
  const tuned = new Set(first.tunables.flatMap((t) => [...t.kernelIds]));
  const kernelById = new Map(plan.kernels.map((k, i) => [k.id, { k, at: pointer('kernels', i) }]));
  const configs: (Record<string, number> | undefined)[] = calls.map(() => undefined);
  let call = -1;
  first.plan.entries.forEach((e, ei) => e.stages.forEach((s, si) => {
    let fresh = true;
    s.dispatches.forEach((d, di) => {
      if (!tuned.has(d.kernel)) return;
      const last = d.nodes[d.nodes.length - 1];
      if (fresh || !calls[call].includes(last)) call++;
      fresh = false;
      if (!calls[call]?.includes(last)) throw new Error(`internal: dispatch of ${last} follows no tuning choice`);
      const at = pointer('entries', ei, 'stages', si, 'dispatches', di, 'kernel');
      const id = plan.entries[ei].stages[si].dispatches[di].kernel;
      const k = kernelById.get(id);
      if (!k) throw new LscError(`dispatch names kernel '${id}', which plan.json does not list`, { file: planFile, pointer: at }, RECOMPILE);
      const had = configs[call];
      if (had && JSON.stringify(had) !== JSON.stringify(k.k.config)) {
        throw new LscError(`kernel '${id}' has another config than the other dispatches of its fused kernel`, { file: planFile, pointer: `${k.at}/config` }, RECOMPILE);
      }
      configs[call] = k.k.config;
    });
  }));
  if (call !== calls.length - 1 || configs.some((c) => c === undefined)) throw new Error('internal: tuning choices without dispatches');
  return configs as Record<string, number>[];
}

/** Checks plan.json (schema, graph hash, then a recompile of graph.json) and returns the typed plan and graph. */
export function checkPlan(rawPlan: unknown, rawGraph: unknown, files: { plan: string; graph: string }): CheckedPlan {
  const planFile = files.plan;
  validate ??= new Ajv({ allErrors: true, strict: false }).compile(planSchema);
  if (!validate(rawPlan)) throw schemaError(validate.errors ?? [], 'plan.json does not match the lsc.plan/1 schema', planFile, RECOMPILE);
  const plan = rawPlan as Plan;
  plan.kernels.forEach((k, i) => {
    if (!KERNEL_FILE.test(k.file) || k.file !== `kernels/${k.id}.wgsl`) {
      throw new LscError(`kernel file ${JSON.stringify(k.file)} is not kernels/<kernel id>.wgsl`, { file: planFile, pointer: pointer('kernels', i, 'file') }, RECOMPILE);
    }
  });

  let graph: Graph;
  try {
    graph = validateGraph(rawGraph, files.graph);
  } catch (e) {
    throw isLscError(e) ? new LscError(e.message, e.where, RECOMPILE) : e;
  }
  const hash = graphHash(graph);
  if (plan.graph.hash !== hash) {
    throw new LscError(`plan.json was compiled from another graph (hash ${plan.graph.hash}; graph.json hashes to ${hash})`,
      { file: planFile, pointer: '/graph/hash' }, RECOMPILE);
  }

  const options = { file: files.graph, limits: plan.limits, prefillChunk: plan.rows.prefillChunk, decodeSteps: plan.rows.decodeSteps, sequences: plan.rows.sequences };
  // the scheduler asks for a tuning choice once per tunable fused kernel, in a fixed order
  const calls: string[][] = [];
  const record = (k: { nodes: string[] }): undefined => { calls.push(k.nodes); return undefined; };
  const everyFamily = (choice: TuningChoice): TuningChoices => Object.fromEntries(TUNABLE_FAMILIES.map((f) => [f, choice]));
  const first = recompiled(() => compileGraph(graph, { ...options, tuning: everyFamily(record) }));
  mustEqual(untuned(plan), asJson(untuned(first.plan)), planFile, 'compiling graph.json');
  if (firstDifference(plan.kernels, asJson(first.plan.kernels)) === undefined) return { plan, graph, wgsl: first.wgsl };

  // tuned kernels: read the plan's config for each of those choices, compile again with them
  const configs = choicesOf(plan, first, calls, planFile);
  let next = 0;
  const pick = (): Record<string, number> => configs[next++];
  const final = recompiled(() => compileGraph(graph, { ...options, tuning: everyFamily(pick) }), planFile);
  mustEqual(plan, asJson(final.plan), planFile, 'compiling graph.json with its kernel configs');
  return { plan, graph, wgsl: final.wgsl };
}
