import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Graph } from './ir/graph.js';
import type { CompiledPlan } from './compile.js';
import type { Plan } from './plan.js';
import { LscError } from './errors.js';
import { MANIFEST_FILE, firstUnlisted, manifestText, readListedFiles, readManifest, removeListed, type Manifest } from './artifact-manifest.js';
import { RECOMPILE, checkPlan } from './plan-check.js';
import { formatSummary } from './summary.js';

/**
 * The artifact directory: plan.json, kernels/<id>.wgsl, graph.json (the validated graph the plan
 * was compiled from), summary.txt (what lsc compile prints, derived from the plan alone) and
 * manifest.json (every other file with its size and sha256, written last).
 * It is written whole or not at all, and lsc replaces only a directory its manifest proves lsc wrote.
 */
export const PLAN_FILE = 'plan.json';
export const GRAPH_FILE = 'graph.json';
export const SUMMARY_FILE = 'summary.txt';

const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';

/** True for a directory that holds a valid lsc manifest (a complete artifact lsc wrote). */
export function isArtifactDir(dir: string): boolean {
  try {
    return readManifest(dir, RECOMPILE) !== undefined;
  } catch {
    return false;
  }
}

/** True for a directory that looks like an artifact, valid or not, of this or an older lsc. */
export function looksLikeArtifactDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, MANIFEST_FILE)) || fs.existsSync(path.join(dir, PLAN_FILE));
}

/**
 * The manifest of an existing output directory that lsc may replace: a valid manifest whose
 * files are all unchanged and nothing else. Undefined for an empty directory. Anything else is
 * refused: lsc never removes a file it did not write.
 */
function replaceable(dir: string, target: string): Manifest | undefined {
  const refuse = (why: string, fix = `choose another -o DIR, or delete '${dir}' yourself`): LscError =>
    new LscError(`output '${dir}' ${why}; refusing to replace it`, { file: dir }, fix);
  const st = fs.lstatSync(target);
  if (st.isSymbolicLink()) throw refuse('is a symbolic link, not a directory lsc wrote');
  if (!st.isDirectory()) throw refuse('exists and is not a directory', 'choose another -o DIR');
  if (!fs.readdirSync(target).length) return undefined;
  let manifest: Manifest | undefined;
  try {
    manifest = readManifest(target, '');
  } catch (e) {
    throw refuse(`has an invalid ${MANIFEST_FILE} (${(e as Error).message})`);
  }
  if (!manifest) {
    throw refuse(fs.existsSync(path.join(target, PLAN_FILE))
      ? `holds ${PLAN_FILE} but no ${MANIFEST_FILE}: an artifact of an older lsc, or files lsc did not write`
      : `is not empty and holds no lsc artifact (no ${MANIFEST_FILE})`);
  }
  try {
    readListedFiles(target, manifest, '');
  } catch (e) {
    throw refuse(`does not match its ${MANIFEST_FILE} (${(e as LscError).message})`);
  }
  const extra = firstUnlisted(target, manifest);
  if (extra !== undefined) throw refuse(`holds '${extra}', which lsc did not write`);
  return manifest;
}

/**
 * Writes into a temp dir next to `dir`, then renames it into place, so a failure or a crash
 * never leaves a half-written artifact. An existing `dir` is replaced only if it is empty or an
 * artifact lsc wrote (valid manifest, nothing else in it); its old files are removed one by one
 * from the manifest's list, never as a whole tree.
 */
