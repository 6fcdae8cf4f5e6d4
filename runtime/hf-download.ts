/**
 * `lsc download`: fetches the files lsc reads from a Hugging Face repository into the hub cache
 * (runtime/hf-cache.ts), laid out the way huggingface_hub does it, so either tool reuses the
 * other's downloads. Per file: a HEAD of {endpoint}/{repo}/resolve/{rev}/{file} gives the commit
 * (X-Repo-Commit), the blob's etag and size (X-Linked-Etag / X-Linked-Size for LFS files, whose
 * resolve URL redirects to a CDN); the GET writes blobs/{etag}.incomplete, resuming with a Range
 * request, checks the size (and the sha256, when the etag is one), renames it into blobs/, and
 * links snapshots/{commit}/{file} to it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import {
  DEFAULT_REVISION, OPTIONAL_FILES, REQUIRED_FILES, hubCacheDir, isCommitHash, parseModelId, repoCacheDir, validRevision,
} from './hf-cache.js';
import { INDEX_FILE, SINGLE_FILE, isShardFileName } from './safetensors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface DownloadOptions {
  /** Branch, tag or commit; also accepted as `org/name@rev`. Default main. */
  revision?: string;
  /** Default $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default $HF_TOKEN, else the token file huggingface-cli login writes. */
  token?: string;
  /** Hub cache directory; default from the environment (hubCacheDir). */
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Attempts per file when a transfer breaks off; each resumes where the last one stopped. */
  attempts?: number;
  /** The file list is known: total bytes, and those already on disk (cached or partial). */
  onStart?: (files: RemoteFile[], totalBytes: number, presentBytes: number) => void;
  /** Bytes on disk so far over all files, the file being fetched. */
  onProgress?: (doneBytes: number, file: string) => void;
}

export interface RemoteFile {
  name: string;
  etag: string;
  size: number;
  /** Where the bytes are: the resolve URL, or the CDN URL it redirects to. */
  url: string;
}

export interface DownloadedFile {
  name: string;
  bytes: number;
  /** Already complete in the cache: nothing fetched. */
  cached: boolean;
  /** Bytes of a partial download this run continued from (0: from the start). */
  resumedFrom: number;
}

export interface DownloadResult {
  repo: string;
  revision: string;
  commit: string;
  /** The snapshot directory: pass it (or the id) as --model. */
  dir: string;
  files: DownloadedFile[];
  /** Bytes transferred by this run. */
  fetchedBytes: number;
  ms: number;
}

interface Ctx {
  repo: string;
  revision: string;
  endpoint: string;
  token?: string;
  headers: Record<string, string>;
  /** Bytes received over the network by this run. */
  received: number;
}

