/**
 * Fuzzer of config.json (issue 8): mutated Hugging Face configs (graphs/configs/*.json and the
 * bundled model's) through what `lsc graph MODEL_DIR` / `lsc compile MODEL_DIR` do: parseLlamaConfig,
 * buildLlamaGraph, validateGraph, compileGraph, the summary. Every case must compile or end in a
 * one-line LscError within the time and heap limits of test/helpers/fuzz.ts.
 * LSC_FUZZ_CASES=N for a long session, LSC_FUZZ_ONLY=i to rerun one case.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeFailures, fuzz, fuzzCaseCount, fuzzOnly, summarize } from './helpers/fuzz.js';
import { runLsc } from './helpers/run-cli.js';
import * as configTarget from './helpers/fuzz-targets/config.js';
import { userErrorCases, writeCase } from './helpers/fuzz-targets/cli-cases.js';

const SEED = 9;

describe('fuzz: config.json (parseLlamaConfig + buildLlamaGraph + compileGraph)', function () {
  this.timeout(0);

  it('every mutated config.json compiles or is a one-line LscError, in bounded time and memory', async function () {
    const cases = fuzzCaseCount(200);
    const r = await fuzz({ target: new URL('./helpers/fuzz-targets/config.js', import.meta.url), seed: SEED, cases, only: fuzzOnly(), caseMs: 30_000 });
    console.log(`      ${summarize('config.json fuzz', r)}`);
    assert.deepEqual(r.failures, [], describeFailures(r, SEED));
    assert.equal(r.cases, fuzzOnly() === undefined ? cases : 1);
    if (fuzzOnly() === undefined) {
      assert.ok(r.succeeded > 0, 'some mutated configs compile');
      assert.ok(r.distinctUserErrors >= 10, `only ${r.distinctUserErrors} distinct user errors`);
    }
  });

  it('fuzzed configs the compiler refuses make `lsc compile MODEL_DIR` exit 2 with that one line on stderr', async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-fuzz-config-'));
    try {
      const picked = await userErrorCases(configTarget, SEED, 2);
      assert.equal(picked.length, 2);
      for (const c of picked) {
        const model = path.join(dir, `model-${c.index}`);
        writeCase(model, 'config.json', c.text);
        const run = await runLsc(['compile', model, '-o', path.join(dir, 'out')]);
        const lines = run.stderr.trimEnd().split('\n');
        assert.equal(run.code, 2, `case ${c.index} (${c.label}): exit ${run.code}\n${run.stderr}`);
        assert.equal(lines.length, 1, `case ${c.index}: stderr has ${lines.length} lines:\n${run.stderr}`);
        assert.ok(lines[0].includes(c.message), `case ${c.index}: stderr ${lines[0]} does not say ${c.message}`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
