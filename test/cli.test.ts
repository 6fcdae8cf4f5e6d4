import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommanderError } from 'commander';
import { LscError } from '../compiler/errors.js';
import { ROOT as root, assertUserError, ourLines, runLsc, type CliRun as Run } from './helpers/run-cli.js';
import { report } from '../cli/report.js';

/** End-to-end tests of dist/cli/main.js, run as a child process the way users run it. */
const tiny = path.join(root, 'examples/models/tiny-code');

const lsc = (...args: string[]): Promise<Run> => runLsc(args);

interface Reference {
  prompts: { text: string; tokens: number[]; greedy: number[]; logitsAllPositions: number[][] }[];
}

describe('lsc command line', function () {
  this.timeout(120_000);
  let tmp: string;
  const ref = JSON.parse(fs.readFileSync(path.join(tiny, 'reference.json'), 'utf8')) as Reference;
  const p0 = ref.prompts[0];

  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-cli-')); });
  after(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

  it('prints --help for every command and exits 0', async () => {
    const runs = await Promise.all([[], ['compile'], ['inspect'], ['graph'], ['generate'], ['logits']]
      .map((cmd) => lsc(...cmd, '--help')));
    for (const r of runs) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: lsc/);
    }
    assert.match(runs[4].stdout, /--num-speculations/);
  });

  it('compiles a Llama-2-7B graph: 12.55 GiB of f16 weights, 2 GiB of KV at ctx 4096', async () => {
    const dir = path.join(tmp, 'llama2-7b');
    fs.mkdirSync(dir);
    const c = { d: 4096, ffn: 11008, L: 32, heads: 32, vocab: 32000, ctx: 4096 };
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({
      model_type: 'llama', hidden_size: c.d, intermediate_size: c.ffn, num_hidden_layers: c.L,
      num_attention_heads: c.heads, num_key_value_heads: c.heads, vocab_size: c.vocab, rms_norm_eps: 1e-5,
      max_position_embeddings: 4096, rope_theta: 10000, bos_token_id: 1, eos_token_id: 2,
    }));
    const graphFile = path.join(tmp, 'llama2-7b.json');
    const g = await lsc('graph', dir, '-o', graphFile);
    assert.equal(g.code, 0, g.stderr);
    const text = fs.readFileSync(graphFile, 'utf8');
    assert.ok(text.endsWith('}\n') && text.startsWith('{\n  "format": "lsc.graph/1"'), 'JSON with 2-space indent and a newline');

    const out = path.join(tmp, 'out-7b');
    const r = await lsc('compile', graphFile, '-o', out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    // f16 matrices, f32 norm vectors
    const perLayer = (4 * c.d * c.d + 3 * c.d * c.ffn) * 2 + 2 * c.d * 4;
    const weights = c.L * perLayer + 2 * c.vocab * c.d * 2 + c.d * 4;
    assert.equal(s.bytes.weights, weights);
    assert.ok(Math.abs(weights / 2 ** 30 - 12.55) < 0.01);
    assert.equal(s.bytes.kvCache, c.L * 2 * c.ctx * c.d * 2);
    assert.equal(s.bytes.kvCache, 2 * 2 ** 30);
    assert.equal(s.bytes.total, s.bytes.weights + s.bytes.kvCache + s.bytes.activations);
    const sp = s.selfSpeculation;
    assert.equal(sp.sharesBuffersWithDecode, true);
    assert.equal(sp.extraAllocatedBytes, 0);
    assert.equal(sp.exitQueryCache.bytes, (sp.kMax + 1) * c.d * 4);
    assert.equal(sp.verifyLogits.bytes, (sp.kMax + 1) * c.vocab * 4);
    assert.ok(s.entries.some((e: { name: string }) => e.name === `verify@${sp.defaultExitLayer}`));

    assert.ok(fs.existsSync(path.join(out, 'plan.json')) && fs.existsSync(path.join(out, 'graph.json')));
    const wgsl = fs.readdirSync(path.join(out, 'kernels')).filter((f) => f.endsWith('.wgsl'));
    assert.equal(wgsl.length, s.kernels.length);
    assert.ok(wgsl.length > 0);
    assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.startsWith('.')), [], 'no temp dirs left behind');

    const i = await lsc('inspect', out);
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, /L1\.\.L31: same 5 dispatches/);
    assert.ok(i.stdout.split('\n').length < 400, 'inspect of a 32-layer plan stays readable');
  });

  it('the built command is executable, so `npx lsc` runs it', () => {
    const mode = fs.statSync(path.join(root, 'dist', 'cli', 'main.js')).mode;
    assert.ok(mode & 0o100, `dist/cli/main.js has mode ${(mode & 0o777).toString(8)}`);
    assert.match(fs.readFileSync(path.join(root, 'dist', 'cli', 'main.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });

  it('compile --sequences N: an artifact with N KV slots per layer, which loading runs as compiled', async () => {
    const out = path.join(tmp, 'out-slots');
    const r = await lsc('compile', tiny, '-o', out, '--sequences', '4', '--json');
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(fs.readFileSync(path.join(out, 'plan.json'), 'utf8'));
    assert.equal(plan.rows.sequences, 4);
    const kv = plan.buffers.filter((b: { kind: string }) => b.kind === 'kv');
    assert.ok(kv.length > 0 && kv.every((b: { bytes: number }) => b.bytes === 4 * 2 * 1024 * 128 * 2), 'four slots of [2, ctx 1024, kvDim 128] f16');
    const run = await lsc('generate', tiny, '--plan', out, '--prompt', 'def f(', '--max-new-tokens', '4', '--json');
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).stats.gpuBytes.sequences, 4);
    assertUserError(await lsc('compile', tiny, '-o', out, '--sequences', '0'), /--sequences/, 'compile --sequences 0');
  });

  it('compiles and inspects the tiny model, and replaces an existing artifact', async () => {
    const graphFile = path.join(tmp, 'tiny.json');
    const out = path.join(tmp, 'out-tiny');
    assert.equal((await lsc('graph', tiny, '-o', graphFile)).code, 0);
    for (let n = 0; n < 2; n++) {
      const r = await lsc('compile', graphFile, '-o', out);
      assert.equal(r.code, 0, r.stderr);
      for (const want of [/Kernels: \d+ distinct/, /prefill/, /decode/, /draft@2/, /verify@2/, /KV cache\s+4\.00 MiB/,
        /rms_norm → matmul prologue/, /share the weight and KV-cache buffers/, /exit query cache/]) {
        assert.match(r.stdout, want);
      }
    }
    const [fromDir, fromModel] = await Promise.all([lsc('inspect', out, '--format', 'json'), lsc('inspect', tiny)]);
    assert.equal(fromDir.code, 0, fromDir.stderr);
    const j = JSON.parse(fromDir.stdout);
    assert.equal(j.graph.name, 'tiny-code');
    assert.equal(j.plan.format, 'lsc.plan/1');
    assert.equal(fromModel.code, 0, fromModel.stderr);
    assert.match(fromModel.stdout, /block decoder/);
    assert.match(fromModel.stdout, /gate\s+= matmul\(h2, @w_gate\)\s+\[T, 352\] f32/);
  });

  it('logits --tokens matches the reference at every position', async () => {
    const r = await lsc('logits', '--model', tiny, '--tokens', p0.tokens.join(','), '--all-positions', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { tokens: number[]; logits: number[][] };
    assert.deepEqual(j.tokens, p0.tokens);
    assert.equal(j.logits.length, p0.tokens.length);
    let worst = 0;
    j.logits.forEach((row, pos) => row.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - p0.logitsAllPositions[pos][i])); }));
    assert.ok(worst <= 0.05, `max |Δlogit| ${worst}`);
  });

  it('generate: greedy tokens match the reference; streamed text equals the --json text', async () => {
    const args = ['generate', '--model', tiny, '--prompt', p0.text, '--max-new-tokens', '48', '--temperature', '0'];
    const [json, streamed, spec] = await Promise.all([
      lsc(...args, '--json'), lsc(...args),
      lsc(...args, '--json', '--strategy', 'self-speculative', '--exit-layer', '4', '--num-speculations', '3'),
    ]);
    assert.equal(json.code, 0, json.stderr);
    const j = JSON.parse(json.stdout);
    assert.deepEqual(j.tokens, p0.greedy);
    assert.deepEqual(j.promptTokens, p0.tokens);
    for (const k of ['strategy', 'exitLayer', 'numSpeculations', 'prefillMs', 'decodeMs', 'tokensPerSecond',
      'acceptanceRate', 'draftedTokens', 'acceptedTokens', 'gpuBytes']) assert.ok(k in j.stats, k);
    assert.deepEqual(Object.keys(j.stats.gpuBytes).sort(),
      ['activations', 'activeSequences', 'kvCache', 'kvInUse', 'kvPerSequence', 'sequences', 'total', 'weights']);
    // taken as the generation ends, while it still holds its KV slot
    assert.equal(j.stats.gpuBytes.activeSequences, 1);
    assert.equal(j.stats.gpuBytes.kvInUse, j.stats.gpuBytes.kvPerSequence);
    assert.equal(j.stats.gpuBytes.kvCache, j.stats.gpuBytes.sequences * j.stats.gpuBytes.kvPerSequence);

    assert.equal(streamed.code, 0, streamed.stderr);
    assert.equal(streamed.stdout, j.text + '\n');
    assert.match(ourLines(streamed.stderr).join('\n'), /48 tokens.*tok\/s/);

    assert.equal(spec.code, 0, spec.stderr);
    const s = JSON.parse(spec.stdout);
    assert.deepEqual(s.tokens, p0.greedy, 'greedy self-speculation gives the autoregressive tokens');
    assert.equal(s.stats.strategy, 'self-speculative');
    assert.equal(s.stats.exitLayer, 4);
    assert.equal(s.stats.numSpeculations, 3);
    assert.ok(s.stats.acceptanceRate > 0 && s.stats.acceptanceRate <= 1);
  });

  it('generate --compare: interleaved runs of both strategies, the same tokens, and the figures it reports', async () => {
    const r = await lsc('generate', '--model', tiny, '--prompt', p0.text, '--max-new-tokens', '32', '--strategy', 'self-speculative',
      '--exit-layer', '2', '--num-speculations', '2', '--compare', '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.tokens, p0.greedy.slice(0, 32));
    const c = j.comparison;
    assert.equal(c.pairs, 5);
    assert.equal(c.identical, true);
    assert.ok(c.tokensPerSecond > 0 && c.autoregressiveTokensPerSecond > 0 && c.speedup > 0);
    assert.match(c.line, /^self-speculative [\d.]+ tok\/s vs autoregressive [\d.]+ tok\/s \(medians of 5 interleaved runs\): speedup ×[\d.]+, acceptance [\d.]+%; output identical to autoregressive$/);
  });

  it('generate --strategy adaptive reports the E and k it used; bench --adaptive runs it against the same autoregressive runs', async () => {
    const args = ['generate', '--model', tiny, '--prompt', p0.text, '--max-new-tokens', '32', '--strategy', 'adaptive'];
    const [json, streamed, bench] = await Promise.all([
      lsc(...args, '--json'), lsc(...args),
      lsc('bench', tiny, '--adaptive', '--max-new-tokens', '16', '--repeat', '1', '--json'),
    ]);
    assert.equal(json.code, 0, json.stderr);
    const j = JSON.parse(json.stdout);
    assert.deepEqual(j.tokens, p0.greedy.slice(0, 32), 'greedy adaptive decoding gives the autoregressive tokens');
    assert.equal(j.stats.strategy, 'adaptive');
    const sum = (h: Record<string, number>): number => Object.values(h).reduce((a, b) => a + b, 0);
    assert.ok(j.stats.rounds > 0 && sum(j.stats.roundsByExit) === j.stats.rounds && sum(j.stats.roundsByK) === j.stats.rounds, JSON.stringify(j.stats));
    assert.ok(String(j.stats.exitLayer) in j.stats.roundsByExit && String(j.stats.numSpeculations) in j.stats.roundsByK, 'the most used E and k');

    assert.equal(streamed.code, 0, streamed.stderr);
    assert.match(ourLines(streamed.stderr).join('\n'), /· adaptive: acceptance [\d.]+% \(\d+\/\d+ drafts, \d+ rounds\); rounds by E (\d+:\d+ ?)+; by k (\d+:\d+ ?)+; drafting stopped early in \d+ rounds?$/m);

    assert.equal(bench.code, 0, bench.stderr);
    const b = JSON.parse(bench.stdout);
    const a = b.adaptive;
    assert.ok(a.speedup > 0 && a.tokensPerSecond > 0 && a.acceptanceRate > 0, JSON.stringify(a));
    assert.equal(a.matchesAutoregressive, true);
    assert.equal(a.perPrompt.length, b.prompts);
    assert.equal(b.perPromptSpeedups.length, 1);
    assert.equal(sum(a.roundsByExit), sum(a.roundsByK));
    assert.ok(Number.isInteger(a.draftStops) && a.draftStops >= 0 && a.draftStops <= sum(a.roundsByExit), `draftStops ${a.draftStops}`);
    // the round times the controller learned (greedy, one sequence at a time; warm-up included): pairs it ran, in ms
    assert.ok(a.roundTimes.length >= 1, JSON.stringify(a.roundTimes));
    for (const t of a.roundTimes) {
      assert.ok(t.exitLayer >= 1 && t.exitLayer < 8 && t.numSpeculations >= 1 && t.weight > 0 && t.msPerRound > 0 && t.modelMsPerRound > 0, JSON.stringify(t));
    }
    assert.ok(a.roundTimes.some((t: { exitLayer: number }) => a.roundsByExit[t.exitLayer] > 0), 'the exits of the measured runs are among them');
    assert.ok(b.selfSpeculative.predictedSpeedup > 0);
  });

  it('bench --sweep --adaptive measures the oracle, the default pair and adaptive again head to head', async () => {
    const prompts = path.join(tmp, 'two-prompts.json');
    fs.writeFileSync(prompts, JSON.stringify(['def add(a, b):\n', 'for i in range(10):\n']));
    const r = await lsc('bench', tiny, '--prompts', prompts, '--sweep', '--adaptive', '--max-new-tokens', '8', '--repeat', '1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const b = JSON.parse(r.stdout);
    const h = b.headToHead;
    assert.equal(h.repeats, 1);
    assert.equal(h.pairs, 2, 'one paired run per prompt and repeat');
    const best = b.sweep.reduce((x: { speedup: number }, y: { speedup: number }) => (y.speedup > x.speedup ? y : x));
    assert.deepEqual([h.oracle.exitLayer, h.oracle.numSpeculations], [best.exitLayer, best.numSpeculations], 'the oracle is the sweep\'s best pair');
    assert.equal(h.oracle.sweepSpeedup, best.speedup);
    assert.deepEqual([h.default.exitLayer, h.default.numSpeculations], [2, 3], "the graph's default pair");
    assert.equal(h.adaptive.sweepSpeedup, b.adaptive.speedup);
    for (const x of [h.oracle.speedup, h.default.speedup, h.adaptive.speedup, h.adaptiveOverOracle, h.adaptiveOverDefault]) assert.ok(x > 0 && Number.isFinite(x), JSON.stringify(h));
  });

  it('bench --concurrency: every level repeated in rotated order, medians and per-repeat ratios, streams equal to one alone', async () => {
    const prompts = path.join(tmp, 'three-prompts.json');
    fs.writeFileSync(prompts, JSON.stringify(['def add(a, b):\n', 'for i in range(3):\n', 'class A:\n']));
    const r = await lsc('bench', tiny, '--prompts', prompts, '--max-new-tokens', '8', '--concurrency', '3', '--repeat', '2', '--json');
    assert.equal(r.code, 0, r.stderr);
    const b = JSON.parse(r.stdout);
    assert.equal(b.repeats, 2);
    const med2 = (xs: number[]): number => (xs[0] + xs[1]) / 2;
    for (const s of [b.autoregressive, b.selfSpeculative]) {
      assert.equal(s.concurrency, 3);
      assert.equal(s.matchesSingleStream, true, `${s.strategy}: every stream's tokens equal the prompt's alone`);
      assert.deepEqual(s.levels.map((l: { concurrency: number }) => l.concurrency), [1, 2, 3]);
      const [one, , three] = s.levels;
      for (const l of s.levels) {
        assert.equal(l.aggregateRuns.length, 2);
        assert.ok(Math.abs(l.aggregateTokensPerSecond - med2(l.aggregateRuns)) < 1e-9, 'the median of the runs');
        // each stream generates for every prompt once per run: 3 prompts × ≤ 8 tokens × streams × 2 runs
        assert.ok(l.tokens > 0 && l.tokens <= 3 * 8 * l.concurrency * 2, `${l.tokens} tokens at ${l.concurrency}`);
        assert.equal(l.perStreamTokensPerSecond.length, 2 * l.concurrency);
      }
      // the ratio pairs each run with one stream's run of the same repeat
      const ratios = three.aggregateRuns.map((x: number, i: number) => x / one.aggregateRuns[i]);
      assert.ok(Math.abs(three.ratio - med2(ratios)) < 1e-9, `ratio ${three.ratio} vs ${ratios}`);
      assert.equal(s.ratio, three.ratio);
      assert.equal(s.singleStreamTokensPerSecond, one.aggregateTokensPerSecond);
    }
    assert.equal(b.kv.peakInUse['3'], 3 * b.kv.perSequence);
    const t = await lsc('bench', tiny, '--prompts', prompts, '--max-new-tokens', '4', '--concurrency', '2', '--repeat', '1');
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^ {3}2 streams +[\d.]+ tok\/s aggregate {2}×[\d.]+ {2}per stream [\d.]+–[\d.]+ tok\/s/m);
    assert.doesNotMatch(t.stdout, /rotated order/, 'one run of each level says nothing of medians');
  });

  it('user errors exit 2 with one line and no stack trace', async () => {
    const noTok = path.join(tmp, 'no-tokenizer');
    fs.mkdirSync(noTok);
    for (const f of fs.readdirSync(tiny)) if (f !== 'tokenizer.json') fs.copyFileSync(path.join(tiny, f), path.join(noTok, f));
    const malformed = path.join(tmp, 'malformed.json');
    fs.writeFileSync(malformed, '{');
    const badSchema = path.join(tmp, 'bad-schema.json');
    fs.writeFileSync(badSchema, JSON.stringify({ format: 'lsc.graph/1', name: 'x', dims: { d: 'oops!' } }));
    const long = 'def f(a, b, c, d, e, f, g, h):\n    return a + b + c + d + e + f + g + h\n';

    const cases: [string[], RegExp, string][] = [
      [['compile', '--bogus-flag', 'x.json'], /unknown option '--bogus-flag'/, 'unknown flag'],
      [['generate', '--prompt', 'x'], /no model given/, 'missing model'],
      [['logits', '--tokens', '1'], /no model given/, 'missing model (logits)'],
      [['compile'], /no graph given/, 'missing argument'],
      [['generate', '--model', path.join(tmp, 'nope'), '--prompt', 'x'], /does not exist/, 'nonexistent model dir'],
      [['generate', '--model', noTok, '--prompt', 'x'], /tokenizer\.json/, 'model dir without tokenizer.json'],
      [['compile', malformed], /not valid JSON.*malformed\.json/, 'malformed graph JSON'],
      [['compile', badSchema], /schema.*#\//, 'schema-violating graph'],
      [['logits', '--model', tiny, '--tokens', '1,x'], /'x'/, '--tokens 1,x'],
      [['logits', '--model', tiny, '--tokens', '1,-3'], /'-3'/, '--tokens 1,-3'],
      [['logits', '--model', tiny], /--prompt.*--tokens/, 'neither --prompt nor --tokens'],
      [['generate', '--model', tiny, '--prompt', 'x', '--max-new-tokens', 'abc'], /positive integer/, '--max-new-tokens abc'],
      [['generate', '--model', tiny, '--prompt', 'x', '--strategy', 'bogus'], /'bogus'/, '--strategy bogus'],
      [['logits', '--model', tiny, '--tokens', '1,2,3', '--exit-layer', '99'], /exit layer 99/, '--exit-layer 99'],
      [['generate', '--model', tiny, '--prompt', long, '--ctx', '16'], /context of 16/, 'prompt longer than the context'],
      [['generate', '--model', tiny, '--prompt', 'x', '--strategy', 'autoregressive', '--exit-layer', '2'], /--exit-layer applies only to/, '--exit-layer with a strategy that does not exit'],
      [['graph', tiny, '--exit-candidates', '2,4', '--exit-layer', '5'], /exit layer 5|--exit-layer 5/, 'default exit not a candidate'],
      [['inspect', path.join(tmp, 'nope.json')], /no such file/, 'inspect of a missing file'],
    ];
    // two at a time: the machine has two cores and some cases load the model
    for (let i = 0; i < cases.length; i += 2) {
      const batch = cases.slice(i, i + 2);
      const runs = await Promise.all(batch.map(([args]) => lsc(...args)));
      runs.forEach((r, j) => assertUserError(r, batch[j][1], batch[j][2]));
    }
  });

  it('maps errors to exit codes: usage/user errors 2 (one line), bugs 1 (with the stack)', () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => { written.push(s); return true; }) as typeof process.stderr.write;
    let codes: number[];
    try {
      codes = [
        report(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), 'lsc'),
        report(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'\n(Did you mean --y?)"), 'lsc compile'),
        report(new LscError('bad thing', { file: 'g.json', pointer: '/dims' }, 'fix it'), 'lsc compile'),
        report(new TypeError('oops'), 'lsc compile'),
      ];
    } finally {
      process.stderr.write = write;
    }
    assert.deepEqual(codes, [0, 2, 2, 1]);
    assert.equal(written[0], "lsc: error: unknown option '--x' (Did you mean --y?) (see: lsc compile --help)\n");
    assert.equal(written[1], 'lsc: error: bad thing (at g.json #/dims). Fix: fix it\n');
    assert.match(written[2], /internal error[\s\S]*TypeError: oops\n\s+at /);
  });
});