/** HF_TOKEN, else the file `huggingface-cli login` writes ($HF_TOKEN_PATH or $HF_HOME/token). */
export function hfToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const t = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (t) return t.trim();
  const home = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
  try {
    return fs.readFileSync(env.HF_TOKEN_PATH || path.join(home, 'token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function endpointOf(opts: DownloadOptions, env: NodeJS.ProcessEnv): string {
  const e = (opts.endpoint ?? (env.HF_ENDPOINT || DEFAULT_ENDPOINT)).replace(/\/+$/, '');
  let u: URL;
  try {
    u = new URL(e);
  } catch {
    throw new LscError(`HF_ENDPOINT '${e}' is not a URL`, {}, `set HF_ENDPOINT to a URL such as ${DEFAULT_ENDPOINT}, or unset it`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new LscError(`HF_ENDPOINT '${e}' is not an http(s) URL`, {}, `set HF_ENDPOINT to a URL such as ${DEFAULT_ENDPOINT}`);
  }
  return e;
}

/** `org/name[@rev]` and --revision, checked. */
function parseSpec(spec: string, revision: string | undefined): { repo: string; revision: string } {
  const id = parseModelId(spec);
  if (!id) {
    throw new LscError(`'${spec}' is not a Hugging Face model id`, {},
      'name the repository as org/name or org/name@revision (letters, digits, -, _ and .), e.g. facebook/layerskip-llama2-7B');
  }
  if (revision !== undefined && !validRevision(revision)) {
    throw new LscError(`--revision '${revision}' is not a branch, tag or commit name`, {}, 'pass a name such as main, v1.0 or a 40-character commit hash');
  }
  if (revision !== undefined && id.revision !== undefined && revision !== id.revision) {
    throw new LscError(`two revisions given: @${id.revision} and --revision ${revision}`, {}, 'give the revision once');
  }
  return { repo: id.repo, revision: revision ?? id.revision ?? DEFAULT_REVISION };
}

function resolveUrl(ctx: Ctx, rev: string, file: string): string {
  return `${ctx.endpoint}/${ctx.repo}/resolve/${encodeURIComponent(rev)}/${encodeURIComponent(file)}`;
}

/** fetch with network failures as one-line errors. */
async function request(url: string, init: RequestInit, what: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    throw new LscError(`cannot reach ${new URL(url).origin} to fetch ${what}: ${why}`, { file: url },
      'check the network connection and HF_ENDPOINT (or run lsc download again later)');
  }
}

/** The hub's answer to a failed request, as the one thing the user has to do. */
function httpError(res: Response, ctx: Ctx, rev: string, file: string, url: string): LscError {
  const code = res.headers.get('x-error-code') ?? '';
  const where = { file: url };
  const page = `${ctx.endpoint}/${ctx.repo}`;
  if (res.status === 401) {
    if (!ctx.token) {
      return new LscError(`the repository ${ctx.repo} is gated or private and no HF_TOKEN is set (HTTP 401)`, where,
        `accept its license on ${page} and set HF_TOKEN to an access token from ${ctx.endpoint}/settings/tokens (or check the id)`);
    }
    return new LscError(`the hub refused HF_TOKEN for ${ctx.repo} (HTTP 401): the token is invalid or expired, or the repository does not exist`, where,
      `set HF_TOKEN to a valid access token from ${ctx.endpoint}/settings/tokens, and check the id`);
  }
  if (res.status === 403) {
    return new LscError(`the repository ${ctx.repo} is gated and ${ctx.token ? 'this HF_TOKEN has' : 'you have'} no access to it (HTTP 403)`, where,
      `accept its license on ${page} (wait for approval if it asks), and set HF_TOKEN to a token of that account with read access`);
  }
  if (res.status === 404) {
    if (code === 'RevisionNotFound') {
      return new LscError(`revision '${rev}' of ${ctx.repo} not found`, where, `name an existing branch, tag or commit of ${page}`);
    }
    if (code === 'EntryNotFound') return new LscError(`${ctx.repo}@${rev} has no file ${file}`, where, 'lsc needs a Llama checkpoint in the Hugging Face layout with safetensors weights');
    return new LscError(`repository ${ctx.repo} or its revision '${rev}' not found`, where, `check the id and revision (see ${page})`);
  }
  return new LscError(`${new URL(url).origin} answered HTTP ${res.status} ${res.statusText} for ${file}`, where,
    'try again later, and check HF_ENDPOINT');
}

/** `W/"abc"` / `"abc"` → abc; it names the blob file, so it must be a plain file name. */
function normalizeEtag(raw: string | null, file: string, url: string): string {
  const etag = (raw ?? '').trim().replace(/^W\//, '').replace(/^"|"$/g, '');
  if (!/^[\w.-]{1,128}$/.test(etag) || /^\.+$/.test(etag)) {
    throw new LscError(`the server sent ${raw === null ? 'no ETag' : `an unusable ETag ${JSON.stringify(raw)}`} for ${file}`, { file: url },
      'point HF_ENDPOINT at the Hugging Face hub or a mirror that serves its resolve URLs');
  }
  return etag;
}

/**
 * HEAD of a resolve URL, following same-origin redirects (renamed repositories) but not the
 * redirect of an LFS file to its CDN: that answer carries the linked etag and size. Returns
 * undefined on 404 for an optional file.
 */
async function head(ctx: Ctx, rev: string, file: string, optional: boolean): Promise<{ file: RemoteFile; commit?: string } | undefined> {
  const first = resolveUrl(ctx, rev, file);
  let url = first;
  for (let hop = 0; hop < 10; hop++) {
    const res = await request(url, { method: 'HEAD', headers: ctx.headers, redirect: 'manual' }, file);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, url);
      if (next.origin === new URL(url).origin && !res.headers.get('x-linked-etag')) {
        url = next.href;
        continue;
      }
      return { file: describe(res, file, first, next.href), commit: res.headers.get('x-repo-commit') ?? undefined };
    }
    if (res.status === 404 && optional && res.headers.get('x-error-code') !== 'RepoNotFound' && res.headers.get('x-error-code') !== 'RevisionNotFound') return undefined;
    if (!res.ok) throw httpError(res, ctx, rev, file, url);
    return { file: describe(res, file, first, url), commit: res.headers.get('x-repo-commit') ?? undefined };
  }
  throw new LscError(`too many redirects for ${file}`, { file: first }, 'check HF_ENDPOINT');
}

async function headRequired(ctx: Ctx, rev: string, file: string): Promise<{ file: RemoteFile; commit?: string }> {
  const h = await head(ctx, rev, file, false);
  if (!h) throw new Error(`HEAD of a required file returned nothing: ${file}`); // head() throws on 404 when not optional
  return h;
}

function describe(res: Response, name: string, resolveUrl: string, url: string): RemoteFile {
  const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'), name, resolveUrl);
  const sizeText = res.headers.get('x-linked-size') ?? res.headers.get('content-length');
  const size = Number(sizeText);
  if (sizeText === null || !/^\d+$/.test(sizeText.trim()) || !Number.isSafeInteger(size)) {
    throw new LscError(`the server sent no usable size for ${name} (${sizeText === null ? 'no Content-Length' : JSON.stringify(sizeText)})`, { file: resolveUrl },
      'point HF_ENDPOINT at the Hugging Face hub or a mirror that serves its resolve URLs');
  }
  return { name, etag, size, url };
}

const SHA256 = /^[0-9a-f]{64}$/;

function fileSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return -1;
  }
}

