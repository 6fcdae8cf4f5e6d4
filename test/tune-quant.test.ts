import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, runLsc } from './helpers/run-cli.js';

describe('lsc tune --weights: the quantized kernels are shapes of their own', function () {
  it('--weights q4 times q4_0 matmul shapes and records them under their format; a bad format is one line', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-tune-q4-'));
    try {
      const db = path.join(tmp, 'tuning.jsonl');
      // the graph alone (zero-filled weights): only the 128→128 residual shapes, one row count, a short budget
      const r = await runLsc(['tune', path.join(ROOT, 'graphs', 'tiny-code.json'), '--weights', 'q4', '--family', 'matmul', '--rows', '1',
        '--budget', '25', '--db', db, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const records = fs.readFileSync(db, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { key: string; family: string });
      assert.ok(records.length > 0, 'something was measured');
      for (const x of records) {
        assert.equal(x.family, 'matmul');
        assert.match(x.key, /"fmt":"q4_0"|"fmt":"q8_0"/, 'every matmul of a q4 plan reads a block format (the head q8_0)');
      }
      const bad = await runLsc(['tune', path.join(ROOT, 'graphs', 'tiny-code.json'), '--weights', 'q5', '--db', db]);
      assert.equal(bad.code, 2);
      assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
