/**
 * Models by Hugging Face id: `org/name[@revision]` resolved in the hub cache that huggingface_hub
 * (huggingface-cli, transformers) and `lsc download` share:
 *   {hub}/models--{org}--{name}/refs/{revision}        the commit a branch or tag points at
 *   {hub}/models--{org}--{name}/snapshots/{commit}/..  the files, symlinks into blobs/
 *   {hub}/models--{org}--{name}/blobs/{etag}           the contents
 * An existing local path always wins over an id, so `out/model` stays a directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import { INDEX_FILE, SINGLE_FILE, isShardFileName } from './safetensors.js';

/** Files of a repository lsc reads; the weights are SINGLE_FILE or INDEX_FILE and its shards. */
export const REQUIRED_FILES = ['config.json', 'tokenizer.json'];
export const OPTIONAL_FILES = ['tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json'];

export const DEFAULT_REVISION = 'main';

export interface ModelId {
  /** `org/name`. */
  repo: string;
  /** Branch, tag or commit after `@`, if given. */
  revision?: string;
}

// huggingface_hub's rule: word characters, '-' and '.', no '--' or '..' (the cache's separator).
const PART = /^[A-Za-z0-9][\w.-]{0,95}$/;
const COMMIT = /^[0-9a-f]{40}$/;

function validPart(s: string): boolean {
  return PART.test(s) && !s.includes('--') && !s.includes('..') && !s.endsWith('.git');
}

/** A revision is a branch, tag or commit; `refs/pr/1` style names are paths under refs/, so no '..'. */
export function validRevision(rev: string): boolean {
  return /^[\w.\-/]{1,200}$/.test(rev) && !rev.startsWith('/') && rev.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/** `org/name[@revision]` parsed, or undefined when `s` is not shaped like an id. */
export function parseModelId(s: string): ModelId | undefined {
  const at = s.indexOf('@');
  const repo = at < 0 ? s : s.slice(0, at);
  const revision = at < 0 ? undefined : s.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every(validPart)) return undefined;
  if (revision !== undefined && !validRevision(revision)) return undefined;
  return { repo, revision };
}

export function isCommitHash(rev: string): boolean {
  return COMMIT.test(rev);
}

const expandHome = (p: string): string => (p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p);