/** sha256 of a whole file: a resumed transfer is checked as one. */
function hashFile(file: string): crypto.Hash {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h;
}

class Interrupted extends Error {}

/** The bytes on offer are not the size the hub announced: a different or damaged file. */
function sizeMismatch(f: RemoteFile, part: string, got: number): LscError {
  fs.rmSync(part, { force: true });
  return new LscError(`the server sends ${got} bytes for ${f.name} but announced ${f.size}`, { file: f.url },
    'run lsc download again; if it repeats, the server or a proxy is altering the file');
}

/**
 * One GET of `f` into `part`, appending from its current size with a Range request. Throws
 * Interrupted when the transfer breaks off (the caller retries), LscError for what retrying
 * cannot fix.
 */
async function transfer(ctx: Ctx, f: RemoteFile, part: string, progress: (bytes: number) => void): Promise<void> {
  let have = Math.max(0, fileSize(part));
  if (have > f.size) {
    fs.rmSync(part); // longer than the file: not a prefix of it
    have = 0;
  }
  if (have === f.size) return;
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
  // the token goes to the hub only, never to the CDN an LFS file redirects to
  if (ctx.token && new URL(f.url).origin === new URL(ctx.endpoint).origin) headers.Authorization = `Bearer ${ctx.token}`;
  if (have > 0) headers.Range = `bytes=${have}-`;
  const res = await request(f.url, { headers, redirect: 'follow' }, f.name);
  if (res.status === 416 && have > 0) {
    const total = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
    if (total !== undefined && Number(total) !== f.size) throw sizeMismatch(f, part, Number(total));
    fs.rmSync(part); // the server cannot continue it: start again
    throw new Interrupted('the server could not continue the partial file');
  }
  if (!res.ok) throw httpError(res, ctx, ctx.revision, f.name, f.url);
  const append = have > 0 && res.status === 206;
  if (res.status === 206 && !(append && (res.headers.get('content-range') ?? '').startsWith(`bytes ${have}-`))) {
    throw new LscError(`the server answered a partial response that does not continue ${f.name}`, { file: f.url }, `delete ${part} and run lsc download again`);
  }
  if (!append) have = 0; // a 200 is the whole file: start over
  const length = res.headers.get('content-length');
  if (length !== null && have + Number(length) !== f.size) {
    await res.body?.cancel();
    throw sizeMismatch(f, part, have + Number(length));
  }
  progress(have);
  const fd = fs.openSync(part, append ? 'a' : 'w');
  try {
    if (!res.body) return;
    let done = have;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      fs.writeSync(fd, chunk);
      done += chunk.length;
      ctx.received += chunk.length;
      progress(done);
      if (done > f.size) break;
    }
  } catch (e) {
    throw new Interrupted((e as { cause?: Error }).cause?.message ?? (e as Error).message);
  } finally {
    fs.closeSync(fd);
  }
}

