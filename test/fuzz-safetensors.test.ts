/**
 * Seeded mutation fuzzing of safetensors headers and model.safetensors.index.json (target:
 * test/helpers/fuzz-targets/safetensors.ts): every case loads, or is refused with a one-line
 * LscError, within the harness's time and memory limits. A few hundred cases here (seconds);
 * LSC_FUZZ_CASES=N for a longer session, LSC_FUZZ_ONLY=i to rerun one case.
 *
 * Below it, one regression test per distinct failure the fuzzer found (the FIFO shard that hung
 * is tested through the CLI in hardening-loader.test.ts: in this process it would block).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import { readJsonFile } from '../runtime/model-dir.js';
import { LscTokenizer } from '../runtime/tokenizer.js';
import { writeRawSafetensors, writeShardedSafetensors } from './helpers/checkpoint-writer.js';
import { describeFailures, fuzz, fuzzCaseCount, fuzzOnly, summarize } from './helpers/fuzz.js';
import { fuzzRoot } from './helpers/fuzz-targets/safetensors.js';

const SEED = 8;

describe('safetensors fuzzer', function () {
  this.timeout(600_000);
  after(() => fs.rmSync(fuzzRoot(), { recursive: true, force: true }));

  it('mutated headers, lengths, bytes and indexes: each case loads or is a one-line LscError, in time and bounded memory', async () => {
    const cases = fuzzCaseCount(300);
    const r = await fuzz({ target: new URL('./helpers/fuzz-targets/safetensors.js', import.meta.url), seed: SEED, cases, only: fuzzOnly() });
    console.log(`      ${summarize('safetensors', r)}`);
    assert.equal(r.failures.length, 0, describeFailures(r, SEED));
    if (fuzzOnly() !== undefined) return;
    assert.equal(r.cases, cases);
    // the mutations reach both outcomes and many different checks
    assert.ok(r.succeeded > 0 && r.userErrors > cases / 2, `${r.succeeded} accepted, ${r.userErrors} refused`);
    assert.ok(r.distinctUserErrors >= 20, `only ${r.distinctUserErrors} distinct messages`);
  });
});

describe('safetensors fuzzer findings', () => {
  let tmp: string;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-fuzz-found-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** SafetensorsCheckpoint.open(dir) throws an LscError of one line matching msg; returns it. */
  const refused = (dir: string, msg: RegExp): LscError => {
    let error: unknown;
    try {
      SafetensorsCheckpoint.open(dir).close();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof LscError, `expected an LscError, got ${(error as Error)?.stack ?? 'success'}`);
    assert.match(error.message, msg);
    assert.doesNotMatch(error.format(), /\n/);
    return error;
  };
  const oneTensor = (dir: string, entry: unknown, data = new Uint8Array(8)): void => {
    fs.mkdirSync(dir, { recursive: true });
    writeRawSafetensors(path.join(dir, 'model.safetensors'), { w: entry }, data);
  };

  it('a shard that is a directory, or a symlink to one, is refused (was an EISDIR crash)', () => {
    const dir = path.join(tmp, 'dir-shard');
    writeShardedSafetensors(dir, [
      { name: 'a', shape: [4], data: new Float32Array(4), dtype: 'F32' },
      { name: 'b', shape: [4], data: new Float32Array(4), dtype: 'F32' },
    ], 16);
    const shards = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
    assert.equal(shards.length, 2);
    const second = path.join(dir, shards[1]);
    fs.rmSync(second);
    fs.mkdirSync(second);
    const e = refused(dir, /^checkpoint file is a directory, not a regular file$/);
    assert.equal(e.where.file, second);
    fs.rmSync(second, { recursive: true });
    fs.mkdirSync(path.join(tmp, 'elsewhere'));
    fs.symlinkSync(path.join(tmp, 'elsewhere'), second);
    refused(dir, /^checkpoint file is a symlink to a directory, not a regular file$/);
  });

  it("dtype names of Object.prototype ('toString', '__proto__', 'constructor') are unknown dtypes (were taken for dtypes: 'needs NaN' bytes)", () => {
    for (const dtype of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      const dir = path.join(tmp, `dtype-${dtype}`);
      oneTensor(dir, { dtype, shape: [4], data_offsets: [0, 8] });
      const e = refused(dir, new RegExp(`^unknown dtype "${dtype}"$`));
      assert.equal(e.where.tensor, 'w');
      assert.doesNotMatch(e.format(), /NaN/);
    }
  });

  it('values from the header are cut short in messages (a 10,000-character shape or nested offsets were echoed whole)', () => {
    const cases: [string, unknown][] = [
      ['shape', { dtype: 'F16', shape: ['a'.repeat(10_000)], data_offsets: [0, 8] }],
      ['data_offsets', { dtype: 'F16', shape: [4], data_offsets: [0, JSON.parse('['.repeat(500) + ']'.repeat(500))] }],
      ['dtype', { dtype: 'x'.repeat(10_000), shape: [4], data_offsets: [0, 8] }],
    ];
    for (const [what, entry] of cases) {
      const dir = path.join(tmp, `long-${what}`);
      oneTensor(dir, entry);
      const e = refused(dir, new RegExp(`${what === 'dtype' ? 'unknown dtype' : what} .{1,60}\\.\\.\\.`));
      assert.ok(e.format().length < 400, `${what}: a message of ${e.format().length} characters`);
    }
  });

  it('weight_map paths (../, absolute, sub/) are refused with a fix that says shards sit next to the index', () => {
    const dir = path.join(tmp, 'paths');
    writeShardedSafetensors(dir, [{ name: 'a', shape: [4], data: new Float32Array(4), dtype: 'F32' }], 1 << 20);
    const indexFile = path.join(dir, 'model.safetensors.index.json');
    const shard = fs.readdirSync(dir).find((f) => f.endsWith('.safetensors'))!;
    // a valid copy of the shard where each path points: following the path would load
    fs.copyFileSync(path.join(dir, shard), path.join(tmp, 'outside.safetensors'));
    fs.mkdirSync(path.join(dir, 'sub'));
    fs.copyFileSync(path.join(dir, shard), path.join(dir, 'sub', 'x.safetensors'));
    for (const to of ['../outside.safetensors', path.join(tmp, 'outside.safetensors'), 'sub/x.safetensors', `sub/../${shard}`, '/etc/passwd']) {
      fs.writeFileSync(indexFile, JSON.stringify({ weight_map: { a: to } }));
      const e = refused(dir, /^weight_map entry .* is not a shard file name$/);
      assert.equal(e.where.tensor, 'a');
      assert.match(e.hint ?? '', /next to the index \(no paths/);
    }
  });

  it('JSON with a syntax error next to a line break gives a one-line message (JSON.parse quoted the line break)', () => {
    const bad = '{\n  "a": [1,\n,2]\n}\n';
    const expectOneLine = (fn: () => unknown, msg: RegExp): void => {
      assert.throws(fn, (e: unknown) => {
        assert.ok(e instanceof LscError, String(e));
        assert.match(e.message, msg);
        assert.match(e.format(), /\\n,2\]\\n/, 'the line break shown as \\n');
        assert.doesNotMatch(e.format(), /[\r\n]/);
        return true;
      });
    };
    const dir = path.join(tmp, 'json-newline');
    fs.mkdirSync(dir);
    writeRawSafetensors(path.join(dir, 'model.safetensors'), bad, new Uint8Array(0));
    expectOneLine(() => SafetensorsCheckpoint.open(dir), /^header is not valid JSON/);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), bad);
    expectOneLine(() => SafetensorsCheckpoint.open(dir), /^index is not valid JSON/);
    fs.writeFileSync(path.join(dir, 'config.json'), bad);
    expectOneLine(() => readJsonFile(path.join(dir, 'config.json'), 'config.json'), /^config\.json is not valid JSON/);
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), bad);
    expectOneLine(() => LscTokenizer.load(dir), /^invalid JSON/);
  });

  it('a tensor name with a line break is escaped where the message names the tensor', () => {
    const dir = path.join(tmp, 'name-newline');
    fs.mkdirSync(dir);
    writeRawSafetensors(path.join(dir, 'model.safetensors'), { 'line\nbreak': { dtype: 'Q4', shape: [4], data_offsets: [0, 8] } }, new Uint8Array(8));
    const e = refused(dir, /^unknown dtype "Q4"$/);
    assert.equal(e.where.tensor, 'line\nbreak');
    assert.match(e.format(), /tensor 'line\\nbreak'/);
  });
});
