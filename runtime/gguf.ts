import fs from 'node:fs';
import { LscError } from '../compiler/errors.js';
import { QBLOCK, blockBytes, type QuantFormat } from '../compiler/ir/weight-formats.js';
import { openRegularFile } from './safe-file.js';

/**
 * llama.cpp's GGUF files (versions 2 and 3): the header (metadata key/values, tensor infos) is
 * parsed and checked whole, so a truncated or corrupt file fails with one line naming what is
 * wrong; tensor data is read by rows on demand. Types: F32, F16, Q8_0, Q4_0 (others are named in
 * a clear error when read). Shapes are given outermost first ([rows, cols], as safetensors), the
 * reverse of GGUF's ne[] order.
 */

const MAGIC = 0x46554747; // "GGUF" little-endian
const HINT = 'the GGUF file is truncated or corrupt: download or convert it again';
/** Bounds that no real file reaches; past them the header is corrupt (and would exhaust memory). */
const MAX_COUNT = 1 << 24;
const MAX_STRING = 1 << 26;

/** ggml tensor types by number (ggml.h), for messages; lsc reads the first four. */
export const GGML_TYPES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K',
  13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S',
  22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16',
};
export type GgmlType = 'F32' | 'F16' | 'Q8_0' | 'Q4_0';
export const GGML_TYPE_ID: Record<GgmlType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 };
const SUPPORTED = new Map<number, GgmlType>([[0, 'F32'], [1, 'F16'], [2, 'Q4_0'], [8, 'Q8_0']]);

export const quantOfType = (t: GgmlType): QuantFormat | undefined => (t === 'Q8_0' ? 'q8_0' : t === 'Q4_0' ? 'q4_0' : undefined);

/** Bytes of one row of `cols` values of a type. */
export function ggmlRowBytes(t: GgmlType, cols: number): number {
  const q = quantOfType(t);
  if (q) return (cols / QBLOCK) * blockBytes(q);
  return cols * (t === 'F16' ? 2 : 4);
}

/** GGUF metadata value types. */
export const enum GgufValueType { U8 = 0, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 }
export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufTensor {
  name: string;
  /** The ggml type number (see GGML_TYPES); `type` when lsc reads it. */
  typeId: number;
  type?: GgmlType;
  /** Outermost first: [rows, cols] for a matrix. */
  shape: number[];
  /** Absolute file offset of the data. */
  offset: number;
  bytes: number;
}

