import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Graph } from '../compiler/ir/graph.js';
import { compileGraph } from '../compiler/compile.js';
import { readArtifact, writeArtifact, SUMMARY_FILE } from '../compiler/artifact.js';
import { MANIFEST_FILE, manifestText, type Manifest } from '../compiler/artifact-manifest.js';
import { formatSummary } from '../compiler/summary.js';
import { LscError } from '../compiler/errors.js';
import { plural } from '../compiler/plural.js';
import { planLimits } from '../runtime/device.js';
import { loadTuning } from '../runtime/tuning-db.js';
import { testGpu } from './helpers/gpu.js';
import { ROOT, assertUserError, ourLines, runLsc, type CliRun } from './helpers/run-cli.js';
import { runInProcess } from './helpers/run-in-process.js';

/**
 * Issue 13's one CLI convention, through the real command line: self-speculative by default,
 * one rule (refuse) for flags that do not apply, the model as argument or --model, --json
 * everywhere, help defaults in commander's style, prompts from files and stdin, --ctx past the
 * trained length, plurals, and summary.txt in artifacts. Errors raised before any model loads and
 * --help run in process (the same cli/program.ts run() as dist/cli/main.js, without a node start
 * each); runs that decode, read stdin or open a device are child processes.
 */
const TINY = path.join(ROOT, 'examples/models/tiny-code');
const GRAPH = path.join(ROOT, 'graphs/tiny-code.json');

interface Reference { prompts: { text: string; tokens: number[]; greedy: number[] }[] }
const ref = JSON.parse(fs.readFileSync(path.join(TINY, 'reference.json'), 'utf8')) as Reference;
const p0 = ref.prompts[0];

/** Runs at most two at a time: the machine has two cores. */
async function inPairs(runs: (() => Promise<CliRun>)[]): Promise<CliRun[]> {
  const out: CliRun[] = [];
  for (let i = 0; i < runs.length; i += 2) out.push(...await Promise.all(runs.slice(i, i + 2).map((f) => f())));
  return out;
}