/** Brings blobs/{etag} into the cache: skipped when complete, resumed when partial, then checked. */
async function fetchBlob(ctx: Ctx, blobs: string, f: RemoteFile, attempts: number, progress: (bytes: number) => void): Promise<DownloadedFile> {
  const blob = path.join(blobs, f.etag);
  if (fileSize(blob) === f.size) {
    progress(f.size);
    return { name: f.name, bytes: f.size, cached: true, resumedFrom: 0 };
  }
  fs.mkdirSync(blobs, { recursive: true });
  const part = `${blob}.incomplete`;
  const resumedFrom = Math.max(0, Math.min(fileSize(part), f.size));
  let why = '';
  for (let attempt = 1; ; attempt++) {
    try {
      await transfer(ctx, f, part, progress);
    } catch (e) {
      if (!(e instanceof Interrupted)) throw e;
      why = e.message;
    }
    const got = Math.max(0, fileSize(part));
    if (got === f.size) break;
    if (got > f.size) throw sizeMismatch(f, part, got);
    if (attempt >= attempts) {
      throw new LscError(`the download of ${f.name} broke off at ${got} of ${f.size} bytes${why ? ` (${why})` : ''}; the part is kept in ${part}`, { file: f.url },
        'run lsc download again to resume it');
    }
  }
  if (SHA256.test(f.etag)) {
    const sha = hashFile(part).digest('hex');
    if (sha !== f.etag) {
      fs.rmSync(part);
      throw new LscError(`the downloaded ${f.name} has sha256 ${sha} but the hub says ${f.etag}; the corrupt file was deleted`, { file: f.url },
        'run lsc download again; if it repeats, the server or a proxy is altering the file');
    }
  }
  fs.renameSync(part, blob);
  return { name: f.name, bytes: f.size, cached: false, resumedFrom };
}

/** snapshots/{commit}/{name} → ../../blobs/{etag}, relative like huggingface_hub's links. */
function linkSnapshot(repoDir: string, commit: string, f: RemoteFile): void {
  const link = path.join(repoDir, 'snapshots', commit, f.name);
  const blob = path.join(repoDir, 'blobs', f.etag);
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.rmSync(link, { force: true });
  try {
    fs.symlinkSync(path.relative(path.dirname(link), blob), link);
  } catch {
    fs.copyFileSync(blob, link); // file systems without symlinks: huggingface_hub copies too
  }
}

/** The weight shards an index names, each a plain file name in the repository. */
function shardNames(indexFile: string, url: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  } catch (e) {
    throw new LscError(`${INDEX_FILE} is not valid JSON: ${(e as Error).message}`, { file: url }, 'the repository\'s index is broken; report it to its authors');
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null) throw new LscError(`${INDEX_FILE} has no weight_map object`, { file: url }, 'the repository\'s index is broken; report it to its authors');
  const shards = new Set<string>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || !isShardFileName(shard)) {
      throw new LscError(`${INDEX_FILE} names the shard ${JSON.stringify(shard)}, which is not a plain file name in the repository`, { file: url, tensor },
        'refusing to write outside the cache; report the broken index to the repository\'s authors');
    }
    shards.add(shard);
  }
  return [...shards];
}

