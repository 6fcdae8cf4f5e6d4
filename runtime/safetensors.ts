/**
 * Reads Hugging Face safetensors checkpoints (one file or an index + shards) without ever holding
 * a whole tensor or shard in memory: headers are validated up front, data is streamed in bounded
 * row chunks with positioned reads and converted to f16 or f32 on the way.
 *
 * Format: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}, then the
 * data region; offsets are relative to the start of the data region. Data is little-endian.
 * Every value read is checked to be finite: NaN or inf weights (or F32/BF16 values beyond f16's
 * range) stop the load with the tensor, flat index and row/col of the first one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LscError, oneLine } from '../compiler/errors.js';
import { openRegularFile, readRegularFile } from './safe-file.js';
import { ScratchBuffers } from './scratch-buffers.js';
import {
  HINT_REDOWNLOAD, INDEX_FILE, ITEM_SIZE, SINGLE_FILE, isShardFileName, brief, convertStored, headerLength, isNonNegInt, isObject, parseHeader, product, type StDType, type TensorEntry,
} from './safetensors-header.js';
import type { WeightSource } from './weight-source.js';
import { bf16BitsToF32, f16BitsToF32, firstNonFiniteF16, firstNonFiniteF32 } from './dtype-convert.js';

export type { StDType, TensorEntry } from './safetensors-header.js';

export { INDEX_FILE, SINGLE_FILE, isShardFileName } from './safetensors-header.js';

const DEFAULT_CHUNK_BYTES = 16 << 20;

/** Fills buf from file position pos; a short read means the file changed under us. */
function readFully(fd: number, buf: Uint8Array, pos: number, file: string, tensor?: string): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, pos + done);
    if (n === 0) throw new LscError(`file ended at byte ${pos + done}, expected data up to byte ${pos + buf.length}`, { file, tensor }, HINT_REDOWNLOAD);
    done += n;
  }
}

/** Parses and validates one .safetensors header; fd stays open for the caller to cache. */
function readHeader(file: string, fd: number): TensorEntry[] {
  const size = fs.fstatSync(fd).size;
  const first8 = new Uint8Array(Math.min(8, size));
  readFully(fd, first8, 0, file);
  const headerLen = headerLength(file, size, first8);
  const headerBuf = new Uint8Array(headerLen);
  readFully(fd, headerBuf, 8, file);
  return parseHeader(file, size, headerBuf);
}

export class SafetensorsCheckpoint implements WeightSource {
  readonly dir: string;
  readonly files: string[];
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  private readonly fds: Map<string, number>;
  /** Read buffers reused from call to call: fresh memory costs a page fault per 4 KiB page. */
  private readonly scratch = new ScratchBuffers();

  private constructor(dir: string, files: string[], tensors: Map<string, TensorEntry>, fds: Map<string, number>) {
    this.dir = dir;
    this.files = files;
    this.tensors = tensors;
    this.fds = fds;
  }

  /** dir holds model.safetensors, or model.safetensors.index.json + shards. Validates every header up front. */
  static open(dir: string): SafetensorsCheckpoint {
    if (os.endianness() !== 'LE') throw new Error('lsc needs a little-endian host to read safetensors');
    const absDir = path.resolve(dir);
    const indexPath = path.join(absDir, INDEX_FILE);
    const singlePath = path.join(absDir, SINGLE_FILE);
    const fds = new Map<string, number>();
    try {
      let files: string[];
      let listed: Map<string, string> | undefined; // tensor -> shard file, from the index
      if (fs.existsSync(indexPath)) {
        ({ files, listed } = readIndex(indexPath, absDir));
      } else if (fs.existsSync(singlePath)) {
        files = [singlePath];
      } else {
        throw noCheckpointError(absDir);
      }

      const tensors = new Map<string, TensorEntry>();
      for (const file of files) {
        const hint = listed ? `${HINT_REDOWNLOAD}; every shard named in ${INDEX_FILE} must be in ${absDir}` : HINT_REDOWNLOAD;
        const fd = openRegularFile(file, 'checkpoint file', { hint });
        fds.set(file, fd);
        for (const entry of readHeader(file, fd)) {
          const prev = tensors.get(entry.name);
          if (prev) {
            throw new LscError(`tensor is stored in two shards (also in ${path.basename(prev.file)})`, { file, tensor: entry.name }, `remove the duplicate or re-download the checkpoint`);
          }
          tensors.set(entry.name, entry);
        }
      }
      if (listed) {
        for (const [name, file] of listed) {
          if (tensors.get(name)?.file !== file) {
            throw new LscError(`${INDEX_FILE} lists the tensor in ${path.basename(file)} but that shard's header does not have it`, { file, tensor: name }, HINT_REDOWNLOAD);
          }
        }
      }
      return new SafetensorsCheckpoint(absDir, files, tensors, fds);
    } catch (e) {
      for (const fd of fds.values()) fs.closeSync(fd);
      throw e;
    }
  }

