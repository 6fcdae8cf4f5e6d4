/**
 * Fuzz target (test/helpers/fuzz.ts) for runtime/safetensors.ts: a small valid checkpoint, one
 * file or two shards + model.safetensors.index.json, with one or two seeded mutations of the
 * 8-byte header length, the JSON header (dtypes, shapes, data_offsets, names, __metadata__,
 * duplicates), the bytes (truncation, flips, junk) or the index (weight_map values outside the
 * model directory, missing, non-regular or non-string). Each case opens the checkpoint and reads
 * every tensor as f16 and f32, as a load does; it must succeed or throw an LscError.
 *
 * A weight_map entry naming a file outside the model directory (or any path, not a plain file
 * name) must be refused even though the file it names is a valid shard: such a case that loads
 * throws a plain Error, which the harness counts as a failure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { SafetensorsCheckpoint } from '../../../runtime/safetensors.js';
import { f32ToBf16Bits, f32ToF16Bits } from '../../../runtime/dtype-convert.js';
import type { Rng } from '../../../runtime/sampling.js';
import type { FuzzCase } from '../fuzz.js';
import { int, mutateJson, pick, PROTOTYPE_NAMES } from '../json-mutate.js';

type Dtype = 'F32' | 'F16' | 'BF16';
interface Spec { name: string; dtype: Dtype; shape: number[] }
type Header = Record<string, unknown>;

/** The unmutated checkpoint: every dtype, 1-, 2- and 3-D, an empty tensor and a scalar. */
const TENSORS: Spec[] = [
  { name: 'model.embed_tokens.weight', dtype: 'F16', shape: [8, 4] },
  { name: 'model.norm.weight', dtype: 'F32', shape: [4] },
  { name: 'lm_head.weight', dtype: 'BF16', shape: [2, 3, 2] },
  { name: 'model.layers.0.empty', dtype: 'F16', shape: [0, 4] },
  { name: 'scale', dtype: 'F32', shape: [] },
];
const ITEM = { F32: 4, F16: 2, BF16: 2 } as const;

/** Every case's files live under this directory (one per process: workers are threads). */
export function fuzzRoot(): string {
  return path.join(os.tmpdir(), `lsc-fuzz-safetensors-${process.pid}`);
}

function tensorBytes(s: Spec, seed: number): Uint8Array {
  const n = s.shape.reduce((a, b) => a * b, 1);
  const v = Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i) * 4);
  const out = s.dtype === 'F32' ? v : s.dtype === 'F16' ? f32ToF16Bits(v) : f32ToBf16Bits(v);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Header object and data bytes of a valid file holding `specs` (data 8-byte aligned, in order). */
function layout(specs: Spec[]): { header: Header; data: Buffer } {
  const header: Header = { __metadata__: { format: 'pt' } };
  const parts: Uint8Array[] = [];
  let off = 0;
  specs.forEach((s, i) => {
    const b = tensorBytes(s, i);
    header[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [off, off + b.length] };
    parts.push(b);
    off += b.length;
  });
  return { header, data: Buffer.concat(parts) };
}

/** The file: u64 LE length, header text padded with spaces to 8 bytes, data. */
function fileBytes(headerText: string, data: Uint8Array, length?: bigint): Buffer {
  const raw = Buffer.from(headerText, 'utf8');
  const hdr = Buffer.alloc(Math.ceil(raw.length / 8) * 8, 0x20);
  raw.copy(hdr);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(length ?? BigInt(hdr.length));
  return Buffer.concat([len, hdr, data]);
}

