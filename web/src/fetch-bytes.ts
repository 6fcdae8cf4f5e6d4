/**
 * Byte ranges of files over HTTP, kept in the browser's Cache Storage so that a reload does not
 * download them again. A 206 response cannot be stored as is (Cache.put refuses partial
 * responses), so each piece is stored as a plain 200 response under its own key.
 */
import { LscError } from '../../compiler/errors.js';

export const HINT_SERVER = 'check the URL and that the server sends the model files (lsc web serves them)';

/** A file on the server, as stat() found it. */
export interface RemoteFile { url: string; size: number; version: string }

/** Where the bytes came from, for progress and tests (a reload should fetch nothing). */
export interface ByteCounts { network: number; cache: number }

export class RangeFetcher {
  readonly counts: ByteCounts = { network: 0, cache: 0 };
  private cache?: Promise<Cache | undefined>;

  /** `cacheName`: the Cache Storage bucket, or undefined to keep nothing between loads. */
  constructor(private readonly cacheName: string | undefined) {}

  /** A small file (JSON) whole; undefined on 404 when optional. */
  async text(url: string, what: string, optional = false): Promise<string | undefined> {
    const res = await this.request(url, what);
    if (res.status === 404 && optional) return undefined;
    if (!res.ok) throw httpError(res, url, what);
    return res.text();
  }

  /**
   * A file's size (from the Content-Range of a one-byte range request) and version (its ETag or
   * Last-Modified, where the server sends one): cached pieces are keyed by both, so a file replaced
   * on the server is fetched anew.
   */
  async stat(url: string, what: string): Promise<RemoteFile> {
    const res = await this.request(url, what, { headers: { Range: 'bytes=0-0' } });
    if (!res.ok) throw httpError(res, url, what);
    await res.arrayBuffer();
    const total = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
    if (res.status !== 206 || total === undefined) {
      throw new LscError(`${what}: the server does not answer Range requests (HTTP ${res.status}, no Content-Range)`, { file: url },
        'serve the weights from a server with Range support (lsc web, or any static file server)');
    }
    return { url, size: Number(total), version: res.headers.get('etag') ?? res.headers.get('last-modified') ?? '' };
  }

  /** Bytes [start, end) of a file, from the cache or the network (then cached). */
  async range(file: RemoteFile, start: number, end: number, what: string): Promise<Uint8Array> {
    const { url, size, version } = file;
    const key = `${url}${url.includes('?') ? '&' : '?'}lsc-bytes=${start}-${end}&of=${size}&v=${encodeURIComponent(version)}`;
    const cache = await this.openCache();
    const hit = await cache?.match(key);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if (bytes.length === end - start) {
        this.counts.cache += bytes.length;
        return bytes;
      }
    }
    const res = await this.request(url, what, { headers: { Range: `bytes=${start}-${end - 1}` } });
    if (!res.ok) throw httpError(res, url, what);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.length !== end - start || (res.status !== 206 && start !== 0)) {
      throw new LscError(`${what}: asked for bytes ${start}..${end - 1} and got ${bytes.length} bytes (HTTP ${res.status}): the file changed or is truncated`,
        { file: url }, 're-download the checkpoint on the server, then reload');
    }
    this.counts.network += bytes.length;
    await cache?.put(key, new Response(bytes.slice().buffer, { headers: { 'content-type': 'application/octet-stream' } })).catch(() => undefined);
    return bytes;
  }

  private async request(url: string, what: string, init?: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, cache: 'no-store' });
    } catch (e) {
      throw new LscError(`${what}: the request failed (${(e as Error).message})`, { file: url }, HINT_SERVER);
    }
  }

  private openCache(): Promise<Cache | undefined> {
    // Cache Storage exists only in secure contexts (https, localhost); without it nothing is kept
    this.cache ??= this.cacheName && typeof caches !== 'undefined' ? caches.open(this.cacheName).catch(() => undefined) : Promise.resolve(undefined);
    return this.cache;
  }
}

function httpError(res: Response, url: string, what: string): LscError {
  return new LscError(`${what}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, { file: url },
    res.status === 404 ? `the file is not at this URL: ${HINT_SERVER}` : HINT_SERVER);
}
