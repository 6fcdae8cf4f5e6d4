/**
 * Models by Hugging Face id: `org/name[@rev]` resolved in the hub cache huggingface_hub writes
 * (refs/, snapshots/ symlinked into blobs/), wherever lsc takes a model. The cache here is built
 * from the bundled model, so the one GPU run compiles the kernels the other tests compile.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import { hubCacheDir, parseModelId, resolveModelPath } from '../runtime/hf-cache.js';
import { assertUserError, ourLines, ROOT, runLsc } from './helpers/run-cli.js';
import { TINY, commitId, tinyFiles, writeCachedSnapshot } from './helpers/fake-hf-hub.js';

interface Reference { prompts: { text: string; greedy: number[] }[] }
const ref = JSON.parse(fs.readFileSync(path.join(TINY, 'reference.json'), 'utf8')) as Reference;

describe('Hugging Face model ids and the hub cache', function () {
  this.timeout(120_000);
  let home: string;
  let hub: string;
  let env: NodeJS.ProcessEnv;
  const MAIN = commitId('main');
  const DEV = commitId('dev');

  before(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-hfhome-'));
    hub = path.join(home, 'hub');
    env = { HF_HOME: home, HF_HUB_CACHE: '', HUGGINGFACE_HUB_CACHE: '' };
    writeCachedSnapshot(hub, 'org/tiny', MAIN, tinyFiles(), ['main', 'v1.0']);
    writeCachedSnapshot(hub, 'org/tiny', DEV, new Map([...tinyFiles()].filter(([f]) => f === 'config.json')), ['dev', 'refs/pr/1']);
    // a snapshot whose weights blob is gone (broken symlink) and that lacks tokenizer.json
    const partial = new Map([...tinyFiles()].filter(([f]) => f !== 'tokenizer.json'));
    const snap = writeCachedSnapshot(hub, 'org/partial', MAIN, partial);
    fs.rmSync(fs.realpathSync(path.join(snap, 'model.safetensors')));
  });
  after(() => { fs.rmSync(home, { recursive: true, force: true }); });

  it('finds the hub cache the way huggingface_hub does: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, ~/.cache', () => {
    assert.equal(hubCacheDir({ HF_HUB_CACHE: '/a', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c', XDG_CACHE_HOME: '/d' }), '/a');
    assert.equal(hubCacheDir({ HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c', XDG_CACHE_HOME: '/d' }), '/b');
    assert.equal(hubCacheDir({ HF_HOME: '/c', XDG_CACHE_HOME: '/d' }), '/c/hub');
    assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/d' }), '/d/huggingface/hub');
    assert.equal(hubCacheDir({}), path.join(os.homedir(), '.cache', 'huggingface', 'hub'));
    assert.equal(hubCacheDir({ HF_HOME: '~/hf' }), path.join(os.homedir(), 'hf', 'hub'));
  });

  it('parses org/name[@revision] and leaves paths alone', () => {
    assert.deepEqual(parseModelId('facebook/layerskip-llama2-7B'), { repo: 'facebook/layerskip-llama2-7B', revision: undefined });
    assert.deepEqual(parseModelId('org/tiny@refs/pr/1'), { repo: 'org/tiny', revision: 'refs/pr/1' });
    for (const notId of ['examples/models/tiny-code', './org/x', '/abs/x', 'x.json', 'a--b/c', 'a/b..c', 'org/x@../../etc', 'org/x@', 'org/']) {
      assert.equal(parseModelId(notId), undefined, notId);
    }
  });

  it('resolves org/name to refs/main, @branch and @tag through refs/, @commit straight to its snapshot', () => {
    const snap = (c: string): string => path.join(hub, 'models--org--tiny', 'snapshots', c);
    assert.equal(resolveModelPath('org/tiny', { env }), snap(MAIN));
    assert.equal(resolveModelPath('org/tiny@v1.0', { env }), snap(MAIN));
    assert.equal(resolveModelPath('org/tiny@dev', { env, need: 'config' }), snap(DEV));
    assert.equal(resolveModelPath('org/tiny@refs/pr/1', { env, need: 'config' }), snap(DEV));
    assert.equal(resolveModelPath(`org/tiny@${MAIN}`, { env }), snap(MAIN));
    // the dev snapshot has config.json only: enough for a graph, not for a model
    assert.throws(() => resolveModelPath('org/tiny@dev', { env }), (e: unknown) => e instanceof LscError && /missing tokenizer\.json, model\.safetensors/.test(e.message));
  });

  it('a local path that exists wins over an id of the same shape', () => {
    const local = path.relative(process.cwd(), path.join(ROOT, 'examples', 'models'));
    assert.ok(parseModelId(local), `precondition: '${local}' is shaped like an id`);
    writeCachedSnapshot(hub, local, commitId('shadow'), tinyFiles());
    assert.equal(resolveModelPath(local, { env }), local);
  });

  it('HF_HOME=… lsc generate --model org/tiny gives the tokens of examples/models/tiny-code', async () => {
    const p = ref.prompts[0];
    const args = ['--prompt', p.text, '--max-new-tokens', '4', '--json'];
    const [byId, byDir] = await Promise.all([
      runLsc(['generate', '--model', 'org/tiny', ...args], env),
      runLsc(['generate', '--model', TINY, ...args], env),
    ]);
    assert.equal(byId.code, 0, byId.stderr);
    assert.equal(byDir.code, 0, byDir.stderr);
    const tokens = (JSON.parse(byId.stdout) as { tokens: number[] }).tokens;
    assert.deepEqual(tokens, (JSON.parse(byDir.stdout) as { tokens: number[] }).tokens);
    assert.deepEqual(tokens, p.greedy.slice(0, 4));
  });

  it('compile/inspect/graph take an id too, at a branch or a commit; the graph is named after the repository', async () => {
    const out = path.join(home, 'g.json');
    const [graph, inspect] = await Promise.all([
      runLsc(['graph', 'org/tiny@dev', '-o', out], env),
      runLsc(['inspect', `org/tiny@${MAIN}`, '--format', 'json'], env),
    ]);
    assert.equal(graph.code, 0, graph.stderr);
    assert.equal(inspect.code, 0, inspect.stderr);
    const tinyConfig = JSON.parse(fs.readFileSync(path.join(TINY, 'config.json'), 'utf8')) as { hidden_size: number };
    const g = JSON.parse(fs.readFileSync(out, 'utf8')) as { name: string; dims: Record<string, unknown> };
    assert.equal(g.dims.d, tinyConfig.hidden_size);
    assert.equal(g.name, 'tiny', 'named after the repository, not the snapshot\'s commit');
    assert.ok(inspect.stdout.length > 0 && JSON.parse(inspect.stdout), 'inspect printed JSON');
  });

  it('errors name the id, the cache and the fix: unknown id, unknown revision, incomplete snapshot (exit 2, one line)', async () => {
    const fails = (arg: string, re: RegExp, what: string): void => {
      assert.throws(() => resolveModelPath(arg, { env }), (e: unknown) => e instanceof LscError && re.test(e.format()), what);
    };
    fails('org/tiny@nope', /revision 'nope' of org\/tiny is not in the Hugging Face cache \(cached: .*main.*v1\.0.*\).*lsc download org\/tiny@nope/, 'unknown revision');
    fails('org/partial', /snapshot of org\/partial@main is incomplete: missing tokenizer\.json, model\.safetensors.*lsc download org\/partial/, 'incomplete snapshot');
    // through each command that takes a model: one line, exit 2
    const cases: [string[], RegExp, string][] = [
      [['generate', '--model', 'org/missing', '--prompt', 'x'], /'org\/missing' is neither a file or directory nor a model in the Hugging Face cache.*lsc download org\/missing/, 'id not in the cache'],
      [['compile', 'org/tiny@nope'], /revision 'nope' of org\/tiny is not in the Hugging Face cache/, 'compile of an unknown revision'],
      [['tune', 'org/missing'], /nor a model in the Hugging Face cache/, 'tune of an unknown id'],
      [['tune', path.join(home, 'nope')], /no such file or directory/, 'tune of a missing path (was a stack trace)'],
    ];
    const runs = [];
    for (let i = 0; i < cases.length; i += 2) runs.push(...await Promise.all(cases.slice(i, i + 2).map(([args]) => runLsc(args, env))));
    runs.forEach((r, i) => assertUserError(r, cases[i][1], cases[i][2]));
    assert.ok(ourLines(runs[0].stderr)[0].includes(hub), 'names the cache directory');
  });
});