const ODD_DTYPES: unknown[] = ['F64', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'f32', 'f16', '', 'F 16', 'toString', '__proto__', 'constructor', 7, null, true, ['F16'], { F16: 1 }];
const ODD_SHAPES: unknown[] = [
  [2 ** 53], [2 ** 53, 0], [2 ** 53 + 2], [-1, 4], [8, -4], [1.5, 4], [4, 0.5], [1e308], [2 ** 26, 2 ** 26, 2 ** 26], [2 ** 32, 2 ** 32],
  [], [0], [32], [4, 8], [1, 1, 1, 1, 1, 1, 1, 32], Array(10_000).fill(1), '8,4', null, 8, [[8], [4]], ['8', 4], [8, null], [NaN], {},
];

/** Replacement data_offsets for an entry [b, e] in a data region of `size` bytes (some valid, most not). */
function oddOffsets(rng: Rng, b: number, e: number, size: number, other: [number, number]): unknown {
  return pick(rng, [
    [e, b], [b, b], [b + 1, e + 1], [b - 1, e - 1], [0, size + 2], [size, size + (e - b)], [other[0], other[0] + (e - b)],
    [b, 2 ** 53], [2 ** 53 - (e - b), 2 ** 53], [-2, e - b - 2], [b + 0.5, e + 0.5], [b], [b, e, 0], [], `${b},${e}`, null,
    [b, 2 ** 64], [1e308, 1e308], [String(b), e], [other[0], other[1]],
  ]);
}

interface Built { files: Map<string, Buffer>; index?: unknown; label: string; mustFail?: string; extra?: (dir: string) => void }