export function writeArtifact(dir: string, compiled: CompiledPlan, graph: Graph, extra: Record<string, string> = {}): void {
  const target = path.resolve(dir);
  const old = fs.existsSync(target) || isLink(target) ? { manifest: replaceable(dir, target) } : undefined;
  const files = new Map<string, string>();
  for (const k of compiled.plan.kernels) {
    const src = compiled.wgsl.get(k.id);
    if (src === undefined) throw new Error(`internal: no WGSL for kernel ${k.id}`);
    files.set(k.file, src);
  }
  files.set(GRAPH_FILE, json(graph));
  files.set(SUMMARY_FILE, formatSummary(compiled.plan));
  for (const [name, text] of Object.entries(extra)) files.set(name, text);
  files.set(PLAN_FILE, json(compiled.plan));

  const parent = path.dirname(target);
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw new LscError(`cannot create the folder of output '${dir}': ${(e as Error).message}`, { file: dir }, 'choose another -o DIR');
  }
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = path.join(parent, `.${path.basename(target)}.tmp-${tag}`);
  const aside = path.join(parent, `.${path.basename(target)}.old-${tag}`);
  try {
    fs.mkdirSync(path.join(tmp, 'kernels'), { recursive: true });
    for (const [name, text] of files) fs.writeFileSync(path.join(tmp, ...name.split('/')), text);
    // manifest.json last: its presence marks a complete artifact
    fs.writeFileSync(path.join(tmp, MANIFEST_FILE), manifestText(files));
    if (old) fs.renameSync(target, aside);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (fs.existsSync(aside) && !fs.existsSync(target)) fs.renameSync(aside, target);
    throw e;
  }
  if (old?.manifest) removeListed(aside, old.manifest);
  else if (old) fs.rmdirSync(aside);
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

export interface Artifact {
  plan: Plan;
  graph: Graph;
  wgsl: Map<string, string>;
}

function parseJson(data: Buffer, file: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (e) {
    throw new LscError(`${path.basename(file)} is not valid JSON: ${(e as Error).message}`, { file }, RECOMPILE);
  }
}

/**
 * Reads an artifact directory back and checks all of it before anything runs it: the manifest
 * (every file present, unchanged, inside the directory), plan.json against a recompile of
 * graph.json (compiler/plan-check.ts), each kernel file against the WGSL that recompile emits, and
 * summary.txt against the summary of the checked plan (like the kernels, it is derived from it).
 */
export function readArtifact(dir: string): Artifact {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    st = undefined;
  }
  if (!st?.isDirectory()) throw new LscError('no such artifact directory', { file: dir }, 'pass a directory written by lsc compile');
  const manifest = readManifest(dir, RECOMPILE);
  if (!manifest) {
    if (fs.existsSync(path.join(dir, PLAN_FILE))) {
      throw new LscError(`'${dir}' was written by an older lsc (it has ${PLAN_FILE} but no ${MANIFEST_FILE}, so its files cannot be checked)`,
        { file: dir }, `${RECOMPILE} (delete the old directory first, or choose another -o DIR)`);
    }
    throw new LscError(`'${dir}' holds no lsc artifact (no ${MANIFEST_FILE})`, { file: dir }, 'pass a directory written by lsc compile');
  }
  const data = readListedFiles(dir, manifest, RECOMPILE);
  const planFile = path.join(dir, PLAN_FILE);
  const graphFile = path.join(dir, GRAPH_FILE);
  for (const [name, file] of [[PLAN_FILE, planFile], [GRAPH_FILE, graphFile], [SUMMARY_FILE, path.join(dir, SUMMARY_FILE)]]) {
    if (!data.has(name)) throw new LscError(`${MANIFEST_FILE} does not list ${name}`, { file: path.join(dir, MANIFEST_FILE) }, RECOMPILE);
  }
  const { plan, graph, wgsl } = checkPlan(parseJson(data.get(PLAN_FILE)!, planFile), parseJson(data.get(GRAPH_FILE)!, graphFile),
    { plan: planFile, graph: graphFile });
  for (const k of plan.kernels) {
    const file = path.join(dir, ...k.file.split('/'));
    const text = data.get(k.file);
    if (text === undefined) throw new LscError(`${k.file} is not listed in ${MANIFEST_FILE}`, { file }, RECOMPILE);
    if (text.toString('utf8') !== wgsl.get(k.id)) {
      throw new LscError(`${k.file} is not the WGSL lsc compiles for this plan (edited, or written by another lsc version)`, { file }, RECOMPILE);
    }
  }
  if (data.get(SUMMARY_FILE)!.toString('utf8') !== formatSummary(plan)) {
    throw new LscError(`${SUMMARY_FILE} is not the summary lsc writes for this plan (edited, or written by another lsc version)`,
      { file: path.join(dir, SUMMARY_FILE) }, RECOMPILE);
  }
  return { plan, graph, wgsl };
}
