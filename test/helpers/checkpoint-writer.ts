/**
 * Writes safetensors checkpoints for tests. Streams tensor by tensor (and in pieces within a
 * tensor) with fs.writeSync, so multi-GB checkpoints never sit in memory as a whole.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { f32ToBf16Bits, f32ToF16Bits } from '../../runtime/dtype-convert.js';
import { groupIntoShards } from '../../bench/llama-checkpoint.js';

export { groupIntoShards };

export interface WriteTensor { name: string; shape: number[]; data: Float32Array; dtype: 'F32' | 'F16' | 'BF16' }

const ITEM_SIZE = { F32: 4, F16: 2, BF16: 2 } as const;
/** Elements converted per write: bounds the scratch copy for huge tensors. */
const PIECE = 1 << 20;

function byteLength(t: WriteTensor): number {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) throw new Error(`tensor ${t.name}: shape ${JSON.stringify(t.shape)} needs ${n} elements, data has ${t.data.length}`);
  return n * ITEM_SIZE[t.dtype];
}

/** JSON header padded with spaces so the data region starts 8-byte aligned, as the format does. */
function headerBytes(header: unknown): Buffer {
  const json = typeof header === 'string' ? header : JSON.stringify(header);
  const raw = Buffer.from(json, 'utf8');
  const padded = Buffer.alloc(Math.ceil(raw.length / 8) * 8, 0x20);
  raw.copy(padded);
  return padded;
}

/** writeSync may write less than asked; loop until all bytes are out. */
function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done);
}

function writeLengthAndHeader(fd: number, header: Buffer, length: number): void {
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(length));
  writeAll(fd, len);
  writeAll(fd, header);
}

function writeTensorData(fd: number, t: WriteTensor): void {
  const scratch = t.dtype === 'F32' ? undefined : new Uint16Array(Math.min(PIECE, t.data.length));
  for (let off = 0; off < t.data.length; off += PIECE) {
    const src = t.data.subarray(off, off + PIECE);
    let out: Float32Array | Uint16Array = src;
    if (t.dtype === 'F16') out = f32ToF16Bits(src, scratch!.subarray(0, src.length));
    if (t.dtype === 'BF16') out = f32ToBf16Bits(src, scratch!.subarray(0, src.length));
    writeAll(fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
  }
}

export function writeSafetensors(path: string, tensors: WriteTensor[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const n = byteLength(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  const hdr = headerBytes(header);
  const fd = fs.openSync(path, 'w');
  try {
    writeLengthAndHeader(fd, hdr, hdr.length);
    for (const t of tensors) writeTensorData(fd, t);
  } finally {
    fs.closeSync(fd);
  }
}

/** Splits tensors over shards of roughly shardBytes each, writes model-0000i-of-0000n.safetensors + model.safetensors.index.json into dir. */
export function writeShardedSafetensors(dir: string, tensors: WriteTensor[], shardBytes: number): void {
  const shards = groupIntoShards(tensors, byteLength, shardBytes);
  fs.mkdirSync(dir, { recursive: true });
  const pad = (i: number) => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((shard, i) => {
    const name = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    writeSafetensors(path.join(dir, name), shard, { format: 'pt' });
    for (const t of shard) {
      weightMap[t.name] = name;
      total += byteLength(t);
    }
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
}

/**
 * Low-level: build a file from a raw header object and raw data bytes (for corruption tests).
 * A string header is written verbatim (so tests can write invalid JSON), then space-padded.
 */
export function writeRawSafetensors(path: string, header: unknown, data: Uint8Array, headerLengthOverride?: number): void {
  const hdr = headerBytes(header);
  const fd = fs.openSync(path, 'w');
  try {
    writeLengthAndHeader(fd, hdr, headerLengthOverride ?? hdr.length);
    writeAll(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}
