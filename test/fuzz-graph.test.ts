/**
 * Fuzzer of the graph reader (issue 8): mutated graphs/*.json through what `lsc compile GRAPH`
 * does (parse, validateGraph, compileGraph, the summary). Every case must compile or end in a
 * one-line LscError, within the per-case time limit and heap limit of test/helpers/fuzz.ts.
 * A few hundred cases here; LSC_FUZZ_CASES=N for a long session, LSC_FUZZ_ONLY=i to rerun one.
 * A handful of the refused cases also go through the real CLI: exit 2, one line on stderr.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeFailures, fuzz, fuzzCaseCount, fuzzOnly, summarize } from './helpers/fuzz.js';
import { runLsc } from './helpers/run-cli.js';
import * as graphTarget from './helpers/fuzz-targets/graph.js';
import { userErrorCases, writeCase } from './helpers/fuzz-targets/cli-cases.js';

const SEED = 8;

describe('fuzz: graph JSON (validateGraph + compileGraph)', function () {
  this.timeout(0);

  it('every mutated graph compiles or is a one-line LscError, in bounded time and memory', async function () {
    const cases = fuzzCaseCount(300);
    const r = await fuzz({ target: new URL('./helpers/fuzz-targets/graph.js', import.meta.url), seed: SEED, cases, only: fuzzOnly(), caseMs: 30_000 });
    console.log(`      ${summarize('graph fuzz', r)}`);
    assert.deepEqual(r.failures, [], describeFailures(r, SEED));
    assert.equal(r.cases, fuzzOnly() === undefined ? cases : 1);
    if (fuzzOnly() === undefined) {
      // the mutations reach past the schema: some graphs still compile, many distinct checks refuse the rest
      assert.ok(r.succeeded > 0, 'some mutated graphs compile');
      assert.ok(r.distinctUserErrors >= 20, `only ${r.distinctUserErrors} distinct user errors`);
    }
  });

  it('fuzzed graphs the compiler refuses make `lsc compile` exit 2 with that one line on stderr', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-fuzz-graph-'));
    try {
      const picked = await userErrorCases(graphTarget, SEED, 3);
      assert.equal(picked.length, 3);
      for (const c of picked) {
        const file = writeCase(dir, `case-${c.index}.json`, c.text);
        const run = await runLsc(['compile', file, '-o', path.join(dir, 'out')]);
        const lines = run.stderr.trimEnd().split('\n');
        assert.equal(run.code, 2, `case ${c.index} (${c.label}): exit ${run.code}\n${run.stderr}`);
        assert.equal(lines.length, 1, `case ${c.index}: stderr has ${lines.length} lines:\n${run.stderr}`);
        assert.ok(lines[0].includes(c.message), `case ${c.index}: stderr ${lines[0]} does not say ${c.message}`);
        assert.ok(lines[0].includes(file), `case ${c.index}: stderr names the file`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
