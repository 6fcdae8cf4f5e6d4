import fs from 'node:fs';
import { GGML_TYPE_ID, GgufValueType, ggmlRowBytes, type GgmlType } from './gguf.js';

/**
 * Writes a GGUF version 3 file (runtime/gguf.ts reads it; llama.cpp's layout): header, metadata,
 * tensor infos, then each tensor's data at a 32-byte aligned offset, written one tensor at a time.
 */

export type GgufKv =
  | { key: string; type: GgufValueType.U32 | GgufValueType.I32 | GgufValueType.F32; value: number }
  | { key: string; type: GgufValueType.STRING; value: string }
  | { key: string; type: GgufValueType.BOOL; value: boolean }
  | { key: string; type: GgufValueType.ARRAY; items: GgufValueType.STRING; value: string[] }
  | { key: string; type: GgufValueType.ARRAY; items: GgufValueType.F32 | GgufValueType.I32; value: number[] };

export interface GgufTensorOut {
  name: string;
  type: GgmlType;
  /** Outermost first ([rows, cols]). */
  shape: number[];
  /** The tensor's bytes in its type's layout (called once, when it is written). */
  data(): Uint8Array;
}

const ALIGN = 32;

class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void { this.parts.push(b); this.length += b.length; }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v: number): void { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  f32(v: number): void { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  u64(v: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  scalar(type: GgufValueType, v: number | string | boolean): void {
    switch (type) {
      case GgufValueType.U32: this.u32(v as number); break;
      case GgufValueType.I32: this.i32(v as number); break;
      case GgufValueType.F32: this.f32(v as number); break;
      case GgufValueType.BOOL: this.push(Buffer.from([v ? 1 : 0])); break;
      case GgufValueType.STRING: this.str(v as string); break;
      default: throw new Error(`internal: GGUF writer has no scalar type ${type}`);
    }
  }
  buffer(): Buffer { return Buffer.concat(this.parts); }
}

export function writeGguf(file: string, metadata: GgufKv[], tensors: GgufTensorOut[]): void {
  const h = new Bytes();
  h.u32(0x46554747);
  h.u32(3);
  h.u64(tensors.length);
  h.u64(metadata.length + 1);
  h.str('general.alignment');
  h.u32(GgufValueType.U32);
  h.u32(ALIGN);
  for (const kv of metadata) {
    h.str(kv.key);
    h.u32(kv.type);
    if (kv.type === GgufValueType.ARRAY) {
      h.u32(kv.items);
      h.u64(kv.value.length);
      for (const v of kv.value) h.scalar(kv.items, v);
    } else {
      h.scalar(kv.type, kv.value);
    }
  }
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) h.u64(d);
    h.u32(GGML_TYPE_ID[t.type]);
    h.u64(offset);
    const rows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const bytes = rows * ggmlRowBytes(t.type, t.shape[t.shape.length - 1]);
    sizes.push(bytes);
    offset += Math.ceil(bytes / ALIGN) * ALIGN;
  }
  const fd = fs.openSync(file, 'w');
  try {
    const header = h.buffer();
    fs.writeSync(fd, header);
    let pos = header.length;
    const pad = (): void => {
      const n = Math.ceil(pos / ALIGN) * ALIGN - pos;
      if (n) fs.writeSync(fd, Buffer.alloc(n));
      pos += n;
    };
    pad();
    tensors.forEach((t, i) => {
      const data = t.data();
      if (data.length !== sizes[i]) throw new Error(`internal: tensor ${t.name} has ${data.length} bytes, its shape and type say ${sizes[i]}`);
      fs.writeSync(fd, data);
      pos += data.length;
      pad();
    });
  } finally {
    fs.closeSync(fd);
  }
}
