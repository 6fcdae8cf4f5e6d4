import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LscError } from '../compiler/errors.js';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../runtime/dtype-convert.js';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import {
  writeRawSafetensors, writeSafetensors, writeShardedSafetensors, type WriteTensor,
} from './helpers/checkpoint-writer.js';

/** Tiny seeded PRNG (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomTensor(name: string, shape: number[], dtype: WriteTensor['dtype'], seed: number): WriteTensor {
  const r = rng(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (r() - 0.5) * 8;
  return { name, shape, data, dtype };
}

/** What a stored tensor reads back as in f32 and f16, through the (separately tested) converters. */
function expected(t: WriteTensor): { f32: Float32Array; f16: Uint16Array } {
  if (t.dtype === 'F32') return { f32: t.data, f16: f32ToF16Bits(t.data) };
  if (t.dtype === 'F16') {
    const bits = f32ToF16Bits(t.data);
    return { f32: f16BitsToF32(bits), f16: bits };
  }
  const f32 = bf16BitsToF32(f32ToBf16Bits(t.data));
  return { f32, f16: f32ToF16Bits(f32) };
}

const tmpDirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-st-'));
  tmpDirs.push(d);
  return d;
}

/** Runs fn, asserts it throws an LscError matching msg, naming file (and tensor); returns the error. */
function expectLsc(fn: () => unknown, msg: RegExp, file: string, tensor?: string): LscError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof LscError, `expected LscError, got ${(e as Error)?.stack ?? e}`);
    assert.match(e.message, msg);
    assert.equal(e.where.file, file);
    if (tensor !== undefined) assert.equal(e.where.tensor, tensor);
    assert.ok(e.hint && e.hint.length > 0, 'has a hint');
    return e;
  }
  assert.fail(`expected an LscError matching ${msg}`);
}

/** Opens, reads everything, closes. */
function openAndReadAll(dir: string): void {
  const ck = SafetensorsCheckpoint.open(dir);
  try {
    for (const name of ck.tensors.keys()) {
      ck.readAll(name, 'f16');
      ck.readAll(name, 'f32');
    }
  } finally {
    ck.close();
  }
}

