/**
 * A Hugging Face safetensors checkpoint over HTTP (one model.safetensors, or an index and its
 * shards): each file's header comes first with two Range requests and is validated like a local
 * file's (runtime/safetensors-header.ts), so a bad or truncated file fails before any download;
 * then every file's data is fetched in pieces, shards in parallel, through RangeFetcher's cache;
 * uploadWeights then reads rows piece by piece.
 */
import { LscError, oneLine } from '../../compiler/errors.js';
import {
  HINT_REDOWNLOAD, INDEX_FILE, ITEM_SIZE, SINGLE_FILE, convertStored, isShardFileName, headerLength, isObject, parseHeader, product, type TensorEntry,
} from '../../runtime/safetensors-header.js';
import { firstNonFiniteF16, firstNonFiniteF32 } from '../../runtime/dtype-convert.js';
import type { WeightSource } from '../../runtime/weight-source.js';
import type { RangeFetcher, RemoteFile } from './fetch-bytes.js';

/** Download pieces: small enough for steady progress, large enough that requests are few. */
const PIECE_BYTES = 4 << 20;
/** Requests in flight at once, over all files. */
const PARALLEL = 6;
/** Rows are converted and handed on in pieces of at most this many output bytes. */
const CHUNK_BYTES = 16 << 20;

export interface DownloadProgress { (doneBytes: number, totalBytes: number): void }

type FileInfo = RemoteFile;

export class HttpCheckpoint implements WeightSource {
  private constructor(
    readonly dir: string,
    private readonly infos: FileInfo[],
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    private readonly fetcher: RangeFetcher,
  ) {}

  get files(): string[] { return this.infos.map((f) => f.url); }

  /** Reads and validates every header (base: the model directory's URL, ending in '/'). */
  static async open(base: string, fetcher: RangeFetcher): Promise<HttpCheckpoint> {
    const indexUrl = new URL(INDEX_FILE, base).href;
    const indexText = await fetcher.text(indexUrl, INDEX_FILE, true);
    const urls = indexText === undefined ? [new URL(SINGLE_FILE, base).href] : shardUrls(indexText, indexUrl, base);
    const infos = await Promise.all(urls.map((url) => fetcher.stat(url, 'checkpoint file')));
    const tensors = new Map<string, TensorEntry>();
    for (const info of infos) {
      const first8 = await fetcher.range(info, 0, Math.min(8, info.size), 'checkpoint header');
      const len = headerLength(info.url, info.size, first8);
      const header = await fetcher.range(info, 8, 8 + len, 'checkpoint header');
      for (const e of parseHeader(info.url, info.size, header)) {
        if (tensors.has(e.name)) throw new LscError('tensor is stored in two shards', { file: info.url, tensor: e.name }, HINT_REDOWNLOAD);
        tensors.set(e.name, e);
      }
    }
    return new HttpCheckpoint(base, infos, tensors, fetcher);
  }

  get(name: string): TensorEntry | undefined { return this.tensors.get(name); }

