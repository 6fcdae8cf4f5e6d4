/**
 * Artifact safety (issue 8, "Hardening"): `lsc compile` writes only where it should and replaces
 * only a directory it can prove it wrote (manifest.json); an artifact read back is checked whole
 * (manifest hashes, plan.json schema, a recompile of graph.json) before any GPU work.
 *
 * Everything runs through the real CLI with artifacts of graphs/tiny-code.json. `generate --plan`
 * runs with the Vulkan drivers hidden: reaching the artifact's error, not "no WebGPU adapter",
 * shows the artifact was refused before the device was opened. One test uses the GPU: a tuned
 * artifact of the tiny model runs like a fresh compile (same kernel shapes: cached by lavapipe).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Graph } from '../compiler/ir/graph.js';
import type { Plan } from '../compiler/plan.js';
import { isArtifactDir, readArtifact, writeArtifact } from '../compiler/artifact.js';
import { LscError } from '../compiler/errors.js';
import { MANIFEST_FILE, manifestText, type Manifest } from '../compiler/artifact-manifest.js';
import { ROOT, runLsc, type CliRun } from './helpers/run-cli.js';
import { testGpu } from './helpers/gpu.js';
import { compileGraph } from '../compiler/compile.js';
import { planLimits } from '../runtime/device.js';
import { loadTuning } from '../runtime/tuning-db.js';
import { LscModel } from '../runtime/model.js';

const GRAPH = path.join(ROOT, 'graphs', 'tiny-code.json');
const TINY = path.join(ROOT, 'examples', 'models', 'tiny-code');
const NO_DRIVER = { VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json', VK_LOADER_DRIVERS_DISABLE: '*' };

/** Every file and link under `dir` with its contents (or link target): what must survive a refused run. */
function snapshot(dir: string, skip: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(dir, rel))) {
      const p = path.join(rel, name);
      if (skip.includes(p)) continue;
      const full = path.join(dir, p);
      const st = fs.lstatSync(full);
      if (st.isSymbolicLink()) out[p] = `-> ${fs.readlinkSync(full)}`;
      else if (st.isDirectory()) { out[p + '/'] = ''; walk(p); }
      else out[p] = fs.readFileSync(full, 'utf8');
    }
  };
  walk('');
  return out;
}

/** A refused run: exit 2, one line of lsc's own on stderr (no stack, no Dawn text), nothing on stdout. */
function assertOneLineError(r: CliRun, message: RegExp): string {
  assert.equal(r.code, 2, `exit code (stdout: ${r.stdout.slice(0, 300)}; stderr: ${r.stderr})`);
  const lines = r.stderr.split('\n').filter((l) => l.trim());
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^lsc: error: /);
  assert.match(lines[0], message);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(r.stderr + r.stdout, /validation|Dawn|While calling|internal error/i, 'no Dawn validation text');
  assert.equal(r.stdout, '', 'nothing on stdout');
  return lines[0];
}

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/**
 * Rewrites manifest.json for the files it lists as they are now: an edit the hashes cannot catch.
 * (No manifest, nothing to do: so these tests also run against an lsc that wrote none.)
 */
function reseal(dir: string): void {
  if (!fs.existsSync(path.join(dir, MANIFEST_FILE))) return;
  const m = readJson<Manifest>(path.join(dir, MANIFEST_FILE));
  fs.writeFileSync(path.join(dir, MANIFEST_FILE), manifestText(new Map(m.files.map((f) => [f.path, fs.readFileSync(path.join(dir, f.path))]))));
}

