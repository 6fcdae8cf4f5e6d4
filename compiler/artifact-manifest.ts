import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { LscError } from './errors.js';

/**
 * manifest.json: how lsc proves an artifact directory is its own. It lists every file lsc wrote
 * there with its size and sha256 and is written last, so its presence marks a complete artifact.
 * Loading checks every listed file against it; compile replaces a directory only if the
 * manifest is valid and the directory holds nothing else.
 */
export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'lsc.artifact/1';

export interface ManifestEntry {
  /** Relative path, '/'-separated: a top-level file or kernels/<name>. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  files: ManifestEntry[];
}

/**
 * The only paths lsc writes in an artifact: plain names at the top or under kernels/. No '..',
 * no absolute path, no hidden file, no backslash: a listed path cannot leave the directory.
 */
const SAFE_PATH = /^(kernels\/)?[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export function isSafeArtifactPath(p: string): boolean {
  return SAFE_PATH.test(p);
}

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** manifest.json's text for files (path -> contents). */
export function manifestText(files: Map<string, Buffer | string>): string {
  const entries: ManifestEntry[] = [...files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, data]) => {
    if (!isSafeArtifactPath(p)) throw new Error(`internal: unsafe artifact path ${p}`);
    return { path: p, bytes: Buffer.byteLength(data), sha256: sha256(data) };
  });
  const manifest: Manifest = { format: MANIFEST_FORMAT, files: entries };
  return JSON.stringify(manifest, null, 2) + '\n';
}

/** Parses and checks manifest.json; undefined when there is none. Throws LscError(hint) when it is not a valid one. */
export function readManifest(dir: string, hint: string): Manifest | undefined {
  const file = path.join(dir, MANIFEST_FILE);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return undefined;
  }
  const bad = (what: string, pointer = ''): LscError => new LscError(`${MANIFEST_FILE} ${what}`, { file, pointer }, hint);
  if (!st.isFile()) throw bad('is not a regular file (lsc writes no links)');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw bad(`is not valid JSON: ${(e as Error).message}`);
  }
  const m = raw as Partial<Manifest> | null;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw bad('is not a JSON object');
  if (m.format !== MANIFEST_FORMAT) throw bad(`is not an ${MANIFEST_FORMAT} manifest`, '/format');
  if (!Array.isArray(m.files)) throw bad('has no "files" list', '/files');
  const seen = new Set<string>();
  m.files.forEach((f: Partial<ManifestEntry> | null, i) => {
    const at = `/files/${i}`;
    if (typeof f !== 'object' || f === null) throw bad('lists an entry that is not an object', at);
    if (typeof f.path !== 'string' || !isSafeArtifactPath(f.path)) {
      throw bad(`lists ${JSON.stringify(f.path)}, which is not a plain file name in the artifact or under kernels/`, `${at}/path`);
    }
    if (seen.has(f.path)) throw bad(`lists '${f.path}' twice`, `${at}/path`);
    seen.add(f.path);
    if (!Number.isSafeInteger(f.bytes) || (f.bytes as number) < 0) throw bad('has an entry without a byte size', `${at}/bytes`);
    if (typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256)) throw bad('has an entry without a sha256', `${at}/sha256`);
  });
  return m as Manifest;
}

/**
 * Reads every file the manifest lists and checks it is a regular file inside `dir` (no link, no
 * linked folder on the way: its real path is compared) with the listed size and sha256.
 * Returns the contents checked, so callers parse exactly the bytes that were hashed.
 */
export function readListedFiles(dir: string, manifest: Manifest, hint: string): Map<string, Buffer> {
  const root = fs.realpathSync(dir);
  const out = new Map<string, Buffer>();
  for (const f of manifest.files) {
    const file = path.join(dir, ...f.path.split('/'));
    const where = { file };
    let st: fs.Stats;
    try {
      st = fs.lstatSync(file);
    } catch {
      throw new LscError(`${f.path}, listed in ${MANIFEST_FILE}, is missing`, where, hint);
    }
    if (!st.isFile()) throw new LscError(`${f.path} is not a regular file (lsc writes no links or folders there)`, where, hint);
    if (fs.realpathSync(file) !== path.join(root, ...f.path.split('/'))) {
      throw new LscError(`${f.path} resolves outside the artifact (a linked folder on its path)`, where, hint);
    }
    const data = fs.readFileSync(file);
    if (data.length !== f.bytes || sha256(data) !== f.sha256) {
      throw new LscError(`${f.path} changed since lsc compile wrote it (its ${data.length !== f.bytes ? 'size' : 'sha256'} differs from ${MANIFEST_FILE})`, where, hint);
    }
    out.set(f.path, data);
  }
  return out;
}

/**
 * The first entry under `dir` that the manifest does not account for: a file it does not list,
 * a link, a folder that holds no listed file. Walks with lstat: links are reported, never followed.
 */
export function firstUnlisted(dir: string, manifest: Manifest): string | undefined {
  const files = new Set([MANIFEST_FILE, ...manifest.files.map((f) => f.path)]);
  const folders = new Set(manifest.files.filter((f) => f.path.includes('/')).map((f) => f.path.slice(0, f.path.lastIndexOf('/'))));
  const walk = (rel: string): string | undefined => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const p = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, p));
      if (st.isDirectory() && folders.has(p)) {
        const inner = walk(p);
        if (inner) return inner;
      } else if (!(st.isFile() && files.has(p))) {
        return p;
      }
    }
    return undefined;
  };
  return walk('');
}

/** Removes exactly the files the manifest lists, the manifest, then the folders if empty. */
export function removeListed(dir: string, manifest: Manifest): void {
  for (const f of manifest.files) fs.rmSync(path.join(dir, ...f.path.split('/')), { force: true });
  fs.rmSync(path.join(dir, MANIFEST_FILE), { force: true });
  const folders = [...new Set(manifest.files.filter((f) => f.path.includes('/')).map((f) => f.path.slice(0, f.path.lastIndexOf('/'))))];
  for (const d of [...folders.sort().reverse(), '']) {
    try {
      fs.rmdirSync(path.join(dir, d));
    } catch {
      // something appeared there meanwhile: not ours, so it stays
    }
  }
}