  /** Fetches every piece of tensor data (from the cache where it is there), PARALLEL at a time. */
  async download(onProgress?: DownloadProgress): Promise<void> {
    const pieces = this.pieces();
    const total = pieces.reduce((a, p) => a + p.end - p.start, 0);
    let done = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < pieces.length) {
        const p = pieces[next++];
        await this.fetcher.range(p.file, p.start, p.end, 'checkpoint data');
        done += p.end - p.start;
        onProgress?.(done, total);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, pieces.length) }, worker));
  }

  async readRows(name: string, target: 'f16' | 'f32', rowStart: number, rowCount: number,
    onChunk: (data: Uint16Array | Float32Array, elementOffset: number) => void): Promise<void> {
    const t = this.tensors.get(name);
    if (!t) throw new LscError(`no tensor named '${name}' in the checkpoint`, { file: this.dir, tensor: name });
    const rowElems = product(t.shape.slice(1));
    const inSize = ITEM_SIZE[t.dtype];
    const outSize = target === 'f16' ? 2 : 4;
    let chunk = Math.max(1, Math.floor(CHUNK_BYTES / outSize));
    if (rowElems <= chunk) chunk -= chunk % rowElems;
    const total = rowCount * rowElems;
    const info = this.infos.find((f) => f.url === t.file)!;
    for (let off = 0; off < total; off += chunk) {
      const n = Math.min(chunk, total - off);
      const start = t.dataStart + (rowStart * rowElems + off) * inSize;
      const src = await this.bytes(info, start, start + n * inSize);
      // convertStored narrows or keeps the width in place (src is a fresh copy); only widening needs a second buffer
      const dst = inSize >= outSize ? src.buffer as ArrayBuffer : new ArrayBuffer(n * outSize);
      const out = convertStored(t.dtype, target, src.buffer as ArrayBuffer, dst, n);
      const bad = out instanceof Uint16Array ? firstNonFiniteF16(out) : firstNonFiniteF32(out);
      if (bad >= 0) {
        throw new LscError(`tensor holds a non-finite value (or one beyond ${target}'s range) at flat index ${rowStart * rowElems + off + bad}`,
          { file: t.file, tensor: name }, 'the checkpoint has non-finite weights: re-download it or repair the tensor');
      }
      onChunk(out, off);
    }
  }

  /** Bytes [start, end) of a file, assembled from its download pieces (a fresh, aligned copy). */
  private async bytes(info: FileInfo, start: number, end: number): Promise<Uint8Array> {
    const out = new Uint8Array(end - start);
    const dataStart = this.dataStart(info);
    for (let p = start; p < end;) {
      const k = Math.floor((p - dataStart) / PIECE_BYTES);
      const pStart = dataStart + k * PIECE_BYTES;
      const pEnd = Math.min(info.size, pStart + PIECE_BYTES);
      const piece = await this.piece(info, pStart, pEnd);
      const take = Math.min(end, pEnd) - p;
      out.set(piece.subarray(p - pStart, p - pStart + take), p - start);
      p += take;
    }
    return out;
  }

  /** The last pieces read (tensors are read in file order, several from one piece). */
  private recent: { url: string; start: number; bytes: Uint8Array }[] = [];

  private async piece(info: FileInfo, start: number, end: number): Promise<Uint8Array> {
    const hit = this.recent.find((p) => p.url === info.url && p.start === start);
    if (hit) return hit.bytes;
    const bytes = await this.fetcher.range(info, start, end, 'checkpoint data');
    this.recent = [{ url: info.url, start, bytes }, ...this.recent.slice(0, 1)];
    return bytes;
  }

  /** Where a file's tensor data begins: the lowest data offset of its tensors. */
  private dataStart(info: FileInfo): number {
    let lo = info.size;
    for (const t of this.tensors.values()) if (t.file === info.url) lo = Math.min(lo, t.dataStart);
    return lo;
  }

  private pieces(): { file: FileInfo; start: number; end: number }[] {
    const out: { file: FileInfo; start: number; end: number }[] = [];
    for (const file of this.infos) {
      for (let s = this.dataStart(file); s < file.size; s += PIECE_BYTES) out.push({ file, start: s, end: Math.min(file.size, s + PIECE_BYTES) });
    }
    return out;
  }
}

function shardUrls(text: string, indexUrl: string, base: string): string[] {
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (e) {
    throw new LscError(`index is not valid JSON: ${oneLine((e as Error).message)}`, { file: indexUrl }, HINT_REDOWNLOAD);
  }
  const map = isObject(index) ? index.weight_map : undefined;
  if (!isObject(map)) throw new LscError('index has no weight_map object', { file: indexUrl }, HINT_REDOWNLOAD);
  const names = [...new Set(Object.values(map))];
  const bad = names.find((n) => typeof n !== 'string' || !isShardFileName(n));
  if (bad !== undefined) throw new LscError(`weight_map entry ${JSON.stringify(bad)} is not a shard file name`, { file: indexUrl }, HINT_REDOWNLOAD);
  return (names as string[]).map((n) => new URL(n, base).href);
}