/** Downloads what lsc needs from `spec` (org/name[@rev]) into the hub cache. */
export async function downloadModel(spec: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const t0 = performance.now();
  const env = opts.env ?? process.env;
  const { repo, revision } = parseSpec(spec, opts.revision);
  const endpoint = endpointOf(opts, env);
  const token = opts.token ?? hfToken(env);
  const headers: Record<string, string> = { 'Accept-Encoding': 'identity', 'User-Agent': 'lsc' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const ctx: Ctx = { repo, revision, endpoint, token, headers, received: 0 };
  const repoDir = repoCacheDir(repo, opts.cacheDir ?? hubCacheDir(env));
  const blobs = path.join(repoDir, 'blobs');
  const attempts = opts.attempts ?? 5;

  // config.json first: it pins the commit, so every other file comes from the same snapshot
  const cfg = await headRequired(ctx, revision, REQUIRED_FILES[0]);
  const commit = cfg.commit ?? (isCommitHash(revision) ? revision : undefined);
  if (!commit || !isCommitHash(commit)) {
    throw new LscError(`the server did not say which commit ${repo}@${revision} is (no valid X-Repo-Commit header)`, { file: cfg.file.url },
      'point HF_ENDPOINT at the Hugging Face hub or a mirror that serves its resolve URLs');
  }
  const files: RemoteFile[] = [cfg.file];
  for (const name of REQUIRED_FILES.slice(1)) files.push((await headRequired(ctx, commit, name)).file);
  for (const name of OPTIONAL_FILES) {
    const h = await head(ctx, commit, name, true);
    if (h) files.push(h.file);
  }
  const single = await head(ctx, commit, SINGLE_FILE, true);
  const early = new Map<string, DownloadedFile>(); // the index, fetched to learn the shards
  if (single) {
    files.push(single.file);
  } else {
    const index = await head(ctx, commit, INDEX_FILE, true);
    if (!index) {
      throw new LscError(`${repo}@${revision} has neither ${SINGLE_FILE} nor ${INDEX_FILE}`, { file: resolveUrl(ctx, commit, SINGLE_FILE) },
        'lsc reads safetensors weights only; pick a repository that has them');
    }
    early.set(INDEX_FILE, await fetchBlob(ctx, blobs, index.file, attempts, () => {}));
    files.push(index.file);
    const shards = shardNames(path.join(blobs, index.file.etag), index.file.url);
    for (const name of shards) files.push((await headRequired(ctx, commit, name)).file);
  }

  const total = files.reduce((a, f) => a + f.size, 0);
  const present = (f: RemoteFile): number => {
    const blob = path.join(blobs, f.etag);
    return fileSize(blob) === f.size ? f.size : Math.max(0, Math.min(f.size, fileSize(`${blob}.incomplete`)));
  };
  opts.onStart?.(files, total, files.reduce((a, f) => a + present(f), 0));
  const done: DownloadedFile[] = [];
  let base = 0;
  for (const f of files) {
    const r = early.get(f.name) ?? await fetchBlob(ctx, blobs, f, attempts, (bytes) => opts.onProgress?.(base + bytes, f.name));
    opts.onProgress?.(base + f.size, f.name);
    base += f.size;
    done.push(r);
  }
  for (const f of files) linkSnapshot(repoDir, commit, f);
  if (revision !== commit) {
    const ref = path.join(repoDir, 'refs', revision);
    fs.mkdirSync(path.dirname(ref), { recursive: true });
    fs.writeFileSync(ref, commit);
  }
  return { repo, revision, commit, dir: path.join(repoDir, 'snapshots', commit), files: done, fetchedBytes: ctx.received, ms: performance.now() - t0 };
}
