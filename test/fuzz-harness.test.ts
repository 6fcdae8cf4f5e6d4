/** The fuzz harness itself: each way a case can break the contract is caught and attributed. */
import assert from 'node:assert/strict';
import { fuzz, caseRng } from './helpers/fuzz.js';

describe('fuzz harness', function () {
  it('counts successes and one-line user errors, and attributes crashes, multi-line errors, hangs and heap exhaustion to their cases', async function () {
    const r = await fuzz({ target: new URL('./helpers/fuzz-targets/harness-selftest.js', import.meta.url), seed: 1, cases: 12, caseMs: 6000, heapMb: 32 });
    assert.equal(r.cases, 12);
    assert.equal(r.succeeded, 2);
    assert.equal(r.userErrors, 2);
    assert.equal(r.distinctUserErrors, 1, 'bad value 1 and bad value 7 fold to one message');
    const kinds = r.failures.map((f) => `${f.index}:${f.kind}`);
    assert.deepEqual(kinds, ['2:crash', '3:multiline', '4:timeout', '5:out-of-memory', '8:crash', '9:multiline', '10:timeout', '11:out-of-memory']);
    assert.match(r.failures[0].detail, /TypeError: cannot read properties/);
    assert.equal(r.failures[2].label, 'hang');
  });

  it('reruns a single case with the same PRNG stream', async function () {
    const a = caseRng(7, 3).next();
    assert.equal(caseRng(7, 3).next(), a);
    assert.notEqual(caseRng(7, 4).next(), a);
    const r = await fuzz({ target: new URL('./helpers/fuzz-targets/harness-selftest.js', import.meta.url), seed: 7, cases: 100, only: 6 });
    assert.deepEqual([r.cases, r.succeeded, r.failures.length], [1, 1, 0]);
  });
});