/** A single-file checkpoint with header / length / byte mutations. */
function singleFile(rng: Rng): Built {
  const { header, data } = layout(TENSORS);
  const names = TENSORS.map((t) => t.name);
  const labels: string[] = [];
  let text: string | undefined;
  let length: bigint | undefined;
  let bytes: Buffer | undefined;
  let tail = data as Buffer;
  const mutations = 1 + int(rng, 2);
  for (let m = 0; m < mutations; m++) {
    const name = pick(rng, names);
    const raw = header[name];
    const entry = raw && typeof raw === 'object' && !Array.isArray(raw) ? raw as Header : undefined;
    const family = int(rng, 12);
    if (family === 0) {
      ({ text, label: labels[labels.length] } = mutateJson(header, rng));
    } else if (family === 1 && entry) {
      entry.dtype = pick(rng, ODD_DTYPES);
      labels.push(`${name}.dtype := ${JSON.stringify(entry.dtype)}`);
    } else if (family === 2 && entry) {
      entry.shape = pick(rng, ODD_SHAPES);
      labels.push(`${name}.shape := ${JSON.stringify(entry.shape)?.slice(0, 40)}`);
    } else if (family === 3 && entry) {
      // an earlier mutation may have replaced them already
      const offsetsOf = (v: unknown): [number, number] => (Array.isArray(v) && v.length === 2 ? v as [number, number] : [0, 8]);
      const [b, e] = offsetsOf(entry.data_offsets);
      const other = header[pick(rng, names)] as Header | undefined;
      entry.data_offsets = oddOffsets(rng, b, e, data.length, offsetsOf(other?.data_offsets));
      labels.push(`${name}.data_offsets := ${JSON.stringify(entry.data_offsets)}`);
    } else if (family === 4 && entry) {
      // a tensor renamed: prototype names, the metadata key, empty, very long
      const to = pick(rng, [...PROTOTYPE_NAMES, '__metadata__', '', 'a'.repeat(100_000), 'model.layers.0.x\u0000y', 'line\nbreak', '🦙']);
      delete header[name];
      Object.defineProperty(header, to, { value: entry, enumerable: true, writable: true, configurable: true });
      labels.push(`${name} renamed ${JSON.stringify(to).slice(0, 30)}`);
    } else if (family === 5 && entry) {
      // a name twice in the JSON text: JSON.parse keeps the last one
      const json = JSON.stringify(header);
      const dup = JSON.stringify({ dtype: pick(rng, ['F16', 'F32']), shape: pick(rng, [[4], [2 ** 40], [8, 4]]), data_offsets: pick(rng, [[0, 8], [0, 2 ** 40], [4, 12]]) });
      text = `{${JSON.stringify(name)}:${dup},${json.slice(1)}`;
      if (rng.next() < 0.5) text = `${json.slice(0, -1)},${JSON.stringify(name)}:${dup}}`;
      labels.push(`${name} twice`);
    } else if (family === 6) {
      header.__metadata__ = pick(rng, [null, 1, 'x', [], { a: 1 }, { format: { x: [1, 2] } }, { total_size: 2 ** 60 }]);
      labels.push(`__metadata__ := ${JSON.stringify(header.__metadata__)}`);
    } else if (family === 7 && entry) {
      header[name] = pick(rng, [null, 1, 'x', [], {}, { dtype: 'F16' }, { dtype: 'F16', shape: [4] }, { ...entry, extra: 1 }]);
      labels.push(`${name} := ${JSON.stringify(header[name])}`);
    } else if (family === 8) {
      const hdrLen = Math.ceil(Buffer.byteLength(text ?? JSON.stringify(header)) / 8) * 8;
      const total = 8 + hdrLen + data.length;
      length = BigInt(pick(rng, [0, 1, 2, 7, hdrLen - 1, hdrLen + 1, hdrLen + 8, total, total - 7, total + 1, 2 ** 53, 100_000_001]));
      if (rng.next() < 0.2) length = pick(rng, [2n ** 63n, 2n ** 64n - 1n, 2n ** 32n]);
      labels.push(`length := ${length}`);
    } else if (family === 9) {
      bytes = fileBytes(text ?? JSON.stringify(header), tail, length);
      const at = int(rng, bytes.length + 1);
      bytes = bytes.subarray(0, at);
      labels.push(`truncated at ${at} of ${bytes.length}`);
    } else if (family === 10) {
      bytes = fileBytes(text ?? JSON.stringify(header), tail, length);
      const flips = 1 + int(rng, 4);
      for (let f = 0; f < flips; f++) bytes[int(rng, bytes.length)] = int(rng, 256);
      labels.push(`${flips} bytes changed`);
    } else {
      const junk = pick(rng, ['append', 'bom', 'invalid-utf8', 'trailing']);
      if (junk === 'append') tail = Buffer.concat([tail, Buffer.alloc(int(rng, 64), 0xab)]);
      else if (junk === 'bom') text = '\ufeff' + (text ?? JSON.stringify(header));
      else if (junk === 'trailing') text = (text ?? JSON.stringify(header)) + pick(rng, ['x', '{}', '\u0000', ',']);
      else {
        bytes = fileBytes(text ?? JSON.stringify(header), tail, length);
        bytes[8 + int(rng, 4)] = 0xff;
      }
      labels.push(`junk: ${junk}`);
    }
  }
  return { files: new Map([['model.safetensors', bytes ?? fileBytes(text ?? JSON.stringify(header), tail, length)]]), label: labels.join('; ') };
}

