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
import {
  bf16BitsToF16Bits, bf16BitsToF32, f16BitsToF32, f32ToF16Bits, firstNonFiniteF16, firstNonFiniteF32,
} from './dtype-convert.js';

export type StDType = 'F32' | 'F16' | 'BF16';

export interface TensorEntry {
  name: string;
  dtype: StDType;
  shape: number[];
  /** Absolute path of the .safetensors file holding it. */
  file: string;
  /** Absolute byte offset in that file where its data starts. */
  dataStart: number;
  byteLength: number;
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

const ITEM_SIZE: Record<StDType, number> = { F32: 4, F16: 2, BF16: 2 };
/** Dtypes the format defines that lsc cannot load (reported as "unsupported", not "unknown"). */
const OTHER_DTYPES = new Set([
  'F64', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL', 'C64',
  'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'U1',
]);
const MAX_HEADER_BYTES = 100_000_000;
const DEFAULT_CHUNK_BYTES = 16 << 20;

const HINT_REDOWNLOAD = 're-download the checkpoint (the file looks truncated or corrupted)';
const HINT_CONVERT = 'convert the tensor to F16, BF16 or F32 before loading';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value from the file, as JSON cut to a readable length (a header can hold megabytes of anything). */
function brief(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function product(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

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
  if (size < 8) throw new LscError(`safetensors file is ${size} bytes, shorter than its 8-byte header length`, { file }, HINT_REDOWNLOAD);
  const lenBuf = Buffer.alloc(8);
  readFully(fd, lenBuf, 0, file);
  const len64 = lenBuf.readBigUInt64LE(0);
  if (len64 > BigInt(MAX_HEADER_BYTES)) throw new LscError(`header length ${len64} is absurd (over ${MAX_HEADER_BYTES} bytes)`, { file }, HINT_REDOWNLOAD);
  const headerLen = Number(len64);
  if (8 + headerLen > size) throw new LscError(`header length ${headerLen} runs past the end of the ${size}-byte file`, { file }, HINT_REDOWNLOAD);

  const headerBuf = Buffer.alloc(headerLen);
  readFully(fd, headerBuf, 8, file);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBuf));
  } catch (e) {
    throw new LscError(`header is not valid JSON: ${oneLine((e as Error).message)}`, { file }, HINT_REDOWNLOAD);
  }
  if (!isObject(header)) throw new LscError('header is not a JSON object', { file }, HINT_REDOWNLOAD);

  const dataBase = 8 + headerLen;
  const dataSize = size - dataBase;
  const entries: TensorEntry[] = [];
  const begins = new Map<TensorEntry, number>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const where = { file, tensor: name };
    if (!isObject(raw)) throw new LscError('header entry is not an object', where, HINT_REDOWNLOAD);
    const { dtype, shape, data_offsets: offs } = raw;
    if (dtype === undefined || shape === undefined || offs === undefined) {
      const missing = ['dtype', 'shape', 'data_offsets'].filter((k) => raw[k] === undefined);
      throw new LscError(`header entry is missing ${missing.join(', ')}`, where, HINT_REDOWNLOAD);
    }
    // own keys only: 'toString' or '__proto__' are not dtypes
    if (typeof dtype !== 'string' || !Object.hasOwn(ITEM_SIZE, dtype)) {
      const known = typeof dtype === 'string' && OTHER_DTYPES.has(dtype);
      throw new LscError(`${known ? 'unsupported' : 'unknown'} dtype ${brief(dtype)}`, where, HINT_CONVERT);
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      throw new LscError(`shape ${brief(shape)} is not an array of non-negative integers`, where, HINT_REDOWNLOAD);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt) || offs[0] > offs[1]) {
      throw new LscError(`data_offsets ${brief(offs)} must be two non-negative integers [begin, end] with begin <= end`, where, HINT_REDOWNLOAD);
    }
    const st = dtype as StDType;
    const [begin, end] = offs as number[];
    const expected = product(shape) * ITEM_SIZE[st];
    if (end - begin !== expected) {
      throw new LscError(`tensor holds ${end - begin} bytes but shape ${brief(shape)} of ${st} needs ${expected}`, where, HINT_REDOWNLOAD);
    }
    if (end > dataSize) {
      throw new LscError(`data_offsets [${begin}, ${end}] run past the ${dataSize}-byte data region`, where, HINT_REDOWNLOAD);
    }
    const entry: TensorEntry = { name, dtype: st, shape: shape.slice(), file, dataStart: dataBase + begin, byteLength: end - begin };
    entries.push(entry);
    begins.set(entry, begin);
  }

  // Overlap check: sort non-empty tensors by start, each must start at or after the previous end.
  const sorted = entries.filter((e) => e.byteLength > 0).sort((a, b) => a.dataStart - b.dataStart);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1], cur = sorted[i];
    if (cur.dataStart < prev.dataStart + prev.byteLength) {
      throw new LscError(`tensor data overlaps tensor '${prev.name}' (offset ${begins.get(cur)} < ${begins.get(prev)! + prev.byteLength})`, { file, tensor: cur.name }, HINT_REDOWNLOAD);
    }
  }
  return entries;
}

export class SafetensorsCheckpoint {
  readonly dir: string;
  readonly files: string[];
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  private readonly fds: Map<string, number>;

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
    const scratch = new ArrayBuffer(chunk * Math.max(inSize, outSize));
    const widen = inSize < outSize;
    const srcBuf = widen ? new ArrayBuffer(chunk * inSize) : scratch;
    const fd = this.fdFor(t.file);
    const base = t.dataStart + rowStart * rowElems * inSize;

    for (let off = 0; off < total; off += chunk) {
      const n = Math.min(chunk, total - off);
      readFully(fd, new Uint8Array(srcBuf, 0, n * inSize), base + off * inSize, t.file, name);
      const out = convert(t.dtype, target, srcBuf, scratch, n);
      // every value goes through here once: a NaN or inf (or an overflow of f16) stops the load
      const bad = out instanceof Uint16Array ? firstNonFiniteF16(out) : firstNonFiniteF32(out);
      if (bad >= 0) throw this.nonFiniteError(t, rowStart * rowElems + off + bad, target);
      onChunk(out, off);
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

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
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

/** Converts n elements read into src into dst (which may be the same buffer; see readRows). */
function convert(dtype: StDType, target: 'f16' | 'f32', src: ArrayBuffer, dst: ArrayBuffer, n: number): Uint16Array | Float32Array {
  if (target === 'f32') {
    const out = new Float32Array(dst, 0, n);
    if (dtype === 'F16') f16BitsToF32(new Uint16Array(src, 0, n), out);
    else if (dtype === 'BF16') bf16BitsToF32(new Uint16Array(src, 0, n), out);
    return out; // F32: read straight into dst
  }
  const out = new Uint16Array(dst, 0, n);
  if (dtype === 'F32') f32ToF16Bits(new Float32Array(src, 0, n), out);
  else if (dtype === 'BF16') bf16BitsToF16Bits(new Uint16Array(src, 0, n), out);
  return out; // F16: read straight into dst
}

/** Shards are plain file names next to the index; anything else would escape the checkpoint dir. */
export function isShardFileName(s: string): boolean {
  return s !== '' && s !== '.' && s !== '..' && !/[\\/]/.test(s);
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
