/**
 * A Hugging Face hub in miniature, for tests on loopback only: the hub cache layout written the way
 * huggingface_hub writes it, and an HTTP server answering the hub's resolve URLs (with the LFS
 * redirect to a second, "CDN" origin, Range requests, gated repositories and injected faults).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ROOT } from './run-cli.js';

export const TINY = path.join(ROOT, 'examples', 'models', 'tiny-code');
/** The files of the bundled model a hub repository of it would hold (the ones lsc reads). */
export const TINY_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'special_tokens_map.json', 'model.safetensors'];

export const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');
/** git's blob id: what the hub sends as the ETag of a file stored in git (not LFS). */
export const gitSha1 = (b: Buffer): string => crypto.createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
/** Safetensors go to LFS on the hub: their etag is the sha256. */
export const etagOf = (name: string, b: Buffer): string => (name.endsWith('.safetensors') ? sha256(b) : gitSha1(b));

export function tinyFiles(): Map<string, Buffer> {
  return new Map(TINY_FILES.map((f) => [f, fs.readFileSync(path.join(TINY, f))]));
}

/** A 40-hex commit id made from a label. */
export const commitId = (label: string): string => crypto.createHash('sha1').update(label).digest('hex');

/**
 * Writes one snapshot of `repo` into hub cache `hub` like huggingface_hub: blobs/{etag},
 * snapshots/{commit}/{file} as relative symlinks, refs/{name} holding the commit.
 */
export function writeCachedSnapshot(hub: string, repo: string, commit: string, files: Map<string, Buffer>, refs: string[] = ['main']): string {
  const repoDir = path.join(hub, `models--${repo.replace('/', '--')}`);
  const snap = path.join(repoDir, 'snapshots', commit);
  fs.mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  fs.mkdirSync(snap, { recursive: true });
  for (const [name, data] of files) {
    const blob = path.join(repoDir, 'blobs', etagOf(name, data));
    fs.writeFileSync(blob, data);
    fs.symlinkSync(path.relative(snap, blob), path.join(snap, name));
  }
  for (const ref of refs) {
    fs.mkdirSync(path.dirname(path.join(repoDir, 'refs', ref)), { recursive: true });
    fs.writeFileSync(path.join(repoDir, 'refs', ref), commit);
  }
  return snap;
}

export interface HubRepo {
  files: Map<string, Buffer>;
  commit: string;
  /** Branch and tag names → commit (the commit itself always resolves). */
  refs?: Record<string, string>;
  /** Gated: 401 without a token, 403 with another one. */
  token?: string;
}

export interface Fault {
  repo: string;
  file: string;
  /** Cut the connection after this many body bytes, for the first `times` GETs. */
  cutAfter?: number;
  times?: number;
  /** Flip one byte of the body (sha256 check). */
  corrupt?: boolean;
  /** Announce this size in X-Linked-Size / Content-Length instead of the real one. */
  announceSize?: number;
}

export interface LoggedRequest { origin: 'hub' | 'cdn'; method: string; url: string; repo?: string; file?: string; range?: string; auth?: string }

export interface FakeHub {
  endpoint: string;
  cdn: string;
  log: LoggedRequest[];
  repos: Map<string, HubRepo>;
  faults: Fault[];
  close(): Promise<void>;
}

const listen = (server: http.Server): Promise<string> => new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
});