describe('CLI convention (issue 13)', function () {
  this.timeout(180_000);
  let tmp: string;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-conv-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it("generate with no strategy flag decodes self-speculatively at the graph's default exit and k; --strategy autoregressive decodes plainly", async () => {
    const args = ['--prompt', p0.text, '--max-new-tokens', '16'];
    const [positional, byFlag, plain] = await inPairs([
      () => runLsc(['generate', TINY, ...args, '--json']),
      () => runLsc(['generate', '--model', TINY, ...args]),
      () => runLsc(['generate', TINY, ...args, '--strategy', 'autoregressive', '--json']),
    ]);
    assert.equal(positional.code, 0, positional.stderr);
    const j = JSON.parse(positional.stdout);
    assert.deepEqual([j.stats.strategy, j.stats.exitLayer, j.stats.numSpeculations], ['self-speculative', 2, 3], 'tiny-code graph default E=2, k=3');
    assert.ok(j.stats.draftedTokens > 0 && j.stats.rounds > 0, 'drafts were made');
    assert.deepEqual(j.tokens, p0.greedy.slice(0, 16), 'greedy self-speculation gives the greedy tokens');

    assert.equal(byFlag.code, 0, byFlag.stderr);
    assert.equal(byFlag.stdout, j.text + '\n', 'the model as --model streams the same text');
    assert.match(ourLines(byFlag.stderr).join('\n'), /^lsc: 16 tokens \(max-tokens\) · .* · self-speculative E=2 k=3: acceptance [\d.]+% \(\d+\/\d+ drafts, \d+ rounds\)$/m);

    assert.equal(plain.code, 0, plain.stderr);
    const a = JSON.parse(plain.stdout);
    assert.deepEqual([a.stats.strategy, a.stats.exitLayer, a.stats.numSpeculations, a.stats.draftedTokens], ['autoregressive', null, null, 0]);
    assert.deepEqual(a.tokens, j.tokens);
  });

  it('flags that do not apply are refused: exit 2, one line naming the flag and the fix (sampling flags at temperature 0 included)', async () => {
    const g = ['generate', '--model', TINY, '--prompt', 'x'];
    const cases: [string[], RegExp, string][] = [
      [[...g, '--top-p', '0.9'], /--top-p applies only to sampling \(--temperature > 0\).*Fix: add --temperature/, '--top-p at temperature 0'],
      [[...g, '--top-k', '5'], /--top-k applies only to sampling/, '--top-k at temperature 0'],
      [[...g, '--seed', '3'], /--seed applies only to sampling/, '--seed at temperature 0'],
      [[...g, '--strategy', 'autoregressive', '--exit-layer', '2'], /--exit-layer applies only to early-exit or self-speculative/, '--exit-layer with autoregressive'],
      [[...g, '--strategy', 'early-exit', '--num-speculations', '2'], /--num-speculations applies only to self-speculative/, '--num-speculations with early-exit'],
      [[...g, '--strategy', 'autoregressive', '--rounds-per-submission', '2'], /--rounds-per-submission applies only to self-speculative/, '--rounds-per-submission with autoregressive'],
      [[...g, '--temperature', '0.8', '--rounds-per-submission', '2'], /--rounds-per-submission applies only to greedy/, '--rounds-per-submission when sampling'],
      [[...g, '--plan', tmp, '--ctx', '64'], /--ctx applies only to compiling/, '--ctx with --plan'],
      [[...g, '--force-ctx'], /--force-ctx applies only to a --ctx/, '--force-ctx without --ctx'],
      [['bench', TINY, '--top-p', '0.9'], /--top-p applies only to sampling/, 'bench --top-p at temperature 0'],
      [['bench', TINY, '--seed', '2'], /--seed applies only to sampling/, 'bench --seed at temperature 0'],
      [['bench', TINY, '--speculation-max-batch', '2'], /--speculation-max-batch applies only to --concurrency/, 'bench --speculation-max-batch without --concurrency'],
      [['bench', TINY, '--concurrency', '2', '--speculation-max-batch', '0'], /--speculation-max-batch/, 'a zero cap'],
      [['logits', TINY, '--tokens', '1', '--plan', tmp, '--ctx', '64'], /--ctx applies only to compiling/, 'logits --ctx with --plan'],
      [['inspect', GRAPH, '--json', '--format', 'dot'], /--json and --format dot ask for two formats/, 'inspect --json --format dot'],
      [['generate', TINY, '--model', GRAPH, '--prompt', 'x'], /the model is given twice/, 'model as argument and --model'],
      [['compile'], /no graph given.*as the argument or as --model/, 'compile without a graph'],
      [[...g, '--temperature', '1', '--seed', '4294967296'], /--seed.*'4294967296' is invalid\. It must be an integer in 0\.\.4294967295/, '--seed past 32 bits, before the model loads'],
    ];
    for (const [args, re, what] of cases) assertUserError(await runInProcess(args), re, what);
    // the rule is stated in --help
    const helps = await Promise.all(['generate', 'bench'].map((c) => runInProcess([c, '--help'])));
    for (const h of helps) assert.match(h.stdout.replace(/\s+/g, ' '), /A flag that does not apply to the request is refused \(exit 2\), never silently ignored: --top-p, --top-k and --seed need --temperature > 0/);
  });

  it('--ctx past the trained length (max_position_embeddings 1024) is refused unless --force-ctx', async () => {
    const out = path.join(tmp, 'long');
    // generate refuses after compiling the plan, before the weights upload: a real process (it opens a device)
    const gen = await runLsc(['generate', TINY, '--prompt', 'x', '--ctx', '2048']);
    const compile = await runInProcess(['compile', TINY, '--ctx', '2048', '-o', out]);
    const forced = await runInProcess(['compile', TINY, '--ctx', '2048', '--force-ctx', '-o', out, '--json']);
    const graph = await runInProcess(['graph', TINY, '--ctx', '4096']);
    const inspect = await runInProcess(['inspect', GRAPH, '--ctx', '2048']);
    const within = await runInProcess(['graph', '--model', TINY, '--ctx', '1024']);
    const msg = /--ctx 2048 exceeds the 1024 positions this model was trained for \(config\.json max_position_embeddings\).*Fix: pass --ctx 1024 or less, or add --force-ctx/;
    assertUserError(gen, msg, 'generate --ctx 2048');
    assertUserError(compile, msg, 'compile --ctx 2048');
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(JSON.parse(forced.stdout).dims.ctx, 2048);
    assertUserError(graph, /--ctx 4096 exceeds the 1024 positions/, 'graph --ctx 4096');
    assertUserError(inspect, /--ctx 2048 exceeds the 1024 positions the graph's ctx holds/, 'inspect of a graph file --ctx 2048');
    assert.equal(within.code, 0, within.stderr);
    assert.equal(JSON.parse(within.stdout).dims.ctx.max, 1024);
  });

  it('every command takes --json, and a model as its argument or --model; help defaults read "(default: …)"', async () => {
    const cmds = ['compile', 'inspect', 'graph', 'generate', 'logits', 'bench', 'tune', 'download', 'chat', 'web', 'serve'];
    const helps = await Promise.all(cmds.map((c) => runInProcess([c, '--help'])));
    helps.forEach((h, i) => {
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout, /--json\b/, `${cmds[i]} --json`);
      if (cmds[i] !== 'download') assert.match(h.stdout, /--model <path>/, `${cmds[i]} --model`);
      assert.doesNotMatch(h.stdout, /\(default [^:]/, `${cmds[i]}: a default not in commander's "(default: …)" style`);
    });
    const [asFormat, asJson, asFlag] = await Promise.all([
      runInProcess(['inspect', GRAPH, '--format', 'json']), runInProcess(['inspect', GRAPH, '--json']), runInProcess(['inspect', '--model', GRAPH, '--json']),
    ]);
    assert.equal(asJson.code, 0, asJson.stderr);
    assert.equal(JSON.parse(asJson.stdout).plan.format, 'lsc.plan/1');
    assert.equal(asJson.stdout, asFormat.stdout);
    assert.equal(asFlag.stdout, asFormat.stdout);
  });

  it('plurals: "1 token", "1 buffer", never "1 tokens"', async () => {
    assert.deepEqual([plural(1, 'token'), plural(2, 'token'), plural(0, 'token'), plural(1, 'dispatch', 'dispatches')], ['1 token', '2 tokens', '0 tokens', '1 dispatch']);
    const gen = await runLsc(['generate', TINY, '--prompt', 'def', '--max-new-tokens', '1']);
    const inspect = await runInProcess(['inspect', TINY]);
    assert.equal(gen.code, 0, gen.stderr);
    assert.match(ourLines(gen.stderr).join('\n'), /^lsc: 1 token \(max-tokens\) · prefill 2 tokens in .* \(0\/0 drafts, 0 rounds\)$/m);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, /constant: 1 buffer, /);
    assert.doesNotMatch(inspect.stdout + gen.stderr, /\b1 (tokens|buffers|dispatches|kernels|layers|drafts|rounds|files)\b/);
  });

  describe('prompts from a file or stdin', () => {
    it('--prompt-file F, --prompt - and --prompt-file - give the prompt tokens and greedy tokens of the reference prompt', async () => {
      const file = path.join(tmp, 'prompt.py');
      fs.writeFileSync(file, p0.text);
      const args = ['--max-new-tokens', '4', '--json'];
      const runs = await inPairs([
        () => runLsc(['generate', TINY, '--prompt-file', file, ...args]),
        () => runLsc(['generate', TINY, '--prompt', '-', ...args], {}, { input: p0.text }),
        () => runLsc(['generate', TINY, '--prompt-file', '-', ...args], {}, { input: p0.text }),
      ]);
      for (const r of runs) {
        assert.equal(r.code, 0, r.stderr);
        const j = JSON.parse(r.stdout);
        assert.deepEqual([j.promptTokens, j.tokens], [p0.tokens, p0.greedy.slice(0, 4)]);
      }
    });

    it('both given, none given, an unreadable file, an empty prompt: one-line errors before the model loads', async () => {
      const empty = path.join(tmp, 'empty.txt');
      fs.writeFileSync(empty, '');
      const g = ['generate', TINY];
      const cases: [string[], string | undefined, RegExp, string][] = [
        [[...g, '--prompt', 'x', '--prompt-file', empty], undefined, /both --prompt and --prompt-file are given.*Fix: pass one of them/, 'both'],
        [g, undefined, /no prompt given.*--prompt - \(read stdin\)/, 'none'],
        [[...g, '--prompt-file', path.join(tmp, 'missing.txt')], undefined, /--prompt-file: cannot read .*missing\.txt: no such file/, 'missing file'],
        [[...g, '--prompt-file', tmp], undefined, /--prompt-file: cannot read .*EISDIR/, 'a directory'],
        [[...g, '--prompt-file', empty], undefined, /the prompt of --prompt-file .*empty\.txt is empty/, 'empty file'],
        [[...g, '--prompt', '-'], '', /the prompt of --prompt - \(stdin\) is empty/, 'empty stdin'],
        [[...g, '--prompt', ''], undefined, /the prompt of --prompt is empty/, 'empty --prompt'],
        [['bench', TINY, '--prompts', '-'], 'not json', /cannot read prompts/, 'bench --prompts - with bad JSON'],
      ];
      // stdin cases need a process of their own
      for (const [args, input, re, what] of cases) assertUserError(input === undefined ? await runInProcess(args) : await runLsc(args, {}, { input }), re, what);
    });
  });

  it('bench takes --plan, --top-p, --top-k and --prompts - (stdin)', async () => {
    // the artifact is compiled as loading would compile it here, so its kernels are the cached ones
    const gpu = await testGpu();
    const graph = JSON.parse(fs.readFileSync(GRAPH, 'utf8')) as Graph;
    const dir = path.join(tmp, 'bench-plan');
    writeArtifact(dir, compileGraph(graph, { file: GRAPH, limits: planLimits(gpu), tuning: loadTuning(gpu), target: gpu.isCpu ? 'cpu' : 'gpu' }), graph);
    const r = await runLsc(['bench', TINY, '--plan', dir, '--prompts', '-', '--max-new-tokens', '6', '--repeat', '1',
      '--temperature', '0.8', '--top-p', '0.9', '--top-k', '20', '--seed', '5', '--json'], {}, { input: JSON.stringify([p0.text]) });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual([j.prompts, j.temperature, j.topP, j.topK], [1, 0.8, 0.9, 20]);
    assert.deepEqual([j.selfSpeculative.exitLayer, j.selfSpeculative.numSpeculations], [2, 3], "the graph's default pair");
    assert.ok(j.autoregressive.tokensPerSecond > 0 && j.selfSpeculative.tokensPerSecond > 0);
  });

  describe('summary.txt in the artifact', () => {
    it('compile saves the summary it prints as summary.txt, listed in manifest.json', async () => {
      const dir = path.join(tmp, 'art');
      const r = await runInProcess(['compile', GRAPH, '-o', dir]);
      assert.equal(r.code, 0, r.stderr);
      const summary = fs.readFileSync(path.join(dir, SUMMARY_FILE), 'utf8');
      assert.match(r.stdout, /^wrote .*: plan\.json, graph\.json, \d+ kernels \(kernels\/\*\.wgsl\), summary\.txt \(this summary\), manifest\.json\n\n/);
      assert.equal(r.stdout.slice(r.stdout.indexOf('\n\n') + 2), summary, 'the file is what compile printed');
      assert.match(summary, /^plan for 'tiny-code'/);
      const m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
      assert.ok(m.files.some((f) => f.path === SUMMARY_FILE), 'listed in the manifest');
      assert.equal(readArtifact(dir).plan.graph.name, 'tiny-code');
    });

    it('loading checks summary.txt like the kernels: an edited one (manifest rewritten to match) or a missing one is refused', () => {
      const dir = path.join(tmp, 'art');
      const rewriteManifest = (drop?: string): void => {
        const m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
        const files = m.files.filter((f) => f.path !== drop);
        fs.writeFileSync(path.join(dir, MANIFEST_FILE), manifestText(new Map(files.map((f) => [f.path, fs.readFileSync(path.join(dir, f.path))]))));
      };
      const file = path.join(dir, SUMMARY_FILE);
      const good = fs.readFileSync(file, 'utf8');
      fs.writeFileSync(file, good.replace('plan for', 'plan of'));
      rewriteManifest();
      assert.throws(() => readArtifact(dir), (e: unknown) => e instanceof LscError && /summary\.txt is not the summary lsc writes for this plan/.test(e.message));
      fs.writeFileSync(file, good);
      rewriteManifest();
      assert.equal(fs.readFileSync(file, 'utf8'), formatSummary(readArtifact(dir).plan));
      fs.rmSync(file);
      rewriteManifest(SUMMARY_FILE);
      assert.throws(() => readArtifact(dir), (e: unknown) => e instanceof LscError && /manifest\.json does not list summary\.txt/.test(e.message));
    });
  });
});
