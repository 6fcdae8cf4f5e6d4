import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Graph } from './ir/graph.js';
import type { CompiledPlan } from './compile.js';
import type { Plan } from './plan.js';
import { LscError } from './errors.js';

/**
 * The artifact directory: plan.json, kernels/<id>.wgsl and graph.json (the validated graph the
 * plan was compiled from). It is written whole or not at all.
 */
export const PLAN_FILE = 'plan.json';
export const GRAPH_FILE = 'graph.json';

const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';

/** True for a directory that holds a compiled artifact. */
export function isArtifactDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, PLAN_FILE));
}

/**
 * Writes into a temp dir next to `dir`, then renames it into place, so a failure or a crash
 * never leaves a half-written artifact. An existing `dir` is replaced only if it is empty or an
 * artifact: never delete a directory the user had something else in.
 */
export function writeArtifact(dir: string, compiled: CompiledPlan, graph: Graph, extra: Record<string, string> = {}): void {
  const target = path.resolve(dir);
  if (fs.existsSync(target)) {
    if (!fs.statSync(target).isDirectory()) {
      throw new LscError(`output '${dir}' exists and is not a directory`, { file: dir }, 'choose another -o DIR');
    }
    if (fs.readdirSync(target).length && !isArtifactDir(target)) {
      throw new LscError(`output directory '${dir}' is not empty and holds no lsc artifact; refusing to replace it`,
        { file: dir }, 'choose another -o DIR, or empty it');
    }
  }
  const parent = path.dirname(target);
  fs.mkdirSync(parent, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = path.join(parent, `.${path.basename(target)}.tmp-${tag}`);
  const old = path.join(parent, `.${path.basename(target)}.old-${tag}`);
  try {
    fs.mkdirSync(path.join(tmp, 'kernels'), { recursive: true });
    for (const k of compiled.plan.kernels) {
      const src = compiled.wgsl.get(k.id);
      if (src === undefined) throw new Error(`internal: no WGSL for kernel ${k.id}`);
      fs.writeFileSync(path.join(tmp, k.file), src);
    }
    fs.writeFileSync(path.join(tmp, GRAPH_FILE), json(graph));
    for (const [name, text] of Object.entries(extra)) fs.writeFileSync(path.join(tmp, name), text);
    // plan.json last: its presence marks a complete artifact
    fs.writeFileSync(path.join(tmp, PLAN_FILE), json(compiled.plan));
    if (fs.existsSync(target)) fs.renameSync(target, old);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (fs.existsSync(old) && !fs.existsSync(target)) fs.renameSync(old, target);
    throw e;
  }
  fs.rmSync(old, { recursive: true, force: true });
}

export interface Artifact {
  plan: Plan;
  graph: Graph;
  wgsl: Map<string, string>;
}

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new LscError(`cannot read ${what}: ${(e as Error).message}`, { file }, 'recompile with lsc compile');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LscError(`${what} is not valid JSON: ${(e as Error).message}`, { file }, 'recompile with lsc compile');
  }
}

/** Reads an artifact directory back (plan, graph, kernel sources). */
export function readArtifact(dir: string): Artifact {
  const planFile = path.join(dir, PLAN_FILE);
  const plan = readJson(planFile, PLAN_FILE) as Plan;
  if (plan?.format !== 'lsc.plan/1') {
    throw new LscError(`${PLAN_FILE} is not an lsc.plan/1 plan`, { file: planFile, pointer: '/format' }, 'recompile with lsc compile');
  }
  const graph = readJson(path.join(dir, GRAPH_FILE), GRAPH_FILE) as Graph;
  const wgsl = new Map<string, string>();
  for (const k of plan.kernels) {
    const file = path.join(dir, k.file);
    if (fs.existsSync(file)) wgsl.set(k.id, fs.readFileSync(file, 'utf8'));
  }
  return { plan, graph, wgsl };
}