/**
 * The hub cache directory, with huggingface_hub's precedence: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE
 * (legacy), HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub.
 */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const set = (k: string): string | undefined => (env[k] ? expandHome(env[k] as string) : undefined);
  const hub = set('HF_HUB_CACHE') ?? set('HUGGINGFACE_HUB_CACHE');
  if (hub) return hub;
  const home = set('HF_HOME') ?? path.join(set('XDG_CACHE_HOME') ?? path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

/** The cache folder of a model repository: models--org--name. */
export function repoCacheDir(repo: string, hub = hubCacheDir()): string {
  return path.join(hub, `models--${repo.split('/').join('--')}`);
}

/** Files a snapshot dir lacks for lsc to load it (broken symlinks count as missing); [] when complete. */
export function missingModelFiles(dir: string, need: 'model' | 'config' = 'model'): string[] {
  const has = (f: string): boolean => fs.existsSync(path.join(dir, f)); // follows the symlink into blobs/
  const missing = (need === 'config' ? ['config.json'] : REQUIRED_FILES).filter((f) => !has(f));
  if (need === 'config') return missing;
  if (has(SINGLE_FILE)) return missing;
  if (!has(INDEX_FILE)) return [...missing, `${SINGLE_FILE} (or ${INDEX_FILE})`];
  return [...missing, ...shardsMissing(path.join(dir, INDEX_FILE), dir)];
}

function shardsMissing(indexFile: string, dir: string): string[] {
  let map: unknown;
  try {
    map = (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch {
    return []; // the checkpoint reader reports a broken index with its own message
  }
  if (typeof map !== 'object' || map === null) return [];
  const shards = new Set(Object.values(map).filter((s): s is string => typeof s === 'string' && isShardFileName(s)));
  return [...shards].filter((s) => !fs.existsSync(path.join(dir, s)));
}

/** A model's name from its directory: `name` for a snapshot of org/name, else the directory's name. */
export function modelDirName(dir: string): string {
  const abs = path.resolve(dir);
  const repo = /(?:^|[\\/])models--[^\\/]+?--([^\\/]+)[\\/]snapshots[\\/][^\\/]+$/.exec(abs);
  return repo ? repo[1] : path.basename(abs);
}

export interface ResolveOptions {
  /** What the caller reads: a whole model (default) or just config.json (graph, compile, inspect). */
  need?: 'model' | 'config';
  env?: NodeJS.ProcessEnv;
}

/**
 * The directory to load for a --model / SOURCE argument: `arg` itself when it exists on disk or
 * is not shaped like `org/name[@rev]`, else the cached snapshot of that id. The errors name the
 * cache folder and say how to fix it (lsc download).
 */
export function resolveModelPath(arg: string, opts: ResolveOptions = {}): string {
  if (fs.existsSync(arg)) return arg;
  const id = parseModelId(arg);
  if (!id) return arg;
  const hub = hubCacheDir(opts.env);
  const repoDir = repoCacheDir(id.repo, hub);
  const download = `lsc download ${arg}`;
  if (!fs.existsSync(repoDir)) {
    throw new LscError(`'${arg}' is neither a file or directory nor a model in the Hugging Face cache ${hub}`, { file: repoDir },
      `download it with ${download} (HF_HOME or HF_HUB_CACHE choose the cache), or pass a local path`);
  }
  const rev = id.revision ?? DEFAULT_REVISION;
  const commit = snapshotCommit(repoDir, rev, id.repo, download);
  const dir = path.join(repoDir, 'snapshots', commit);
  const missing = missingModelFiles(dir, opts.need);
  if (missing.length) {
    throw new LscError(`the cached snapshot of ${id.repo}@${rev} is incomplete: missing ${missing.join(', ')}`, { file: dir },
      `finish the download with ${download}`);
  }
  return dir;
}

/** The commit of `rev` in a repo's cache folder: a full commit hash with a snapshot, or refs/{rev}. */
function snapshotCommit(repoDir: string, rev: string, repo: string, download: string): string {
  const snapshots = path.join(repoDir, 'snapshots');
  if (isCommitHash(rev) && fs.existsSync(path.join(snapshots, rev))) return rev;
  const ref = path.join(repoDir, 'refs', rev);
  let commit: string | undefined;
  try {
    commit = fs.readFileSync(ref, 'utf8').trim();
  } catch {
    const known = listRevisions(repoDir);
    throw new LscError(`revision '${rev}' of ${repo} is not in the Hugging Face cache (${known})`, { file: ref },
      `download it with ${download}, or name a cached revision as ${repo}@REVISION`);
  }
  if (!isCommitHash(commit) || !fs.existsSync(path.join(snapshots, commit))) {
    throw new LscError(`refs/${rev} of ${repo} points at ${JSON.stringify(commit.slice(0, 64))}, which has no snapshot`, { file: ref },
      `download it again with ${download}`);
  }
  return commit;
}

/** "cached: main, v1.0, commits 0123456…" for an error message. */
function listRevisions(repoDir: string): string {
  const list = (d: string, prefix = ''): string[] => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return [];
    }
    return names.flatMap((e) => (e.isDirectory() ? list(path.join(d, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
  };
  const refs = list(path.join(repoDir, 'refs'));
  let commits: string[] = [];
  try {
    commits = fs.readdirSync(path.join(repoDir, 'snapshots')).filter(isCommitHash);
  } catch { /* no snapshots yet */ }
  const parts = [...refs, ...commits.map((c) => `commit ${c}`)];
  return parts.length ? `cached: ${parts.join(', ')}` : 'nothing is cached for it yet';
}