  get(name: string): TensorEntry | undefined {
    return this.tensors.get(name);
  }

  /** Sum of all tensors' stored data bytes. */
  totalBytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.byteLength;
    return n;
  }

  /**
   * Streams rows [rowStart, rowStart+rowCount) (rows = first dimension; 1-D: one element per row;
   * scalar: one row) converted to target, in pieces of at most maxChunkBytes target bytes holding
   * whole rows unless a single row is bigger than that. onChunk's view is only valid during the
   * call; elementOffset is data[0]'s offset from the first requested element.
   */
  readRows(
    name: string,
    target: 'f16' | 'f32',
    rowStart: number,
    rowCount: number,
    onChunk: (data: Uint16Array | Float32Array, elementOffset: number) => void,
    maxChunkBytes: number = DEFAULT_CHUNK_BYTES,
  ): void {
    const t = this.entryOrThrow(name);
    const rows = t.shape.length === 0 ? 1 : t.shape[0];
    const rowElems = product(t.shape.slice(1));
    if (!isNonNegInt(rowStart) || !isNonNegInt(rowCount) || rowStart + rowCount > rows) {
      throw new LscError(`row range start ${rowStart} count ${rowCount} is outside the tensor's ${rows} rows`, { file: t.file, tensor: name }, 'request rows within the tensor\'s first dimension');
    }
    const outSize = target === 'f16' ? 2 : 4;
    if (!Number.isFinite(maxChunkBytes) || maxChunkBytes < outSize) throw new RangeError(`maxChunkBytes ${maxChunkBytes} is below one ${target} element`);
    const total = rowCount * rowElems;
    if (total === 0) return;

    let chunk = Math.floor(maxChunkBytes / outSize);
    if (rowElems <= chunk) chunk -= chunk % rowElems; // whole rows per piece
    chunk = Math.min(chunk, total);

    // Scratch: F32->f16 converts in place (output is narrower, written behind the read position),
    // 16->16 bit converts in place index by index, so only widening needs a second buffer.
    // Peak host memory is therefore at most 2 x maxChunkBytes.
    const inSize = ITEM_SIZE[t.dtype];
    const widen = inSize < outSize;
    const fd = this.fdFor(t.file);
    const base = t.dataStart + rowStart * rowElems * inSize;
    const lease = this.scratch.lease();
    try {
      const scratch = lease.get(0, chunk * Math.max(inSize, outSize));
      const srcBuf = widen ? lease.get(1, chunk * inSize) : scratch;
      for (let off = 0; off < total; off += chunk) {
        const n = Math.min(chunk, total - off);
        readFully(fd, new Uint8Array(srcBuf, 0, n * inSize), base + off * inSize, t.file, name);
        const out = convertStored(t.dtype, target, srcBuf, scratch, n);
        // every value goes through here once: a NaN or inf (or an overflow of f16) stops the load
        const bad = out instanceof Uint16Array ? firstNonFiniteF16(out) : firstNonFiniteF32(out);
        if (bad >= 0) throw this.nonFiniteError(t, rowStart * rowElems + off + bad, target);
        onChunk(out, off);
      }
    } finally {
      lease.release();
    }
  }

  /** See WeightSource.readRawRows: the stored bytes of whole rows, in pieces of at most maxChunkBytes. */
  readRawRows(name: string, rowStart: number, rowCount: number, onChunk: (data: Uint8Array, byteOffset: number) => void,
    maxChunkBytes: number = DEFAULT_CHUNK_BYTES): void {
    const t = this.entryOrThrow(name);
    const rows = t.shape.length === 0 ? 1 : t.shape[0];
    const rowBytes = product(t.shape.slice(1)) * ITEM_SIZE[t.dtype];
    if (!isNonNegInt(rowStart) || !isNonNegInt(rowCount) || rowStart + rowCount > rows) {
      throw new LscError(`row range start ${rowStart} count ${rowCount} is outside the tensor's ${rows} rows`, { file: t.file, tensor: name }, 'request rows within the tensor\'s first dimension');
    }
    const total = rowCount * rowBytes;
    const piece = Math.min(total, Math.max(4, maxChunkBytes - (maxChunkBytes % 4)));
    if (total === 0) return;
    const fd = this.fdFor(t.file);
    const base = t.dataStart + rowStart * rowBytes;
    const lease = this.scratch.lease();
    try {
      const buf = new Uint8Array(lease.get(0, piece), 0, piece);
      for (let off = 0; off < total; off += piece) {
        const view = buf.subarray(0, Math.min(piece, total - off));
        readFully(fd, view, base + off, t.file, name);
        onChunk(view, off);
      }
    } finally {
      lease.release();
    }
  }

  /** Names the stored value at flat index i (read again from the file: the chunk was converted in place). */
  private nonFiniteError(t: TensorEntry, i: number, target: 'f16' | 'f32'): LscError {
    const size = ITEM_SIZE[t.dtype];
    const raw = Buffer.alloc(size);
    readFully(this.fdFor(t.file), raw, t.dataStart + i * size, t.file, t.name);
    const v = t.dtype === 'F32' ? raw.readFloatLE(0)
      : t.dtype === 'F16' ? f16BitsToF32(Uint16Array.of(raw.readUInt16LE(0)))[0]
      : bf16BitsToF32(Uint16Array.of(raw.readUInt16LE(0)))[0];
    let at = `flat index ${i}`;
    if (t.shape.length === 2) at += ` (row ${Math.floor(i / t.shape[1])}, col ${i % t.shape[1]})`;
    else if (t.shape.length > 2) {
      const idx: number[] = [];
      for (let d = t.shape.length - 1, r = i; d >= 0; d--) { idx.unshift(r % t.shape[d]); r = Math.floor(r / t.shape[d]); }
      at += ` (index [${idx.join(', ')}])`;
    }
    if (!Number.isFinite(v)) {
      return new LscError(`tensor holds ${v} at ${at}`, { file: t.file, tensor: t.name },
        'the checkpoint has non-finite weights (a corrupted file or a diverged training run): re-download it or repair the tensor');
    }
    return new LscError(`tensor holds ${v} at ${at}, beyond the range of ${target} (largest finite 65504)`, { file: t.file, tensor: t.name },
      'lsc runs the weights in f16: use a checkpoint whose values fit f16');
  }

  /** Whole tensor into one new array (for small tensors and tests). */
  readAll(name: string, target: 'f16' | 'f32'): Uint16Array | Float32Array {
    const t = this.entryOrThrow(name);
    const n = product(t.shape);
    const out = target === 'f16' ? new Uint16Array(n) : new Float32Array(n);
    const rows = t.shape.length === 0 ? 1 : t.shape[0];
    this.readRows(name, target, 0, rows, (data, off) => out.set(data, off));
    return out;
  }

  /** Closes the files and drops the read buffers (a later read reopens and reallocates). */
  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
    this.scratch.clear();
  }

  private entryOrThrow(name: string): TensorEntry {
    const t = this.tensors.get(name);
    if (!t) {
      const some = [...this.tensors.keys()].slice(0, 3).join(', ');
      throw new LscError(`no tensor named '${name}' in the checkpoint`, { file: this.dir, tensor: name }, `check the tensor name (${this.tensors.size} tensors, e.g. ${some})`);
    }
    return t;
  }

  /** Reopens lazily so a closed checkpoint can still be read. */
  private fdFor(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) {
      fd = openRegularFile(file, 'checkpoint file', { hint: HINT_REDOWNLOAD });
      this.fds.set(file, fd);
    }
    return fd;
  }
}

