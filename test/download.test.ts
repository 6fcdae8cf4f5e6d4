/**
 * `lsc download` against a hub on loopback (test/helpers/fake-hf-hub.ts) serving the bundled
 * model's files at the hub's resolve URLs, with the LFS redirect to a CDN origin, gated repos and
 * injected faults. The download lands in the cache `--model org/name` reads.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import { resolveModelPath } from '../runtime/hf-cache.js';
import { downloadModel, type DownloadOptions, type DownloadResult } from '../runtime/hf-download.js';
import { assertUserError, ourLines, runLsc, type CliRun } from './helpers/run-cli.js';
import { TINY, TINY_FILES, commitId, etagOf, sha256, startFakeHub, tinyFiles, type FakeHub, type LoggedRequest } from './helpers/fake-hf-hub.js';

interface Reference { prompts: { text: string; greedy: number[] }[] }

describe('lsc download from a Hugging Face hub (loopback)', function () {
  this.timeout(120_000);
  let tmp: string;
  let hub: FakeHub;
  const COMMIT = commitId('tiny');
  const WEIGHTS = fs.readFileSync(path.join(TINY, 'model.safetensors'));
  const repoDir = (home: string, repo: string): string => path.join(home, 'hub', `models--${repo.replace('/', '--')}`);
  let homes = 0;
  const newHome = (): string => fs.mkdtempSync(path.join(tmp, `home${homes++}-`));
  const download = (home: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliRun> =>
    runLsc(['download', ...args], { HF_HOME: home, HF_HUB_CACHE: '', HUGGINGFACE_HUB_CACHE: '', HF_ENDPOINT: hub.endpoint, HF_TOKEN: '', HUGGING_FACE_HUB_TOKEN: '', ...extra });
  /** In process: the same code as the CLI, without a node start per case. */
  const dl = (home: string, spec: string, opts: DownloadOptions = {}): Promise<DownloadResult> =>
    downloadModel(spec, { env: { HF_HOME: home, HF_ENDPOINT: hub.endpoint }, ...opts });
  const rejectsWith = (p: Promise<unknown>, re: RegExp, what: string): Promise<void> =>
    assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof LscError, `${what}: an LscError, got ${String(e)}`);
      assert.match(e.format(), re, what);
      return true;
    });
  const gets = (repo: string, file: string): LoggedRequest[] => hub.log.filter((r) => r.method === 'GET' && r.repo === repo && r.file === file);

  /** Every file the hub has for the repo is in the snapshot, byte for byte, as a relative link into blobs/. */
  function assertSnapshot(home: string, repo: string, files: Map<string, Buffer>): string {
    const snap = path.join(repoDir(home, repo), 'snapshots', COMMIT);
    for (const [name, data] of files) {
      const link = path.join(snap, name);
      const target = fs.readlinkSync(link);
      assert.equal(target, path.join('..', '..', 'blobs', etagOf(name, data)), `${name} links to its blob`);
      assert.ok(fs.readFileSync(link).equals(data), `${name} is byte-identical`);
    }
    assert.equal(fs.readFileSync(path.join(repoDir(home, repo), 'refs', 'main'), 'utf8'), COMMIT);
    assert.deepEqual(fs.readdirSync(path.join(repoDir(home, repo), 'blobs')).filter((f) => f.endsWith('.incomplete')), [], 'no partial files left');
    return snap;
  }

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-download-'));
    const shards = new Map([['model-00001-of-00002.safetensors', crypto.randomBytes(3000)], ['model-00002-of-00002.safetensors', crypto.randomBytes(2000)]]);
    const index = (names: string[]): Buffer => Buffer.from(JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(names.map((n, i) => [`t${i}`, n])) }));
    const common = new Map([...tinyFiles()].filter(([f]) => f !== 'model.safetensors'));
    hub = await startFakeHub({
      'org/tiny': { files: tinyFiles(), commit: COMMIT, refs: { main: COMMIT, 'v1.0': COMMIT } },
      'org/corrupt': { files: tinyFiles(), commit: COMMIT, refs: { main: COMMIT } },
      'org/badsize': { files: tinyFiles(), commit: COMMIT, refs: { main: COMMIT } },
      'org/cut': { files: tinyFiles(), commit: COMMIT, refs: { main: COMMIT } },
      'org/cut-twice': { files: tinyFiles(), commit: COMMIT, refs: { main: COMMIT } },
      'meta/gated': { files: tinyFiles(), commit: COMMIT, refs: { main: COMMIT }, token: 'hf_right' },
      'org/sharded': { files: new Map([...common, ...shards, ['model.safetensors.index.json', index([...shards.keys()])]]), commit: COMMIT, refs: { main: COMMIT } },
      'org/evil': { files: new Map([...common, ['model.safetensors.index.json', index(['../../../escaped.safetensors'])]]), commit: COMMIT, refs: { main: COMMIT } },
    });
  });
  after(async () => {
    await hub?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('downloads org/name into the hub cache, then lsc generate --model org/name gives the tokens of examples/models/tiny-code', async () => {
    const home = newHome();
    const r = await download(home, ['org/tiny']);
    assert.equal(r.code, 0, r.stderr);
    const snap = assertSnapshot(home, 'org/tiny', tinyFiles());
    assert.equal(r.stdout.trim(), snap, 'prints the snapshot directory');
    assert.match(ourLines(r.stderr).join('\n'), /^lsc: org\/tiny@main \(commit [0-9a-f]{12}\): 6 files, .* fetched .* in .* s \(.*\/s\)$/m, 'one summary line (stderr is not a TTY)');
    // the weights came from the CDN the hub redirected to, without the token
    const w = gets('org/tiny', 'model.safetensors');
    assert.equal(w.length, 1);
    assert.equal(w[0].origin, 'cdn');

    const ref = JSON.parse(fs.readFileSync(path.join(TINY, 'reference.json'), 'utf8')) as Reference;
    const p = ref.prompts[0];
    const gen = await runLsc(['generate', '--model', 'org/tiny', '--prompt', p.text, '--max-new-tokens', '4', '--json'], { HF_HOME: home, HF_HUB_CACHE: '', HUGGINGFACE_HUB_CACHE: '' });
    assert.equal(gen.code, 0, gen.stderr);
    assert.deepEqual((JSON.parse(gen.stdout) as { tokens: number[] }).tokens, p.greedy.slice(0, 4));

    // a second download finds everything cached: HEADs only
    const before = hub.log.length;
    const again = await dl(home, 'org/tiny');
    assert.ok(again.files.every((f) => f.cached) && again.fetchedBytes === 0, JSON.stringify(again));
    assert.deepEqual(hub.log.slice(before).filter((x) => x.method !== 'HEAD'), []);
  });

  it('a gated repository: 401 without HF_TOKEN, 403 with a token lacking access, downloads with the right one (never sent to the CDN)', async () => {
    const none = await download(newHome(), ['meta/gated']);
    assertUserError(none, /the repository meta\/gated is gated or private and no HF_TOKEN is set \(HTTP 401\).*Fix: accept its license on http:\/\/127\.0\.0\.1:\d+\/meta\/gated and set HF_TOKEN/, 'no token');
    await rejectsWith(dl(newHome(), 'meta/gated', { token: 'hf_wrong' }),
      /the repository meta\/gated is gated and this HF_TOKEN has no access to it \(HTTP 403\).*Fix: accept its license/, 'wrong token');
    const home = newHome();
    await dl(home, 'meta/gated', { env: { HF_HOME: home, HF_ENDPOINT: hub.endpoint, HF_TOKEN: 'hf_right' } });
    assertSnapshot(home, 'meta/gated', tinyFiles());
    const fromHub = hub.log.filter((x) => x.origin === 'hub' && x.url.startsWith('/meta/gated/'));
    assert.ok(fromHub.some((x) => x.auth === 'Bearer hf_right'));
    assert.ok(hub.log.filter((x) => x.origin === 'cdn').every((x) => x.auth === undefined), 'no Authorization to the CDN');
  });

  it('resumes a transfer cut off mid-file with a Range request, in the same run; the result is byte-identical', async () => {
    hub.faults.push({ repo: 'org/cut', file: 'model.safetensors', cutAfter: 1_000_000, times: 1 });
    const home = newHome();
    await dl(home, 'org/cut');
    assertSnapshot(home, 'org/cut', tinyFiles());
    const ranges = gets('org/cut', 'model.safetensors').filter((g) => g.range).map((g) => Number(/^bytes=(\d+)-$/.exec(g.range ?? '')?.[1]));
    assert.ok(ranges.length > 0 && ranges.every((n) => n > 0 && n <= 1_000_000), `resumed with Range: ${ranges}`);
  });

  it('resumes a partial file a killed download left (blobs/{etag}.incomplete), and one a failed run left', async () => {
    const home = newHome();
    const blobs = path.join(repoDir(home, 'org/tiny'), 'blobs');
    fs.mkdirSync(blobs, { recursive: true });
    fs.writeFileSync(path.join(blobs, `${sha256(WEIGHTS)}.incomplete`), WEIGHTS.subarray(0, 123_456));
    const n = gets('org/tiny', 'model.safetensors').length;
    const r = await dl(home, 'org/tiny');
    assert.equal(r.files.find((f) => f.name === 'model.safetensors')?.resumedFrom, 123_456);
    assert.deepEqual(gets('org/tiny', 'model.safetensors').slice(n).map((g) => g.range), ['bytes=123456-']);
    assertSnapshot(home, 'org/tiny', tinyFiles());

    // every attempt of a run cut off: a one-line error that keeps the part; the next run finishes it
    hub.faults.push({ repo: 'org/cut-twice', file: 'model.safetensors', cutAfter: 100_000, times: 5 });
    const home2 = newHome();
    const failed = await download(home2, ['org/cut-twice']);
    assertUserError(failed, /the download of model\.safetensors broke off at \d+ of 4272152 bytes.*the part is kept in .*\.incomplete.*Fix: run lsc download again to resume/, 'all attempts cut');
    const kept = fs.statSync(path.join(repoDir(home2, 'org/cut-twice'), 'blobs', `${sha256(WEIGHTS)}.incomplete`)).size;
    assert.ok(kept >= 100_000, `kept ${kept} bytes`);
    const n2 = gets('org/cut-twice', 'model.safetensors').length;
    await dl(home2, 'org/cut-twice');
    assert.deepEqual(gets('org/cut-twice', 'model.safetensors').slice(n2).map((g) => g.range), [`bytes=${kept}-`]);
    assertSnapshot(home2, 'org/cut-twice', tinyFiles());
  });

  it('refuses a corrupted transfer (sha256 differs from the LFS etag) and a size other than announced, keeping nothing', async () => {
    hub.faults.push({ repo: 'org/corrupt', file: 'model.safetensors', corrupt: true });
    hub.faults.push({ repo: 'org/badsize', file: 'tokenizer.json', announceSize: 1000 });
    const [h1, h2] = [newHome(), newHome()];
    await rejectsWith(dl(h1, 'org/corrupt'),
      new RegExp(`the downloaded model\\.safetensors has sha256 [0-9a-f]{64} but the hub says ${sha256(WEIGHTS)}; the corrupt file was deleted`), 'corrupt weights');
    await rejectsWith(dl(h2, 'org/badsize'), /the server sends 72104 bytes for tokenizer\.json but announced 1000/, 'wrong size');
    for (const [home, repo] of [[h1, 'org/corrupt'], [h2, 'org/badsize']]) {
      const blobs = fs.readdirSync(path.join(repoDir(home, repo), 'blobs'));
      assert.ok(!blobs.includes(sha256(WEIGHTS)) && blobs.every((b) => !b.endsWith('.incomplete')), `${repo}: ${blobs}`);
      assert.ok(!fs.existsSync(path.join(repoDir(home, repo), 'snapshots')), `${repo}: no snapshot`);
    }
  });

  it('a sharded checkpoint: the index and every shard it names; a shard name with ../ is refused', async () => {
    const [h1, h2] = [newHome(), newHome()];
    await dl(h1, 'org/sharded');
    const files = hub.repos.get('org/sharded')!.files;
    assertSnapshot(h1, 'org/sharded', files);
    assert.equal(resolveModelPath('org/sharded', { env: { HF_HOME: h1 } }), path.join(repoDir(h1, 'org/sharded'), 'snapshots', COMMIT));
    await rejectsWith(dl(h2, 'org/evil'), /model\.safetensors\.index\.json names the shard "\.\.\/\.\.\/\.\.\/escaped\.safetensors", which is not a plain file name/, 'shard outside the repo');
    assert.ok(!fs.existsSync(path.join(h2, 'escaped.safetensors')) && !fs.existsSync(path.join(tmp, 'escaped.safetensors')));
    assert.ok(!hub.log.some((x) => x.url.includes('escaped')), 'never requested');
  });

  it('--revision: a tag writes refs/<tag>, a commit writes no ref (like huggingface_hub); both resolve as org/name@rev', async () => {
    const [h1, h2] = [newHome(), newHome()];
    const [tag, twice] = await Promise.all([download(h1, ['org/tiny', '--revision', 'v1.0']), download(newHome(), ['org/tiny@main', '--revision', 'v1.0'])]);
    assert.equal(tag.code, 0, tag.stderr);
    await dl(h2, `org/tiny@${COMMIT}`);
    assert.deepEqual(fs.readdirSync(path.join(repoDir(h1, 'org/tiny'), 'refs')), ['v1.0']);
    assert.ok(!fs.existsSync(path.join(repoDir(h2, 'org/tiny'), 'refs')));
    const snap = (h: string): string => path.join(repoDir(h, 'org/tiny'), 'snapshots', COMMIT);
    assert.equal(resolveModelPath('org/tiny@v1.0', { env: { HF_HOME: h1 } }), snap(h1));
    assert.equal(resolveModelPath(`org/tiny@${COMMIT}`, { env: { HF_HOME: h2 } }), snap(h2));
    assertUserError(twice, /two revisions given: @main and --revision v1\.0/, 'two revisions');
  });

  it('unknown repository, revision, bad id and an unreachable endpoint: one line each, exit 2', async () => {
    // a loopback port nothing listens on: listen(0), then close
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const closed = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise((resolve) => probe.close(resolve));
    await rejectsWith(dl(newHome(), 'org/nope'), /repository org\/nope or its revision 'main' not found/, 'unknown repo');
    await rejectsWith(dl(newHome(), 'org/tiny@nobranch'), /revision 'nobranch' of org\/tiny not found/, 'unknown revision');
    await rejectsWith(dl(newHome(), 'not-an-id'), /'not-an-id' is not a Hugging Face model id/, 'not an id');
    assertUserError(await download(newHome(), ['org/tiny'], { HF_ENDPOINT: closed }), new RegExp(`cannot reach ${closed} to fetch config\\.json: ECONNREFUSED.*HF_ENDPOINT`), 'connection refused');
  });
});