/** Two shards + index, the index mutated (or a shard's header). */
function sharded(rng: Rng): Built {
  const shards = [TENSORS.slice(0, 2), TENSORS.slice(2)];
  const files = new Map<string, Buffer>();
  const weightMap: Record<string, unknown> = {};
  shards.forEach((specs, i) => {
    const name = `model-0000${i + 1}-of-00002.safetensors`;
    const { header, data } = layout(specs);
    files.set(name, fileBytes(JSON.stringify(header), data));
    for (const s of specs) weightMap[s.name] = name;
  });
  const index: Record<string, unknown> = { metadata: { total_size: 100 }, weight_map: weightMap };
  const tensor = pick(rng, TENSORS).name;
  const shardOf = weightMap[tensor] as string;
  let mustFail: string | undefined;
  let extra: Built['extra'];
  let label: string;
  const family = int(rng, 6);
  if (family <= 1) {
    // outside the model directory: a valid copy of the shard is there, so following it would load
    const to = pick(rng, ['../outside.safetensors', '../model/../outside.safetensors', 'ABS', './sub/x.safetensors', 'sub/../' + shardOf, '..\\outside.safetensors']);
    const value = to === 'ABS' ? '@ABS@' : to;
    weightMap[tensor] = value;
    mustFail = `weight_map entry ${to} is not a plain file name in the model directory`;
    extra = (dir) => {
      const copy = files.get(shardOf)!;
      fs.writeFileSync(path.join(dir, '..', 'outside.safetensors'), copy);
      fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'sub', 'x.safetensors'), copy);
    };
    label = `weight_map[${tensor}] := ${to}`;
  } else if (family === 2) {
    const to = pick(rng, ['missing.safetensors', 'fifo.safetensors', 'adir.safetensors', 'link-to-dir.safetensors', 'dangling.safetensors',
      'model.safetensors.index.json', '', '.', '..', 5, null, {}, [], true, ...PROTOTYPE_NAMES]);
    weightMap[tensor] = to;
    extra = (dir) => {
      execFileSync('mkfifo', [path.join(dir, 'fifo.safetensors')]);
      fs.mkdirSync(path.join(dir, 'adir.safetensors'));
      fs.symlinkSync(path.join(dir, 'adir.safetensors'), path.join(dir, 'link-to-dir.safetensors'));
      fs.symlinkSync(path.join(dir, 'gone'), path.join(dir, 'dangling.safetensors'));
    };
    label = `weight_map[${tensor}] := ${JSON.stringify(to)}`;
  } else if (family === 3) {
    // prototype names as tensor names in the index (and maybe in the shard)
    const key = pick(rng, PROTOTYPE_NAMES);
    Object.defineProperty(weightMap, key, { value: pick(rng, [shardOf, 'model-00001-of-00002.safetensors', 1]), enumerable: true, writable: true, configurable: true });
    label = `weight_map[${key}] := ${JSON.stringify(weightMap[key])}`;
  } else if (family === 4) {
    index.weight_map = pick(rng, [null, [], 'x', 1, [weightMap], {}]);
    label = `weight_map := ${JSON.stringify(index.weight_map)?.slice(0, 40)}`;
  } else {
    const m = mutateJson(index, rng);
    return { files, index: m.text, label: `index: ${m.label}` };
  }
  return { files, index, label, mustFail, extra };
}

let counter = 0;

export function fuzzCase(rng: Rng): FuzzCase {
  const built = rng.next() < 0.7 ? singleFile(rng) : sharded(rng);
  return {
    label: built.label,
    run: () => {
      const caseDir = path.join(fuzzRoot(), `case-${process.hrtime.bigint()}-${counter++}`);
      const dir = path.join(caseDir, 'model');
      fs.mkdirSync(dir, { recursive: true });
      try {
        for (const [name, bytes] of built.files) fs.writeFileSync(path.join(dir, name), bytes);
        built.extra?.(dir);
        if (built.index !== undefined) {
          const text = typeof built.index === 'string' ? built.index : JSON.stringify(built.index);
          fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), text.replace('@ABS@', path.join(caseDir, 'outside.safetensors')));
        }
        const ck = SafetensorsCheckpoint.open(dir);
        try {
          for (const [name, t] of ck.tensors) {
            const n = t.shape.reduce((a, b) => a * b, 1);
            const f16 = ck.readAll(name, 'f16');
            const f32 = ck.readAll(name, 'f32');
            if (f16.length !== n || f32.length !== n) throw new Error(`read ${f16.length} / ${f32.length} elements of ${name}, shape ${JSON.stringify(t.shape)}`);
          }
        } finally {
          ck.close();
        }
        if (built.mustFail) throw new Error(`accepted: ${built.mustFail}`);
      } finally {
        fs.rmSync(caseDir, { recursive: true, force: true });
      }
    },
  };
}