/** Body bytes of a GET, honouring `Range: bytes=N-` (206) and the faults. */
function sendBody(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, headers: Record<string, string>, fault?: Fault): void {
  let body = fault?.corrupt ? Buffer.from(data) : data;
  if (fault?.corrupt) body[body.length >> 1] ^= 0xff;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let status = 200;
  if (range) {
    const start = Number(range[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
      return;
    }
    headers['Content-Range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    body = body.subarray(start);
    status = 206;
  }
  headers['Content-Length'] = String(body.length);
  headers['Accept-Ranges'] = 'bytes';
  res.writeHead(status, headers);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  if (fault?.cutAfter !== undefined && (fault.times ?? 1) > 0) {
    fault.times = (fault.times ?? 1) - 1;
    res.write(body.subarray(0, fault.cutAfter), () => res.socket?.destroy());
    return;
  }
  res.end(body);
}

/** Starts the hub and its CDN on 127.0.0.1 (ports from listen(0)); close() in after(). */
export async function startFakeHub(repos: Record<string, HubRepo>): Promise<FakeHub> {
  const log: LoggedRequest[] = [];
  const faults: Fault[] = [];
  const repoMap = new Map(Object.entries(repos));
  const blobs = new Map<string, Buffer>(); // sha256 → bytes, served by the CDN
  const faultFor = (repo: string, file: string): Fault | undefined => faults.find((f) => f.repo === repo && f.file === file);
  const record = (origin: 'hub' | 'cdn', req: http.IncomingMessage, repo?: string, file?: string): void => {
    log.push({ origin, method: req.method ?? '', url: req.url ?? '', repo, file, range: req.headers.range, auth: req.headers.authorization });
  };
  let cdnUrl = '';

  const hub = http.createServer((req, res) => {
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/([^/?]+)$/.exec(req.url ?? '');
    const error = (status: number, code: string): void => { res.writeHead(status, { 'X-Error-Code': code }).end(); };
    record('hub', req, m?.[1], m ? decodeURIComponent(m[3]) : undefined);
    if (!m) return error(404, 'RepoNotFound');
    const [repoId, rev, file] = [m[1], decodeURIComponent(m[2]), decodeURIComponent(m[3])];
    const repo = repoMap.get(repoId);
    if (!repo) return error(404, 'RepoNotFound');
    if (repo.token) {
      const auth = req.headers.authorization;
      if (!auth) return error(401, 'GatedRepo');
      if (auth !== `Bearer ${repo.token}`) return error(403, 'GatedRepo');
    }
    const commit = rev === repo.commit ? rev : repo.refs?.[rev];
    if (commit !== repo.commit) return error(404, 'RevisionNotFound');
    const data = repo.files.get(file);
    if (!data) return error(404, 'EntryNotFound');
    const fault = faultFor(repoId, file);
    const size = String(fault?.announceSize ?? data.length);
    if (file.endsWith('.safetensors')) {
      // LFS: the hub redirects to the CDN, and says the blob's sha256 and size in X-Linked-*
      const sha = sha256(data);
      blobs.set(sha, data);
      res.writeHead(302, {
        Location: `${cdnUrl}/blobs/${sha}?repo=${encodeURIComponent(repoId)}&file=${encodeURIComponent(file)}`, 'X-Repo-Commit': commit, 'X-Linked-Etag': `"${sha}"`, 'X-Linked-Size': size, ETag: `"${gitSha1(Buffer.from(`oid sha256:${sha}`))}"`,
      }).end();
      return;
    }
    const headers: Record<string, string> = { 'X-Repo-Commit': commit, ETag: `"${gitSha1(data)}"` };
    if (req.method === 'HEAD' && fault?.announceSize !== undefined) {
      res.writeHead(200, { ...headers, 'Content-Length': size }).end();
      return;
    }
    sendBody(req, res, data, headers, fault);
  });
  const cdn = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', cdnUrl);
    const [repo, file] = [url.searchParams.get('repo') ?? '', url.searchParams.get('file') ?? ''];
    record('cdn', req, repo, file);
    const sha = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const data = sha ? blobs.get(sha) : undefined;
    if (!sha || !data) {
      res.writeHead(404).end();
      return;
    }
    sendBody(req, res, data, { ETag: `"${sha}"` }, faultFor(repo, file));
  });
  const endpoint = await listen(hub);
  cdnUrl = await listen(cdn);
  const closeServer = (s: http.Server): Promise<void> => new Promise((resolve) => {
    s.closeAllConnections();
    s.close(() => resolve());
  });
  return {
    endpoint, cdn: cdnUrl, log, repos: repoMap, faults,
    close: async () => { await Promise.all([closeServer(hub), closeServer(cdn)]); },
  };
}