describe('hardening: artifact safety', function () {
  this.timeout(120_000);
  let tmp: string;
  /** A good artifact of tiny-code, compiled once; cases copy it. */
  let good: string;
  const copy = (name: string): string => {
    const dir = path.join(tmp, name);
    fs.cpSync(good, dir, { recursive: true, verbatimSymlinks: true });
    return dir;
  };

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-artifact-'));
    good = path.join(tmp, 'good');
    const r = await runLsc(['compile', GRAPH, '-o', good]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('compile writes manifest.json: every file of the artifact with its size and sha256', () => {
    const m = readJson<Manifest>(path.join(good, MANIFEST_FILE));
    assert.equal(m.format, 'lsc.artifact/1');
    const listed = m.files.map((f) => f.path).sort();
    const onDisk = Object.keys(snapshot(good)).filter((p) => !p.endsWith('/') && p !== MANIFEST_FILE).sort();
    assert.deepEqual(listed, onDisk);
    for (const f of m.files) {
      const data = fs.readFileSync(path.join(good, f.path));
      assert.equal(f.bytes, data.length, f.path);
      assert.equal(f.sha256, createHash('sha256').update(data).digest('hex'), f.path);
    }
    assert.ok(isArtifactDir(good));
  });

  describe('compile without -o: a graph name never becomes a path', () => {
    // the names the issue lists; "derived" is the folder under out/ (undefined: refused)
    const cases: { name: string; derived?: string }[] = [
      { name: '../../x', derived: 'x' },
      { name: '../../../victim', derived: 'victim' },
      { name: '/abs/x', derived: 'abs-x' },
      { name: '.' },
      { name: '..' },
      { name: 'a\u0000b', derived: 'a-b' },
      { name: '..\\..\\w', derived: 'w' },
      { name: 'x\\..\\..\\y', derived: 'x-..-..-y' },
    ];
    for (const c of cases) {
      it(`graph named ${JSON.stringify(c.name)}: ${c.derived ? `writes out/${c.derived}` : 'refused'}, nothing outside ./out/, no file removed`, async () => {
        // sandbox/a/b/work is the cwd; every folder the old path.join('out', name) reached holds a foreign plan.json
        const sandbox = fs.mkdtempSync(path.join(tmp, 'name-'));
        const cwd = path.join(sandbox, 'a', 'b', 'work');
        fs.mkdirSync(cwd, { recursive: true });
        const g = readJson<Graph>(GRAPH);
        g.name = c.name;
        fs.writeFileSync(path.join(cwd, 'g.json'), JSON.stringify(g));
        for (const dir of [cwd, path.join(sandbox, 'a', 'b', 'x'), path.join(sandbox, 'a', 'victim'), path.join(sandbox, 'victim')]) {
          fs.mkdirSync(dir, { recursive: true });
          fs.writeFileSync(path.join(dir, 'plan.json'), '{"mine": true}\n');
          fs.writeFileSync(path.join(dir, 'data.csv'), '1,2\n');
        }
        const before = snapshot(sandbox);
        const r = await runLsc(['compile', 'g.json'], {}, { cwd });
        // everything outside ./out/ is exactly as it was
        assert.deepEqual(snapshot(sandbox, [path.join('a', 'b', 'work', 'out')]), before);
        assert.ok(!fs.existsSync('/abs'), '/abs was not created');
        if (c.derived) {
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual(fs.readdirSync(path.join(cwd, 'out')), [c.derived]);
          const dir = path.join(cwd, 'out', c.derived);
          assert.ok(isArtifactDir(dir), 'a complete artifact');
          assert.equal(readJson<Graph>(path.join(dir, 'graph.json')).name, c.name, 'the graph keeps its name');
        } else {
          assertOneLineError(r, /graph name .* has no characters usable as a directory name.*#\/name.*Fix: pass -o DIR/);
          assert.ok(!fs.existsSync(path.join(cwd, 'out')), 'nothing written');
        }
      });
    }
  });

  describe('compile -o DIR replaces only an artifact lsc wrote', () => {
    it('refuses a folder with a foreign plan.json and data.csv; both survive', async () => {
      const dir = path.join(tmp, 'foreign');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'plan.json'), '{"not": "lsc"}\n');
      fs.writeFileSync(path.join(dir, 'data.csv'), 'a,b\n1,2\n');
      const before = snapshot(tmp);
      const r = await runLsc(['compile', GRAPH, '-o', dir]);
      assertOneLineError(r, /holds plan\.json but no manifest\.json.*refusing to replace it.*Fix: choose another -o DIR, or delete/);
      assert.deepEqual(snapshot(tmp), before, 'nothing written or removed, no temp dirs left');
    });

    it('recompiling over an lsc artifact replaces it', async () => {
      const dir = copy('recompile');
      const r = await runLsc(['compile', GRAPH, '-o', dir, '--ctx', '64']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readJson<Plan>(path.join(dir, 'plan.json')).dims.ctx, 64, 'the new plan');
      assert.ok(isArtifactDir(dir));
      assert.equal(readArtifact(dir).plan.dims.ctx, 64, 'it loads');
      assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.startsWith('.')), [], 'no temp dirs left');
    });

    it('refuses an lsc artifact a user added a file to; the file and the artifact survive', async () => {
      const dir = copy('user-file');
      fs.writeFileSync(path.join(dir, 'kernels', 'notes.txt'), 'my notes\n');
      const before = snapshot(dir);
      const r = await runLsc(['compile', GRAPH, '-o', dir]);
      assertOneLineError(r, /holds 'kernels\/notes\.txt', which lsc did not write; refusing to replace it/);
      assert.deepEqual(snapshot(dir), before);
    });

    it('refuses an lsc artifact whose listed file was edited since', async () => {
      const dir = copy('edited-graph');
      fs.appendFileSync(path.join(dir, 'graph.json'), '\n');
      const before = snapshot(dir);
      const r = await runLsc(['compile', GRAPH, '-o', dir]);
      assertOneLineError(r, /does not match its manifest\.json \(graph\.json changed since lsc compile wrote it/);
      assert.deepEqual(snapshot(dir), before);
    });

    it('a symlinked kernels/ is not ours: compile refuses and never deletes through it, load refuses it', async () => {
      const dir = copy('linked-kernels');
      const elsewhere = path.join(tmp, 'elsewhere-kernels');
      fs.renameSync(path.join(dir, 'kernels'), elsewhere);
      fs.writeFileSync(path.join(elsewhere, 'precious.txt'), 'keep\n');
      fs.symlinkSync(elsewhere, path.join(dir, 'kernels'));
      const before = snapshot(tmp);
      const [c, i] = await Promise.all([runLsc(['compile', GRAPH, '-o', dir]), runLsc(['inspect', dir])]);
      assertOneLineError(c, /does not match its manifest\.json \(kernels\/\S+\.wgsl resolves outside the artifact \(a linked folder on its path\)\).*refusing to replace it/);
      assertOneLineError(i, /kernels\/\S+\.wgsl resolves outside the artifact.*Fix: recompile with lsc compile/);
      assert.deepEqual(snapshot(tmp), before);
    });

    it('refuses an -o that is a symbolic link to an artifact', async () => {
      const link = path.join(tmp, 'link-to-good');
      fs.symlinkSync(good, link);
      const before = snapshot(tmp);
      assertOneLineError(await runLsc(['compile', GRAPH, '-o', link]), /is a symbolic link, not a directory lsc wrote/);
      assert.deepEqual(snapshot(tmp), before);
    });
  });

  describe('an artifact is checked whole before any GPU work', () => {
    /** `lsc inspect DIR` and `lsc generate --plan DIR --json` (drivers hidden) both refuse with `message`. */
    async function bothRefuse(dir: string, message: RegExp): Promise<void> {
      const [inspect, generate] = await Promise.all([
        runLsc(['inspect', dir]),
        runLsc(['generate', '--model', TINY, '--plan', dir, '--prompt', 'def f', '--max-new-tokens', '2', '--json'], NO_DRIVER),
      ]);
      const a = assertOneLineError(inspect, message);
      const b = assertOneLineError(generate, message);
      assert.match(a, /Fix: recompile with lsc compile/);
      assert.equal(a, b, 'inspect and generate say the same');
    }
    /** The same check in process (readArtifact, which both commands call first), for the further cases. */
    function loadRefuses(dir: string, message: RegExp): void {
      assert.throws(() => readArtifact(dir), (e: unknown) => {
        assert.ok(e instanceof LscError, `an LscError, got ${(e as Error).stack}`);
        assert.doesNotMatch(e.format(), /\n/);
        assert.match(e.format(), message);
        assert.match(e.format(), /Fix: recompile with lsc compile/);
        return true;
      });
    }
    const editPlan = (dir: string, edit: (p: Record<string, unknown>) => unknown): void => {
      const file = path.join(dir, 'plan.json');
      fs.writeFileSync(file, JSON.stringify(edit(readJson<Record<string, unknown>>(file)), null, 2));
    };

    it('a good artifact loads (inspect)', async () => {
      const r = await runLsc(['inspect', good, '--format', 'json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).plan.dims.ctx, 1024);
    });

    it('a kernel file path of ../../../../etc/passwd in plan.json (manifest resealed)', async () => {
      const dir = copy('kernel-path');
      editPlan(dir, (p) => { (p.kernels as { file: string }[])[0].file = '../../../../etc/passwd'; return p; });
      reseal(dir);
      await bothRefuse(dir, /kernel file "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd" is not kernels\/<kernel id>\.wgsl \(at \S+plan\.json #\/kernels\/0\/file\)/);
    });

    it('the same edit without resealing: plan.json changed since compile', () => {
      const dir = copy('kernel-path-unsealed');
      editPlan(dir, (p) => { (p.kernels as { file: string }[])[0].file = '../../../../etc/passwd'; return p; });
      loadRefuses(dir, /plan\.json changed since lsc compile wrote it \(its (size|sha256) differs from manifest\.json\) \(at \S+plan\.json\)/);
    });

    it('a tampered kernel file: its sha256 no longer matches', async () => {
      const dir = copy('kernel-hash');
      const kernel = readJson<Plan>(path.join(dir, 'plan.json')).kernels.find((k) => k.family === 'attention')!;
      const file = path.join(dir, kernel.file);
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('fn main', 'fn mian'));
      await bothRefuse(dir, new RegExp(`${kernel.file} changed since lsc compile wrote it \\(its sha256 differs from manifest\\.json\\) \\(at ${file.replace(/[.]/g, '\\.')}\\)`));
    });

    it('a tampered kernel file with the manifest resealed: not the WGSL lsc compiles', () => {
      const dir = copy('kernel-resealed');
      const kernel = readJson<Plan>(path.join(dir, 'plan.json')).kernels[0];
      fs.writeFileSync(path.join(dir, kernel.file), fs.readFileSync('/etc/passwd'));
      reseal(dir);
      loadRefuses(dir, new RegExp(`${kernel.file} is not the WGSL lsc compiles for this plan`));
    });

    it('lying dims (ctx 100000, manifest resealed)', async () => {
      const dir = copy('lying-ctx');
      editPlan(dir, (p) => { (p.dims as Record<string, number>).ctx = 100000; return p; });
      reseal(dir);
      await bothRefuse(dir, /plan\.json does not match its graph\.json: \/dims\/ctx is 100000, compiling graph\.json gives 1024 \(at \S+plan\.json #\/dims\/ctx\)/);
    });

    it('a KV buffer size that disagrees with the dims (manifest resealed)', () => {
      const dir = copy('lying-kv');
      editPlan(dir, (p) => {
        const kv = (p.buffers as { id: string; bytes: number }[]).find((b) => b.id === 'kv:0')!;
        kv.bytes = 16;
        return p;
      });
      reseal(dir);
      loadRefuses(dir, /\/buffers\/\d+\/bytes is 16, compiling graph\.json gives 524288/);
    });

    it('a dispatch that binds a buffer the plan does not have (manifest resealed)', () => {
      const dir = copy('bad-binding');
      editPlan(dir, (p) => {
        const d = (p.entries as Plan['entries'])[1].stages[0].dispatches[0];
        d.buffers[0] = 'act:nowhere';
        return p;
      });
      reseal(dir);
      loadRefuses(dir, /\/entries\/1\/stages\/0\/dispatches\/0\/buffers\/0 is "act:nowhere", compiling graph\.json gives "/);
    });

    it('a kernel config edited in plan.json (manifest resealed): recompiled with it, the kernel differs', () => {
      const dir = copy('kernel-config');
      let at = -1;
      editPlan(dir, (p) => {
        const kernels = p.kernels as Plan['kernels'];
        at = kernels.findIndex((k) => k.family === 'matmul');
        kernels[at].config = { ...kernels[at].config, rowBlock: 1 };
        return p;
      });
      reseal(dir);
      loadRefuses(dir, new RegExp(`/kernels/${at}/id is "\\w*matmul\\w+", compiling graph\\.json with its kernel configs gives "\\w*matmul\\w+"`));
    });

    it('a kernel config no emitter accepts (manifest resealed)', () => {
      const dir = copy('kernel-config-bad');
      editPlan(dir, (p) => {
        const kernels = p.kernels as Plan['kernels'];
        kernels.find((k) => k.family === 'matmul')!.config = { units: 7, perThread: 2 };
        return p;
      });
      reseal(dir);
      loadRefuses(dir, /the kernel configs in plan\.json cannot be compiled: .* \(at \S+plan\.json #\/kernels\)/);
    });

    it('a plan with no kernels (manifest resealed)', async () => {
      const dir = copy('no-kernels');
      editPlan(dir, (p) => { delete p.kernels; return p; });
      reseal(dir);
      await bothRefuse(dir, /plan\.json does not match the lsc\.plan\/1 schema: missing property 'kernels' \(at \S+plan\.json #\)/);
    });

    it('a plan.json that is not an object (manifest resealed)', async () => {
      const dir = copy('not-object');
      editPlan(dir, () => ['lsc.plan/1']);
      reseal(dir);
      await bothRefuse(dir, /plan\.json does not match the lsc\.plan\/1 schema: must be object/);
    });

    it('a graph.json edited to match a lying plan still fails the graph hash', () => {
      const dir = copy('graph-edit');
      const g = readJson<Graph>(path.join(dir, 'graph.json'));
      g.dims.ctx = { max: 100000 };
      fs.writeFileSync(path.join(dir, 'graph.json'), JSON.stringify(g));
      reseal(dir);
      loadRefuses(dir, /plan\.json was compiled from another graph .* \(at \S+plan\.json #\/graph\/hash\)/);
    });

    it('a manifest that lists a path outside the artifact', () => {
      const dir = copy('manifest-escape');
      const file = path.join(dir, MANIFEST_FILE);
      const m = readJson<Manifest>(file);
      m.files[0].path = '../good/plan.json';
      fs.writeFileSync(file, JSON.stringify(m));
      loadRefuses(dir, /manifest\.json lists "\.\.\/good\/plan\.json", which is not a plain file name .* #\/files\/0\/path/);
    });
  });

  it('a plan compiled with this adapter\'s tuned kernel configs passes the checks and runs like a fresh compile (GPU)', async () => {
    // the tuned configs differ from the compiler's defaults: the check must recompile with them
    const gpu = await testGpu();
    const graph = readJson<Graph>(GRAPH);
    // as many KV slots as loading without a plan picks for this adapter (runtime/batch/capacity.ts)
    const fresh = await LscModel.load(TINY, { gpu });
    const sequences = fresh.plan.rows.sequences;
    const compiled = compileGraph(graph, { file: GRAPH, limits: planLimits(gpu), tuning: loadTuning(gpu), target: gpu.isCpu ? 'cpu' : 'gpu', sequences });
    const untuned = compileGraph(graph, { file: GRAPH, limits: planLimits(gpu) });
    assert.notDeepEqual(compiled.plan.kernels.map((k) => k.config), untuned.plan.kernels.map((k) => k.config), 'configs other than the defaults');
    const dir = path.join(tmp, 'tuned');
    writeArtifact(dir, compiled, graph);
    const tokens = [1, 535, 300, 42];
    const fromPlan = await LscModel.load(TINY, { gpu, plan: dir });
    try {
      assert.deepEqual(fromPlan.plan, JSON.parse(JSON.stringify(fresh.plan)), 'the same plan as loading compiles');
      const [a] = await fromPlan.logits(tokens);
      const [b] = await fresh.logits(tokens);
      assert.deepEqual(Array.from(a), Array.from(b));
    } finally {
      fromPlan.dispose();
      fresh.dispose();
    }
  });

  describe('artifacts of an older lsc (plan.json, no manifest.json)', () => {
    it('load says it was written by an older lsc', async () => {
      const dir = copy('old');
      fs.rmSync(path.join(dir, MANIFEST_FILE), { force: true });
      const [inspect, generate] = await Promise.all([
        runLsc(['inspect', dir]),
        runLsc(['generate', '--model', TINY, '--plan', dir, '--prompt', 'x', '--json'], NO_DRIVER),
      ]);
      for (const r of [inspect, generate]) assertOneLineError(r, /was written by an older lsc \(it has plan\.json but no manifest\.json.*Fix: recompile with lsc compile/);
    });

    it('compile never replaces one: no manifest, not provably ours', async () => {
      const dir = copy('old-replace');
      fs.rmSync(path.join(dir, MANIFEST_FILE), { force: true });
      const before = snapshot(dir);
      const r = await runLsc(['compile', GRAPH, '-o', dir]);
      assertOneLineError(r, /holds plan\.json but no manifest\.json: an artifact of an older lsc.*Fix: choose another -o DIR, or delete .* yourself/);
      assert.deepEqual(snapshot(dir), before);
    });
  });
});