/** Buffered little-endian reader over the header, failing with LscErrors at the end of the file. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;
  constructor(private readonly fd: number, readonly size: number, private readonly file: string) {}

  private need(n: number, what: string): Buffer {
    if (this.pos + n > this.size) throw new LscError(`the GGUF header ends early: ${what} at byte ${this.pos} runs past the ${this.size}-byte file`, { file: this.file }, HINT);
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.buf.length) {
      const len = Math.min(Math.max(n, 1 << 20), this.size - this.pos);
      this.buf = Buffer.alloc(len);
      fs.readSync(this.fd, this.buf, 0, len, this.pos);
      this.bufStart = this.pos;
    }
    const at = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }
  u32(what: string): number { return this.need(4, what).readUInt32LE(0); }
  u64(what: string): number {
    const v = this.need(8, what).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new LscError(`${what} ${v} is absurd`, { file: this.file }, HINT);
    return Number(v);
  }
  count(what: string, max = MAX_COUNT): number {
    const n = this.u64(what);
    if (n > max) throw new LscError(`${what} ${n} is absurd (over ${max})`, { file: this.file }, HINT);
    return n;
  }
  string(what: string): string {
    const n = this.count(`${what}: string length`, MAX_STRING);
    return this.need(n, what).toString('utf8');
  }
  value(type: number, what: string): GgufValue {
    switch (type) {
      case GgufValueType.U8: return this.need(1, what).readUInt8(0);
      case GgufValueType.I8: return this.need(1, what).readInt8(0);
      case GgufValueType.U16: return this.need(2, what).readUInt16LE(0);
      case GgufValueType.I16: return this.need(2, what).readInt16LE(0);
      case GgufValueType.U32: return this.need(4, what).readUInt32LE(0);
      case GgufValueType.I32: return this.need(4, what).readInt32LE(0);
      case GgufValueType.F32: return this.need(4, what).readFloatLE(0);
      case GgufValueType.BOOL: return this.need(1, what).readUInt8(0) !== 0;
      case GgufValueType.STRING: return this.string(what);
      case GgufValueType.U64: return this.need(8, what).readBigUInt64LE(0);
      case GgufValueType.I64: return this.need(8, what).readBigInt64LE(0);
      case GgufValueType.F64: return this.need(8, what).readDoubleLE(0);
      case GgufValueType.ARRAY: {
        const t = this.u32(`${what}: array type`);
        if (t === GgufValueType.ARRAY) throw new LscError(`${what}: nested arrays are not GGUF`, { file: this.file }, HINT);
        const n = this.count(`${what}: array length`);
        const out: GgufValue[] = [];
        for (let i = 0; i < n; i++) out.push(this.value(t, what));
        return out;
      }
      default: throw new LscError(`${what} has unknown value type ${type}`, { file: this.file }, HINT);
    }
  }
}

export class GgufFile {
  private constructor(readonly file: string, private fd: number | undefined, readonly version: number,
    readonly metadata: ReadonlyMap<string, GgufValue>, readonly tensors: ReadonlyMap<string, GgufTensor>) {}

  static open(file: string): GgufFile {
    const fd = openRegularFile(file, 'GGUF file');
    try {
      const size = fs.fstatSync(fd).size;
      const c = new Cursor(fd, size, file);
      const magic = c.u32('the magic number');
      if (magic !== MAGIC) throw new LscError(`not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF")`, { file }, 'pass a .gguf file written by llama.cpp or lsc quantize');
      const version = c.u32('the version');
      if (version !== 2 && version !== 3) throw new LscError(`GGUF version ${version} is not supported (2 and 3 are)`, { file }, 'convert the model with a current llama.cpp');
      const nTensors = c.count('the tensor count');
      const nKv = c.count('the metadata count');
      const metadata = new Map<string, GgufValue>();
      for (let i = 0; i < nKv; i++) {
        const key = c.string(`metadata key ${i}`);
        const type = c.u32(`metadata '${key}': type`);
        metadata.set(key, c.value(type, `metadata '${key}'`));
      }
      const infos: Omit<GgufTensor, 'offset' | 'bytes'>[] = [];
      const rel: number[] = [];
      for (let i = 0; i < nTensors; i++) {
        const name = c.string(`tensor ${i}: name`);
        const nd = c.u32(`tensor '${name}': dimension count`);
        if (nd < 1 || nd > 4) throw new LscError(`tensor '${name}' has ${nd} dimensions (GGUF allows 1 to 4)`, { file, tensor: name }, HINT);
        const ne: number[] = [];
        for (let d = 0; d < nd; d++) ne.push(c.count(`tensor '${name}': dimension ${d}`, 2 ** 40));
        const typeId = c.u32(`tensor '${name}': type`);
        infos.push({ name, typeId, type: SUPPORTED.get(typeId), shape: ne.reverse() });
        rel.push(c.u64(`tensor '${name}': offset`));
      }
      const align = Number(metadata.get('general.alignment') ?? 32);
      if (!Number.isInteger(align) || align <= 0 || (align & (align - 1)) !== 0) throw new LscError(`general.alignment ${align} is not a power of two`, { file }, HINT);
      const dataStart = Math.ceil(c.pos / align) * align;
      const tensors = new Map<string, GgufTensor>();
      infos.forEach((t, i) => {
        if (tensors.has(t.name)) throw new LscError(`tensor '${t.name}' appears twice`, { file, tensor: t.name }, HINT);
        const cols = t.shape[t.shape.length - 1];
        const rows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
        // the byte size only of types lsc reads; others fail when read (their name in the message)
        const bytes = t.type ? (quantOfType(t.type) && cols % QBLOCK !== 0 ? NaN : rows * ggmlRowBytes(t.type, cols)) : 0;
        if (Number.isNaN(bytes)) throw new LscError(`tensor '${t.name}' (${t.type}) has rows of ${cols} values, not whole blocks of ${QBLOCK}`, { file, tensor: t.name }, HINT);
        const offset = dataStart + rel[i];
        if (rel[i] % align !== 0) throw new LscError(`tensor '${t.name}' data offset ${rel[i]} is not aligned to ${align}`, { file, tensor: t.name }, HINT);
        if (offset + bytes > size) throw new LscError(`tensor '${t.name}' data (bytes ${offset}..${offset + bytes}) runs past the ${size}-byte file`, { file, tensor: t.name }, HINT);
        tensors.set(t.name, { ...t, offset, bytes });
      });
      return new GgufFile(file, fd, version, metadata, tensors);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** A tensor lsc can read, or a clear error naming its type. */
  tensor(name: string): GgufTensor & { type: GgmlType } {
    const t = this.tensors.get(name);
    if (!t) throw new LscError(`tensor '${name}' is missing from the GGUF file`, { file: this.file, tensor: name }, 'use a Llama GGUF file (llama.cpp names: token_embd, blk.N.attn_q, ...)');
    if (!t.type) {
      throw new LscError(`tensor '${name}' has type ${GGML_TYPES[t.typeId] ?? `#${t.typeId}`}, which lsc does not read (F32, F16, Q8_0 and Q4_0 it does)`,
        { file: this.file, tensor: name }, 'requantize the model to Q8_0 or Q4_0 (llama-quantize), or use its F16 GGUF');
    }
    return t as GgufTensor & { type: GgmlType };
  }

  /** The raw bytes of rows [rowStart, rowStart + rows) of a tensor (GGUF's own layout: interleaved blocks for Q8_0 / Q4_0). */
  readRows(name: string, rowStart: number, rows: number): Uint8Array {
    const t = this.tensor(name);
    const rb = ggmlRowBytes(t.type, t.shape[t.shape.length - 1]);
    const out = new Uint8Array(rows * rb);
    if (this.fd === undefined) this.fd = openRegularFile(this.file, 'GGUF file');
    let done = 0;
    while (done < out.length) {
      const n = fs.readSync(this.fd, out, done, out.length - done, t.offset + rowStart * rb + done);
      if (n === 0) throw new LscError(`the GGUF file ended inside tensor '${name}'`, { file: this.file, tensor: name }, HINT);
      done += n;
    }
    return out;
  }

  get(key: string): GgufValue | undefined {
    return this.metadata.get(key);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
