/**
 * Every WGSL kernel the compiler emits passes WebGPU's shader validation (Tint), for every graph of
 * the catalog and every kernel configuration the tuner may pick. Only shader modules are created:
 * no pipelines, since lavapipe's LLVM backend takes seconds per pipeline, while module creation
 * parses and validates the WGSL in milliseconds. Graph-specific sizes (d, ffn, heads, ctx, row
 * slices of the LM head) are baked into the kernels, so each graph is a separate check.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CATALOG } from '../compiler/builder/catalog.js';
import { emitAccept } from '../codegen/accept.js';
import { compileGraph, type CompileOptions } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { candidates } from '../runtime/tuner.js';
import { loadTuning } from '../runtime/tuning-db.js';
import type { GpuContext } from '../runtime/device.js';
import { testGpu } from './helpers/gpu.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readGraph = (name: string): { graph: Graph; file: string } => {
  const file = path.join(root, 'graphs', `${name}.json`);
  return { graph: JSON.parse(fs.readFileSync(file, 'utf8')) as Graph, file };
};

interface Checked { compiled: number; skipped: string[] }

/**
 * Creates a shader module per source and returns the compile errors (empty: all valid). Sources
 * needing a feature this device lacks are skipped (and named), since they cannot be created here.
 */
async function shaderErrors(gpu: GpuContext, sources: { label: string; wgsl: string; features: string[] }[],
  seen: Set<string>, checked: Checked): Promise<string[]> {
  const d = gpu.device;
  const errors: string[] = [];
  for (const s of sources) {
    if (seen.has(s.wgsl)) continue;
    seen.add(s.wgsl);
    const missing = s.features.filter((f) => !gpu.features.has(f));
    if (missing.length) {
      checked.skipped.push(`${s.label} (needs ${missing.join(', ')})`);
      continue;
    }
    d.pushErrorScope('validation');
    const module = d.createShaderModule({ code: s.wgsl, label: s.label });
    const info = await module.getCompilationInfo();
    const scope = await d.popErrorScope();
    const msgs = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
    if (scope) msgs.push(scope.message.split('\n')[0]);
    if (msgs.length) {
      const lines = s.wgsl.split('\n');
      const first = info.messages.find((m) => m.type === 'error');
      const at = first ? `\n    > ${lines[first.lineNum - 1]?.trim()}` : '';
      errors.push(`${s.label}: ${msgs.join('; ')}${at}`);
    }
    checked.compiled++;
  }
  return errors;
}

function planSources(opts: CompileOptions & { graph: Graph }): { label: string; wgsl: string; features: string[] }[] {
  const { plan, wgsl } = compileGraph(opts.graph, opts);
  return plan.kernels.map((k) => ({ label: `${plan.graph.name}/${k.id}`, wgsl: wgsl.get(k.id)!, features: k.features }));
}

describe('emitted WGSL compiles (shader modules, no pipelines)', function () {
  this.timeout(120_000);
  let gpu: GpuContext;
  const seen = new Set<string>();
  const checked: Checked = { compiled: 0, skipped: [] };

  before(async () => { gpu = await testGpu(); });
  after(() => {
    if (process.env.LSC_TEST_VERBOSE) console.log(`      ${checked.compiled} distinct modules compiled, ${checked.skipped.length} skipped`);
  });

  for (const entry of CATALOG) {
    it(`graphs/${entry.name}.json: every kernel, for GPU and CPU-driver defaults and this adapter's tuning`, async () => {
      const { graph, file } = readGraph(entry.name);
      const variants: CompileOptions[] = [
        { file, target: 'gpu' },
        { file, target: 'cpu' },
        // what LscModel.load compiles on this adapter: the tuning database's decisions
        { file, target: gpu.isCpu ? 'cpu' : 'gpu', tuning: loadTuning(gpu) },
      ];
      const before = checked.compiled;
      const errors: string[] = [];
      for (const v of variants) errors.push(...await shaderErrors(gpu, planSources({ ...v, graph }), seen, checked));
      assert.deepEqual(errors, [], `WGSL that does not compile:\n${errors.join('\n')}`);
      assert.ok(checked.compiled > before, 'compiled at least one new module');
    });
  }

  it("tiny-code: every tunable kernel with every candidate configuration of the tuner", async () => {
    const { graph, file } = readGraph('tiny-code');
    const { tunables } = compileGraph(graph, { file });
    assert.deepEqual([...new Set(tunables.map((t) => t.family))].sort(), ['argmax', 'attention', 'matmul']);
    // with subgroups, the tuner also tries subgroup reductions for every split up to the subgroup size
    const subgroupSize = gpu.features.has('subgroups') ? 32 : 0;
    const sources: { label: string; wgsl: string; features: string[] }[] = [];
    const notEmitted: string[] = [];
    let tried = 0;
    for (const t of tunables) {
      for (const cfg of candidates(t, subgroupSize)) {
        tried++;
        const label = `${t.family} ${JSON.stringify(cfg)} of ${t.key.slice(0, 60)}`;
        try {
          const src = t.emit(cfg);
          sources.push({ label, wgsl: src.wgsl, features: src.features });
        } catch (e) {
          // the tuner scores a config it cannot emit as infinitely slow; record which
          notEmitted.push(`${label}: ${(e as Error).message}`);
        }
      }
    }
    const errors = await shaderErrors(gpu, sources, seen, checked);
    assert.deepEqual(errors, [], `WGSL that does not compile:\n${errors.join('\n')}`);
    if (process.env.LSC_TEST_VERBOSE) console.log(`      ${tried} configs, ${sources.length} emitted, not emitted:\n${notEmitted.join('\n')}`);
    // a candidate the emitter rejects is a wasted tuning slot, never most of them
    assert.ok(notEmitted.length <= tried / 4, `${notEmitted.length} of ${tried} candidates cannot be emitted:\n${notEmitted.join('\n')}`);
  });

  it('the runtime kernel of GPU acceptance (codegen/accept.ts)', async () => {
    const errors = await shaderErrors(gpu, [{ label: 'accept', wgsl: emitAccept(), features: [] }], new Set(), { compiled: 0, skipped: [] });
    assert.deepEqual(errors, []);
  });

  it('a broken kernel is reported (the check above can fail)', async () => {
    const errors = await shaderErrors(gpu, [{ label: 'broken', wgsl: '@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }', features: [] }],
      new Set(), { compiled: 0, skipped: [] });
    assert.equal(errors.length, 1);
    assert.match(errors[0], /^broken: \d+:\d+ /);
  });
});
