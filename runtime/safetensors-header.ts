/**
 * The safetensors header, parsed and validated from bytes (no file access: the Node reader and the
 * browser's HTTP reader both use it). Format: u64 LE header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets}}, then the data region; offsets are relative to the start of
 * the data region.
 */
import { LscError, oneLine } from '../compiler/errors.js';
import { bf16BitsToF16Bits, bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from './dtype-convert.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** Shards are plain file names next to the index; anything else would escape the checkpoint dir. */
export function isShardFileName(s: string): boolean {
  return s !== '' && s !== '.' && s !== '..' && !/[\\/]/.test(s);
}

export type StDType = 'F32' | 'F16' | 'BF16';

export interface TensorEntry {
  name: string;
  dtype: StDType;
  shape: number[];
  /** The .safetensors file holding it: an absolute path (Node) or a URL (the browser). */
  file: string;
  /** Absolute byte offset in that file where its data starts. */
  dataStart: number;
  byteLength: number;
}

export const ITEM_SIZE: Record<StDType, number> = { F32: 4, F16: 2, BF16: 2 };
/** Dtypes the format defines that lsc cannot load (reported as "unsupported", not "unknown"). */
const OTHER_DTYPES = new Set([
  'F64', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL', 'C64',
  'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'U1',
]);
export const MAX_HEADER_BYTES = 100_000_000;

export const HINT_REDOWNLOAD = 're-download the checkpoint (the file looks truncated or corrupted)';
const HINT_CONVERT = 'convert the tensor to F16, BF16 or F32 before loading';

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value from the file, as JSON cut to a readable length (a header can hold megabytes of anything). */
export function brief(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
}

export function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function product(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/**
 * The header length from the file's first 8 bytes, checked against the file's size; `size` is the
 * whole file's byte count.
 */
export function headerLength(file: string, size: number, first8: Uint8Array): number {
  if (size < 8) throw new LscError(`safetensors file is ${size} bytes, shorter than its 8-byte header length`, { file }, HINT_REDOWNLOAD);
  const len64 = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (len64 > BigInt(MAX_HEADER_BYTES)) throw new LscError(`header length ${len64} is absurd (over ${MAX_HEADER_BYTES} bytes)`, { file }, HINT_REDOWNLOAD);
  const headerLen = Number(len64);
  if (8 + headerLen > size) throw new LscError(`header length ${headerLen} runs past the end of the ${size}-byte file`, { file }, HINT_REDOWNLOAD);
  return headerLen;
}

/** Parses and validates the header JSON (the `headerBuf.length` bytes after the first 8) of a `size`-byte file. */
export function parseHeader(file: string, size: number, headerBuf: Uint8Array): TensorEntry[] {
  const headerLen = headerBuf.length;
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

/** Converts n elements read into src into dst (which may be the same buffer; see readRows). */
export function convertStored(dtype: StDType, target: 'f16' | 'f32', src: ArrayBuffer, dst: ArrayBuffer, n: number): Uint16Array | Float32Array {
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