function readIndex(indexPath: string, dir: string): { files: string[]; listed: Map<string, string> } {
  const text = readRegularFile(indexPath, INDEX_FILE, { hint: HINT_REDOWNLOAD });
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (e) {
    throw new LscError(`index is not valid JSON: ${oneLine((e as Error).message)}`, { file: indexPath }, HINT_REDOWNLOAD);
  }
  const map = isObject(index) ? index.weight_map : undefined;
  if (!isObject(map)) throw new LscError('index has no weight_map object', { file: indexPath }, HINT_REDOWNLOAD);
  const files: string[] = [];
  const listed = new Map<string, string>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || !isShardFileName(shard)) {
      throw new LscError(`weight_map entry ${brief(shard)} is not a shard file name`, { file: indexPath, tensor: name },
        `every weight_map value must be the name of a shard file next to the index (no paths: the checkpoint stays inside ${dir})`);
    }
    const file = path.join(dir, shard);
    if (!files.includes(file)) {
      if (!fs.existsSync(file)) throw new LscError(`shard ${shard} listed in the index is missing`, { file, tensor: name }, `${HINT_REDOWNLOAD}; download every model-*.safetensors shard`);
      files.push(file);
    }
    listed.set(name, file);
  }
  return { files, listed };
}

function noCheckpointError(dir: string): LscError {
  let contents: string;
  try {
    const names = fs.readdirSync(dir);
    contents = names.length === 0 ? 'it is empty' : names.length <= 8 ? `it holds ${names.join(', ')}` : `it holds ${names.length} entries`;
  } catch {
    contents = 'it cannot be read or does not exist';
  }
  return new LscError(`no ${SINGLE_FILE} or ${INDEX_FILE} in ${dir} (${contents})`, { file: dir }, 'point at a Hugging Face checkpoint directory with safetensors weights');
}
