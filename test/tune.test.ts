import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { appendRecords, configId, recordedFor, type TuningRecord } from '../runtime/tuning-db.js';
import { ROOT, assertUserError, runLsc } from './helpers/run-cli.js';

/**
 * `lsc tune` keeps its work (issue 13): every measurement is in the database as soon as it is
 * made, a killed run resumes where it stopped, --budget bounds the run. The real CLI, on the
 * bundled tiny-code model (the kernel shapes the other tests compile).
 */
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const MODEL = 'examples/models/tiny-code';

const dbLines = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()) : []);

interface Watched { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; wallMs: number; linesSeenWhileRunning: number }

/**
 * Runs `lsc tune ARGS` and polls the database while it runs; `killAt` lines: SIGTERM once the
 * database holds that many. SIGKILL after `timeoutMs`, so a hang fails rather than blocks.
 */
function watchTune(args: string[], db: string, o: { killAt?: number; timeoutMs: number }): Promise<Watched> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [MAIN, 'tune', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], timeout: o.timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    let seen = 0;
    let exited = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    const poll = setInterval(() => {
      if (exited) return;
      seen = Math.max(seen, dbLines(db).length);
      if (o.killAt !== undefined && seen >= o.killAt) child.kill('SIGTERM');
    }, 100);
    child.on('exit', () => { exited = true; });
    child.on('error', (e) => { clearInterval(poll); reject(e); });
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, stdout, stderr, wallMs: Date.now() - t0, linesSeenWhileRunning: seen });
    });
  });
}

function parseRecords(file: string): TuningRecord[] {
  return dbLines(file).map((l, i) => {
    try {
      return JSON.parse(l) as TuningRecord;
    } catch {
      throw new assert.AssertionError({ message: `line ${i + 1} of the database is not JSON: ${l}` });
    }
  });
}

describe('lsc tune keeps its work (issue 13)', function () {
  this.timeout(180_000);
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-tune-')); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it('--budget 30 ends within the budget (+ slack) and appends records while it runs, not only at the end', async () => {
    const db = path.join(dir, 'tuning.jsonl');
    const r = await watchTune([MODEL, '--budget', '30', '--db', db], db, { timeoutMs: 120_000 });
    console.log(`      (wall time ${(r.wallMs / 1000).toFixed(1)} s, ${r.linesSeenWhileRunning} records seen while running)`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.wallMs < 50_000, `--budget 30 took ${r.wallMs} ms`);
    assert.ok(r.linesSeenWhileRunning >= 1, 'the database had records before the run ended');
    const records = parseRecords(db);
    assert.ok(records.length >= 1);
    for (const rec of records) assert.ok(rec.key && rec.config && Array.isArray(rec.rows) && (rec.ms === null || rec.ms > 0), JSON.stringify(rec));
    assert.match(r.stdout, new RegExp(`\\(${records.length} records? appended\\)`));
    assert.match(r.stdout, /kernel shape +default ms +best ms +speedup +tried +skipped +untried +best config/);
    // the table's tried column adds up to the records written
    const tried = r.stdout.split('\n').filter((l) => /^(matmul|attention|argmax) /.test(l))
      .map((l) => Number(l.split(/ {2,}/)[4]));
    assert.equal(tried.reduce((a, b) => a + b, 0), records.length, r.stdout);
    assert.match(r.stderr, /lsc: tuning \d+ configurations of \d+ kernel shapes/);
    // not a TTY: a log line per kernel shape, so a log shows progress
    assert.equal(r.stderr.split('\n').filter((l) => /^lsc: done (matmul|attention|argmax) .* ms \(\d+ tried, \d+ skipped/.test(l)).length, tried.length, r.stderr);
    if (/left untried/.test(r.stdout)) assert.match(r.stdout, /budget spent: \d+ configurations? left untried; rerun to measure them/);
  });

  it('a run killed by SIGTERM keeps every finished record as whole JSON lines, and a rerun resumes with the rest', async () => {
    const db = path.join(dir, 'tuning.jsonl');
    const args = [MODEL, '--family', 'argmax', '--rows', '1,4', '--db', db];
    const killed = await watchTune(args, db, { killAt: 1, timeoutMs: 120_000 });
    assert.equal(killed.signal, 'SIGTERM', `killed mid-run (code ${killed.code}): ${killed.stderr}`);
    assert.match(killed.stderr, /interrupted; every finished measurement is in .*rerun the same command to resume/);
    const kept = parseRecords(db);
    assert.ok(kept.length >= 1 && kept.length < 6, `${kept.length} records kept of argmax's 6`);

    const rerun = await runLsc(['tune', ...args], {}, { timeoutMs: 120_000 });
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, new RegExp(`tuning ${6 - kept.length} configurations? of 1 kernel shape; ${kept.length} already in the database, skipped`));
    const all = parseRecords(db);
    assert.equal(all.length, 6, 'the rerun measured only the rest');
    assert.equal(new Set(all.map((x) => configId(x.config))).size, 6, 'no configuration measured twice');
    assert.match(rerun.stdout, new RegExp(`argmax 2048 .* ${6 - kept.length} +${kept.length} +0  threads=\\d+`));

    const again = await runLsc(['tune', ...args], {}, { timeoutMs: 120_000 });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /tuning 0 configurations of 1 kernel shape; 6 already in the database, skipped/);
    assert.equal(dbLines(db).length, 6);
  });

  it('a line torn by a kill mid-write does not spoil the next record appended', () => {
    const db = path.join(dir, 'tuning.jsonl');
    const rec = (threads: number): TuningRecord => ({ adapter: 'a', key: 'argmax:8', family: 'argmax', config: { threads }, ms: 1, rows: [1], date: 'd' });
    appendRecords([rec(1)], db);
    fs.appendFileSync(db, JSON.stringify(rec(2)).slice(0, 30)); // torn: no newline
    appendRecords([rec(4)], db);
    const got = [...recordedFor('a', db).values()].map((r) => r.config.threads).sort();
    assert.deepEqual(got, [1, 4]);
  });

  for (const [value, why] of [['0', 'zero'], ['-5', 'negative'], ['abc', 'not a number'], ['Infinity', 'infinite']]) {
    it(`--budget ${value} (${why}) is a one-line user error`, async () => {
      const r = await runLsc(['tune', MODEL, '--budget', value, '--db', path.join(dir, 'x.jsonl')], {}, { timeoutMs: 30_000 });
      assertUserError(r, /--budget <seconds>.*must be a number of seconds > 0/, `--budget ${value}`);
      assert.equal(fs.existsSync(path.join(dir, 'x.jsonl')), false);
    });
  }
});