describe('safetensors', () => {
  after(() => {
    for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  });

  describe('reading', () => {
    for (const dtype of ['F32', 'F16', 'BF16'] as const) {
      it(`round trips ${dtype} in a single file`, () => {
        const dir = tmp();
        const tensors = [
          randomTensor('a.weight', [7, 5], dtype, 1),
          randomTensor('b.bias', [9], dtype, 2),
          randomTensor('scalar', [], dtype, 3),
          randomTensor('empty', [0, 4], dtype, 4),
          randomTensor('c', [2, 3, 4], dtype, 5),
        ];
        writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
        const ck = SafetensorsCheckpoint.open(dir);
        try {
          assert.deepEqual(ck.files, [path.join(path.resolve(dir), 'model.safetensors')]);
          assert.equal(ck.tensors.size, tensors.length);
          const item = dtype === 'F32' ? 4 : 2;
          let total = 0;
          for (const t of tensors) {
            const e = ck.get(t.name)!;
            assert.equal(e.dtype, dtype);
            assert.deepEqual(e.shape, t.shape);
            assert.equal(e.byteLength, t.data.length * item);
            assert.equal(e.file, ck.files[0]);
            total += e.byteLength;
            const want = expected(t);
            assert.deepEqual(ck.readAll(t.name, 'f32'), want.f32);
            assert.deepEqual(ck.readAll(t.name, 'f16'), want.f16);
          }
          assert.equal(ck.totalBytes(), total);
          assert.equal(ck.get('a.weight')!.dataStart % 8, 0, 'header padded to 8 bytes');
          assert.equal(ck.get('nope'), undefined);
        } finally {
          ck.close();
        }
      });
    }

    it('round trips a sharded checkpoint with an index', () => {
      const dir = tmp();
      const dtypes = ['F32', 'F16', 'BF16'] as const;
      const tensors = Array.from({ length: 12 }, (_, i) => randomTensor(`layers.${i}.w`, [8, 16], dtypes[i % 3], 100 + i));
      writeShardedSafetensors(dir, tensors, 1200);
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
      const shardNames = new Set(Object.values(index.weight_map));
      assert.ok(shardNames.size > 2, `expected several shards, got ${shardNames.size}`);
      assert.ok(shardNames.has(`model-00001-of-0000${shardNames.size}.safetensors`));
      const ck = SafetensorsCheckpoint.open(dir);
      try {
        assert.equal(ck.files.length, shardNames.size);
        assert.equal(ck.tensors.size, tensors.length);
        assert.equal(ck.totalBytes(), index.metadata.total_size);
        for (const t of tensors) {
          assert.equal(path.basename(ck.get(t.name)!.file), index.weight_map[t.name]);
          assert.deepEqual(ck.readAll(t.name, 'f32'), expected(t).f32);
          assert.deepEqual(ck.readAll(t.name, 'f16'), expected(t).f16);
        }
      } finally {
        ck.close();
      }
    });

    it('readRows streams a middle row range in whole-row chunks with right offsets', () => {
      const dir = tmp();
      const t = randomTensor('w', [10, 6], 'F32', 7);
      const u = randomTensor('u', [10, 6], 'BF16', 8);
      writeSafetensors(path.join(dir, 'model.safetensors'), [t, u]);
      const ck = SafetensorsCheckpoint.open(dir);
      try {
        for (const [tensor, target, item] of [[t, 'f32', 4], [u, 'f16', 2]] as const) {
          const limit = 2 * 6 * item + item * 3; // room for 2 rows and a bit
          const want = (target === 'f32' ? expected(tensor).f32 : expected(tensor).f16).slice(3 * 6, 8 * 6);
          const got = target === 'f32' ? new Float32Array(want.length) : new Uint16Array(want.length);
          const offsets: number[] = [];
          ck.readRows(tensor.name, target, 3, 5, (data, off) => {
            assert.ok(data.byteLength <= limit);
            assert.equal(data.length % 6, 0, 'whole rows');
            offsets.push(off);
            got.set(data, off);
          }, limit);
          assert.deepEqual(offsets, [0, 12, 24]);
          assert.deepEqual(got, want);
        }
      } finally {
        ck.close();
      }
    });

    it('readRows and readRawRows reuse one read buffer from call to call; a read inside another\'s callback gets its own', () => {
      const dir = tmp();
      const a = randomTensor('a', [8, 6], 'F16', 21);
      const b = randomTensor('b', [8, 6], 'BF16', 22);
      writeSafetensors(path.join(dir, 'model.safetensors'), [a, b]);
      const ck = SafetensorsCheckpoint.open(dir);
      try {
        const seen: ArrayBufferLike[] = [];
        for (let i = 0; i < 3; i++) ck.readRows('b', 'f16', 0, 8, (data) => seen.push(data.buffer));
        ck.readRawRows('a', 0, 8, (data) => seen.push(data.buffer));
        assert.equal(new Set(seen).size, 1, 'one buffer for every piece of every call');
        // nested: the outer piece (f16 widened to f32: two buffers) must survive an inner read
        const wantA = expected(a).f32;
        const wantB = expected(b).f16;
        ck.readRows('a', 'f32', 0, 8, (outer, off) => {
          const before = Float32Array.from(outer);
          assert.deepEqual(before, wantA.slice(off, off + outer.length));
          ck.readRows('b', 'f16', 0, 8, (inner, innerOff) => {
            assert.notEqual(inner.buffer, outer.buffer);
            assert.deepEqual(inner, wantB.slice(innerOff, innerOff + inner.length));
          });
          assert.deepEqual(outer, before, 'the outer piece is untouched by the inner read');
        }, 4 * 6 * 3);
        // after the nested reads the kept buffer is handed out again
        ck.readRows('b', 'f16', 0, 8, (data) => assert.equal(data.buffer, seen[0]));
      } finally {
        ck.close();
      }
    });

    it('readRows splits a row bigger than the chunk limit', () => {
      const dir = tmp();
      const t = randomTensor('w', [4, 100], 'F16', 9);
      writeSafetensors(path.join(dir, 'model.safetensors'), [t]);
      const ck = SafetensorsCheckpoint.open(dir);
      try {
        const want = expected(t).f32.slice(100, 300);
        const got = new Float32Array(200);
        const pieces: [number, number][] = [];
        ck.readRows('w', 'f32', 1, 2, (data, off) => {
          pieces.push([off, data.length]);
          got.set(data, off);
        }, 120);
        assert.deepEqual(pieces, [[0, 30], [30, 30], [60, 30], [90, 30], [120, 30], [150, 30], [180, 20]]);
        assert.deepEqual(got, want);
      } finally {
        ck.close();
      }
    });

    it('readRows treats a 1-D tensor as one element per row, and reads zero rows as nothing', () => {
      const dir = tmp();
      const t = randomTensor('b', [10], 'F32', 10);
      writeSafetensors(path.join(dir, 'model.safetensors'), [t]);
      const ck = SafetensorsCheckpoint.open(dir);
      try {
        const chunks: number[][] = [];
        ck.readRows('b', 'f32', 2, 5, (data, off) => chunks.push([off, ...data]), 8);
        assert.deepEqual(chunks, [[0, t.data[2], t.data[3]], [2, t.data[4], t.data[5]], [4, t.data[6]]]);
        let calls = 0;
        ck.readRows('b', 'f32', 10, 0, () => calls++);
        assert.equal(calls, 0);
      } finally {
        ck.close();
      }
    });

    it('readRows rejects a bad tensor name or row range with LscError', () => {
      const dir = tmp();
      writeSafetensors(path.join(dir, 'model.safetensors'), [randomTensor('w', [4, 3], 'F32', 11)]);
      const ck = SafetensorsCheckpoint.open(dir);
      const file = ck.files[0];
      try {
        expectLsc(() => ck.readRows('nope', 'f32', 0, 1, () => {}), /no tensor named 'nope'/, ck.dir, 'nope');
        expectLsc(() => ck.readAll('nope', 'f16'), /no tensor named/, ck.dir, 'nope');
        for (const [start, count] of [[3, 2], [5, 0], [-1, 1], [0.5, 1], [0, NaN]]) {
          expectLsc(() => ck.readRows('w', 'f32', start, count, () => {}), /outside the tensor's 4 rows/, file, 'w');
        }
      } finally {
        ck.close();
      }
    });

    it('readRows over a 64 MiB tensor never hands out a chunk above maxChunkBytes', () => {
      const dir = tmp();
      const rows = 4096, cols = 4096; // 16M F32 elements = 64 MiB on disk
      const data = new Float32Array(rows * cols);
      for (let i = 0; i < data.length; i++) data[i] = ((Math.imul(i, 2654435761) >>> 0) % 2001) / 100 - 10;
      writeSafetensors(path.join(dir, 'model.safetensors'), [{ name: 'big', shape: [rows, cols], data, dtype: 'F32' }]);
      const ck = SafetensorsCheckpoint.open(dir);
      try {
        const want = f32ToF16Bits(data);
        const limit = 1 << 20;
        for (const target of ['f16', 'f32'] as const) {
          let next = 0, chunks = 0;
          ck.readRows('big', target, 100, 3000, (chunk, off) => {
            assert.ok(chunk.byteLength <= limit, `chunk of ${chunk.byteLength} bytes`);
            assert.equal(off, next);
            const base = 100 * cols + off;
            // Spot-check the ends of every chunk against the source.
            for (const k of [0, chunk.length - 1]) {
              assert.equal(chunk[k], target === 'f16' ? want[base + k] : data[base + k]);
            }
            next += chunk.length;
            chunks++;
          }, limit);
          assert.equal(next, 3000 * cols);
          assert.ok(chunks >= (3000 * cols * (target === 'f16' ? 2 : 4)) / limit);
        }
      } finally {
        ck.close();
      }
    });
  });

  describe('validation', () => {
    /** Writes a raw model.safetensors into a fresh dir; returns [dir, file]. */
    function raw(header: unknown, data = new Uint8Array(16), lengthOverride?: number): [string, string] {
      const dir = tmp();
      const file = path.join(dir, 'model.safetensors');
      writeRawSafetensors(file, header, data, lengthOverride);
      return [dir, file];
    }
    const open = (dir: string) => () => SafetensorsCheckpoint.open(dir);
    const f32 = (shape: number[], offs: unknown) => ({ dtype: 'F32', shape, data_offsets: offs });

    it('no checkpoint in the directory names it and lists its contents', () => {
      const dir = tmp();
      expectLsc(open(dir), /no model\.safetensors or model\.safetensors\.index\.json .*empty/, dir);
      fs.writeFileSync(path.join(dir, 'config.json'), '{}');
      expectLsc(open(dir), /config\.json/, dir);
      const missing = path.join(dir, 'nothing-here');
      expectLsc(open(missing), /does not exist/, missing);
    });

    it('file shorter than 8 bytes', () => {
      const dir = tmp();
      const file = path.join(dir, 'model.safetensors');
      fs.writeFileSync(file, Buffer.from([1, 2, 3]));
      expectLsc(open(dir), /3 bytes, shorter than its 8-byte header length/, file);
    });

    it('header length past the end of the file', () => {
      const [dir, file] = raw({}, new Uint8Array(0), 1000);
      expectLsc(open(dir), /header length 1000 runs past the end/, file);
    });

    it('absurd header length', () => {
      const [dir, file] = raw({}, new Uint8Array(0), 2 ** 40);
      expectLsc(open(dir), /header length 1099511627776 is absurd/, file);
    });

    it('header not valid JSON', () => {
      const [dir, file] = raw('{"w": {"dtype": "F32",');
      expectLsc(open(dir), /header is not valid JSON/, file);
    });

    it('header not a JSON object', () => {
      const [dir, file] = raw([1, 2, 3]);
      expectLsc(open(dir), /header is not a JSON object/, file);
    });

    it('entry not an object', () => {
      const [dir, file] = raw({ w: 5 });
      expectLsc(open(dir), /header entry is not an object/, file, 'w');
    });

    for (const key of ['dtype', 'shape', 'data_offsets']) {
      it(`entry missing ${key}`, () => {
        const entry: Record<string, unknown> = f32([2], [0, 8]);
        delete entry[key];
        const [dir, file] = raw({ w: entry });
        expectLsc(open(dir), new RegExp(`missing ${key}`), file, 'w');
      });
    }

    for (const shape of [[2, -1], [2.5], '4', [null], [2 ** 60]]) {
      it(`shape ${JSON.stringify(shape)} is rejected`, () => {
        const [dir, file] = raw({ w: { dtype: 'F32', shape, data_offsets: [0, 8] } });
        expectLsc(open(dir), /shape .* is not an array of non-negative integers/, file, 'w');
      });
    }

    for (const offs of [[0], [8, 0], [0, '8'], [0, 8, 16], 'x', [-8, 0], [0, 7.5]]) {
      it(`data_offsets ${JSON.stringify(offs)} are rejected`, () => {
        const [dir, file] = raw({ w: f32([2], offs) });
        expectLsc(open(dir), /data_offsets .* must be two non-negative integers/, file, 'w');
      });
    }

    for (const dtype of ['I8', 'F64', 'BOOL', 'U8', 'F8_E4M3']) {
      it(`unsupported dtype ${dtype}`, () => {
        const [dir, file] = raw({ w: { dtype, shape: [2], data_offsets: [0, 2] } });
        const e = expectLsc(open(dir), new RegExp(`unsupported dtype "${dtype}"`), file, 'w');
        assert.match(e.hint!, /convert the tensor to F16, BF16 or F32/);
      });
    }

    for (const dtype of ['Q4_K', 'f32', 7]) {
      it(`unknown dtype ${JSON.stringify(dtype)}`, () => {
        const [dir, file] = raw({ w: { dtype, shape: [2], data_offsets: [0, 8] } });
        expectLsc(open(dir), /unknown dtype/, file, 'w');
      });
    }

    it('byte length does not match the shape', () => {
      const [dir, file] = raw({ w: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 8] } });
      expectLsc(open(dir), /holds 8 bytes but shape \[2,3\] of BF16 needs 12/, file, 'w');
    });

    it('offsets past the data region', () => {
      const [dir, file] = raw({ a: f32([2], [0, 8]), w: f32([4], [8, 24]) });
      expectLsc(open(dir), /\[8, 24\] run past the 16-byte data region/, file, 'w');
    });

    it('two tensors overlapping', () => {
      const [dir, file] = raw({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) });
      expectLsc(open(dir), /overlaps tensor 'a'/, file, 'b');
    });

    it('__metadata__ and empty tensors at a shared offset are accepted', () => {
      const [dir] = raw({ __metadata__: { format: 'pt' }, a: f32([0], [8, 8]), b: f32([0, 3], [8, 8]), c: f32([4], [0, 16]) });
      const ck = SafetensorsCheckpoint.open(dir);
      assert.deepEqual([...ck.tensors.keys()], ['a', 'b', 'c']);
      ck.close();
    });

    describe('index', () => {
      function sharded(): string {
        const dir = tmp();
        writeShardedSafetensors(dir, [randomTensor('a', [4], 'F32', 1), randomTensor('b', [4], 'F16', 2)], 8);
        return dir;
      }
      const indexOf = (dir: string) => path.join(dir, 'model.safetensors.index.json');
      const shard = (dir: string, i: number) => path.join(dir, `model-0000${i}-of-00002.safetensors`);

      it('invalid JSON', () => {
        const dir = sharded();
        fs.writeFileSync(indexOf(dir), '{"weight_map": {');
        expectLsc(open(dir), /index is not valid JSON/, indexOf(dir));
      });

      it('missing weight_map', () => {
        const dir = sharded();
        fs.writeFileSync(indexOf(dir), JSON.stringify({ metadata: {} }));
        expectLsc(open(dir), /no weight_map/, indexOf(dir));
      });

      it('weight_map value that is not a file name', () => {
        const dir = sharded();
        fs.writeFileSync(indexOf(dir), JSON.stringify({ weight_map: { a: '../evil.safetensors' } }));
        expectLsc(open(dir), /not a shard file name/, indexOf(dir), 'a');
      });

      it('a shard file missing', () => {
        const dir = sharded();
        fs.rmSync(shard(dir, 2));
        expectLsc(open(dir), /shard model-00002-of-00002\.safetensors listed in the index is missing/, shard(dir, 2), 'b');
      });

      it('a tensor listed in weight_map but not in its shard', () => {
        const dir = sharded();
        const index = JSON.parse(fs.readFileSync(indexOf(dir), 'utf8'));
        index.weight_map.ghost = path.basename(shard(dir, 1));
        fs.writeFileSync(indexOf(dir), JSON.stringify(index));
        expectLsc(open(dir), /header does not have it/, shard(dir, 1), 'ghost');
      });

      it('a tensor listed in the wrong shard', () => {
        const dir = sharded();
        const index = JSON.parse(fs.readFileSync(indexOf(dir), 'utf8'));
        index.weight_map.a = path.basename(shard(dir, 2));
        index.weight_map.c = path.basename(shard(dir, 1)); // keep shard 1 referenced
        fs.writeFileSync(indexOf(dir), JSON.stringify(index));
        expectLsc(open(dir), /header does not have it/, shard(dir, 2));
      });

      it('the same tensor in two shards', () => {
        const dir = sharded();
        writeSafetensors(shard(dir, 2), [randomTensor('b', [4], 'F16', 2), randomTensor('a', [4], 'F32', 1)]);
        expectLsc(open(dir), /stored in two shards \(also in model-00001-of-00002\.safetensors\)/, shard(dir, 2), 'a');
      });

      it('a corrupt shard names the shard', () => {
        const dir = sharded();
        fs.truncateSync(shard(dir, 2), 5);
        expectLsc(open(dir), /shorter than its 8-byte header/, shard(dir, 2));
      });
    });
  });

  it('fuzz: corrupted files give success or LscError, never another exception', () => {
    const dir = tmp();
    const file = path.join(dir, 'model.safetensors');
    writeSafetensors(file, [
      randomTensor('tok_embeddings.weight', [4, 3], 'F32', 1),
      randomTensor('norm', [3], 'F16', 2),
      randomTensor('out', [2, 2, 2], 'BF16', 3),
    ], { format: 'pt' });
    const good = fs.readFileSync(file);
    const headerEnd = 8 + Number(good.readBigUInt64LE(0));
    const r = rng(20240601);
    const int = (n: number) => Math.floor(r() * n);
    const jsonChars = '{}[]",:0123456789-.eE tFnul\\';
    let ok = 0, lsc = 0;
    for (let iter = 0; iter < 400; iter++) {
      let bytes = Buffer.from(good);
      const kind = iter % 6;
      const edits = 1 + int(3);
      for (let k = 0; k < edits; k++) {
        if (kind === 0) bytes[int(8)] ^= 1 << int(8); // header length bits
        else if (kind === 1) bytes[8 + int(headerEnd - 8)] ^= 1 << int(8); // header byte flips
        else if (kind === 2) bytes[8 + int(headerEnd - 8)] = jsonChars.charCodeAt(int(jsonChars.length)); // JSON-ish edits
        else if (kind === 3) bytes = bytes.subarray(0, int(bytes.length)); // truncation
        else if (kind === 4) bytes = Buffer.concat([bytes, Buffer.from(Array.from({ length: 1 + int(40) }, () => int(256)))]); // extension
        else bytes[int(bytes.length)] = int(256); // anywhere, data included
      }
      fs.writeFileSync(file, bytes);
      try {
        openAndReadAll(dir);
        ok++;
      } catch (e) {
        if (!(e instanceof LscError)) assert.fail(`iteration ${iter} (kind ${kind}) threw ${(e as Error)?.stack ?? e}`);
        assert.equal(e.where.file, file);
        lsc++;
      }
    }
    // Both outcomes must actually occur, or the fuzzer is not exercising anything.
    assert.ok(ok > 20 && lsc > 100, `ok ${ok}, LscError ${lsc}`);
  });
});
