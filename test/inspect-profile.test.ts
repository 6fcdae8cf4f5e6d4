import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileGraph } from '../compiler/compile.js';
import { isLscError } from '../compiler/errors.js';
import type { Graph } from '../compiler/ir/graph.js';
import { readKernelProfile } from '../cli/inspect-profile.js';
import type { KernelProfile } from '../runtime/kernel-profile.js';
import { assertUserError, ourLines, ROOT, runLsc } from './helpers/run-cli.js';

/**
 * The timing overlay's input: `lsc bench --profile --json` times every dispatch (profile.kernels)
 * and `lsc inspect --format html --profile FILE` reads it; a bad or foreign file is one line.
 */
describe('lsc bench --profile → lsc inspect --profile (runtime/kernel-profile.ts, cli/inspect-profile.ts)', function () {
  this.timeout(120_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-profile-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const model = path.join(ROOT, 'examples', 'models', 'tiny-code');
  const graphFile = path.join(ROOT, 'graphs', 'tiny-code.json');
  const graph = JSON.parse(fs.readFileSync(graphFile, 'utf8')) as Graph;
  const plan = compileGraph(graph, { file: graphFile }).plan;
  const write = (name: string, x: unknown): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, typeof x === 'string' ? x : JSON.stringify(x));
    return f;
  };
  /** A well-formed profile of this plan's decode with the given times. */
  const synthetic = (ms: (i: number) => number): KernelProfile => ({
    plan: { graph: plan.graph.name, hash: plan.graph.hash }, position: 512,
    entries: [{ entry: 'decode', rows: 1, dispatches: plan.entries.find((e) => e.name === 'decode')!.stages[0].dispatches.map((d, i) => ({ kernel: d.kernel, nodes: d.nodes, ms: ms(i) })) }],
  });
  const rejects = (x: unknown, mentions: RegExp, pointer: string): void => {
    const f = write('bad.json', x);
    assert.throws(() => readKernelProfile(f, plan), (e: unknown) => {
      assert.ok(isLscError(e), String(e));
      assert.match(e.message, mentions);
      assert.equal(e.where.pointer, pointer);
      assert.match(e.format(), /Fix: /);
      return true;
    });
  };

  it('bench --profile --json times every dispatch of decode, draft@E and verify@E, and inspect --profile colours the page with them', async () => {
    const prompts = write('prompts.json', ['def add(a, b):']);
    const bench = await runLsc(['bench', '--model', model, '--prompts', prompts, '--max-new-tokens', '4', '--repeat', '1', '--profile', '--json']);
    assert.equal(bench.code, 0, bench.stderr);
    const report = JSON.parse(bench.stdout) as { profile: { kernels: KernelProfile } };
    const k = report.profile.kernels;
    assert.equal(k.plan.hash, plan.graph.hash);
    assert.equal(k.position, 512);
    const E = report.profile.kernels.entries[1].entry;
    assert.deepEqual(k.entries.map((e) => e.entry), ['decode', E, E.replace('draft', 'verify')]);
    for (const e of k.entries) {
      const planned = plan.entries.find((x) => x.name === e.entry)!.stages.flatMap((s) => s.dispatches.map((d) => d.nodes.join(' ')));
      assert.deepEqual(e.dispatches.map((d) => d.nodes.join(' ')), planned, `${e.entry}: every dispatch, in plan order`);
      for (const d of e.dispatches) assert.ok(Number.isFinite(d.ms) && d.ms >= 0, `${e.entry} ${d.kernel}: ${d.ms}`);
      assert.ok(e.dispatches.reduce((a, d) => a + d.ms, 0) > 0, `${e.entry}: some GPU time`);
    }
    const file = write('p.json', bench.stdout);
    const html = await runLsc(['inspect', model, '--format', 'html', '--profile', file]);
    assert.equal(html.code, 0, html.stderr);
    assert.deepEqual(ourLines(html.stderr), []);
    assert.match(html.stdout, /<h2>Measured GPU time<\/h2>/);
    const data = JSON.parse(/<script type="application\/json" id="lsc-data">(.*?)<\/script>/s.exec(html.stdout)![1]) as
      { profile: { entries: { entry: string; totalMs: number; kernels: Record<string, { count: number; ms: number }> }[] } };
    const decode = data.profile.entries[0];
    assert.equal(decode.entry, 'decode');
    // the page's times are the measured ones, summed per kernel of the inspected plan
    const measured = k.entries[0].dispatches.reduce((a, d) => a + d.ms, 0);
    assert.ok(Math.abs(decode.totalMs - measured) < 1e-9);
    assert.equal(Object.values(decode.kernels).reduce((a, x) => a + x.count, 0), k.entries[0].dispatches.length);
  });

  it('a profile of another plan is refused in one line naming both plans (exit 2)', async () => {
    const other = synthetic(() => 0.1);
    other.plan = { graph: 'llama2-7b', hash: '186e2949c51df290' };
    const r = await runLsc(['inspect', graphFile, '--format', 'html', '--profile', write('other.json', { profile: { kernels: other } })]);
    assertUserError(r, /measured on plan 186e2949c51df290 \(graph llama2-7b\), not on this plan 606cf17ac3cc7e93 .*#\/profile\/kernels\/plan\/hash.*Fix: /, 'foreign profile');
  });

  it('--profile without --format html is one line (exit 2)', async () => {
    assertUserError(await runLsc(['inspect', graphFile, '--profile', write('ok.json', synthetic(() => 1))]), /--profile colours the HTML view\. Fix: add --format html/, 'text format');
  });

  it('malformed profiles name the field: not JSON, no profile.kernels, bad entry, unknown node, bad ms, bad position', () => {
    assert.throws(() => readKernelProfile(write('broken.json', '{"profile":'), plan), /profile file is not valid JSON/);
    rejects({ model: 'x', profile: { autoregressive: {} } }, /no per-kernel times/, '/profile/kernels');
    rejects(['not', 'a', 'report'], /not an lsc bench --profile --json report/, '');
    const p = synthetic(() => 1);
    rejects({ ...p, position: -1 }, /position must be a non-negative integer/, '/position');
    rejects({ ...p, entries: [{ ...p.entries[0], entry: 'decode@9' }] }, /entry "decode@9" is not an entry point/, '/entries/0/entry');
    const d = p.entries[0].dispatches;
    rejects({ ...p, entries: [{ ...p.entries[0], dispatches: [{ ...d[0], nodes: ['L99.h'] }] }] }, /node "L99.h" is not computed by decode/, '/entries/0/dispatches/0/nodes/0');
    rejects({ ...p, entries: [{ ...p.entries[0], dispatches: [d[0], { ...d[1], ms: 'fast' }] }] }, /ms must be a non-negative number/, '/entries/0/dispatches/1/ms');
  });

  it('times are summed per kernel of the inspected plan, through the nodes of each measured dispatch', () => {
    const p = synthetic((i) => i + 1);
    p.entries[0].dispatches.forEach((d) => { d.kernel = `tuned_${d.kernel}`; }); // bench's kernels may be tuned for its device
    const t = readKernelProfile(write('ok.json', p), plan);
    const decode = plan.entries.find((e) => e.name === 'decode')!.stages[0].dispatches;
    const want = new Map<string, { count: number; ms: number }>();
    decode.forEach((d, i) => {
      const x = want.get(d.kernel) ?? { count: 0, ms: 0 };
      want.set(d.kernel, { count: x.count + 1, ms: x.ms + i + 1 });
    });
    assert.deepEqual(t.entries[0].byKernel, want);
    assert.equal(t.entries[0].totalMs, (decode.length * (decode.length + 1)) / 2);
  });
});
