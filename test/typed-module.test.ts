import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Project, ts } from 'ts-morph';
import { compileGraph } from '../compiler/compile.js';
import { emitTypedModule } from '../compiler/typed-module.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Type-checks `use` against the module generated for tiny-code; returns the error messages. */
function typeErrors(use: string): string[] {
  const graph = JSON.parse(fs.readFileSync(path.join(root, 'graphs/tiny-code.json'), 'utf8'));
  const { plan } = compileGraph(graph);
  const project = new Project({
    compilerOptions: {
      strict: true, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
      target: ts.ScriptTarget.ES2022, skipLibCheck: true, noEmit: true, types: ['node', '@webgpu/types'],
      typeRoots: [path.join(root, 'node_modules/@types'), path.join(root, 'node_modules/@webgpu')],
      baseUrl: root, paths: { lsc: ['runtime/index.ts'] },
    },
  });
  const dir = path.join(root, '.typed-module-test');
  project.createSourceFile(path.join(dir, 'model.ts'), emitTypedModule(plan), { overwrite: true });
  project.createSourceFile(path.join(dir, 'use.ts'), use, { overwrite: true });
  return project.getPreEmitDiagnostics()
    .filter((d) => d.getSourceFile()?.getFilePath().startsWith(dir))
    .map((d) => ts.flattenDiagnosticMessageText(d.getMessageText() as string | ts.DiagnosticMessageChain, '\n'));
}

describe('typed module for embedders (lsc compile --emit-ts)', function () {
  this.timeout(120_000);

  it('type-checks a correct use, and rejects an exit layer or k the plan does not have', () => {
    const ok = typeErrors(`import { load, dims, exitCandidates, type ExitLayer } from './model.js';
const e: ExitLayer = 3;
export async function f(): Promise<number> {
  const m = await load('examples/models/tiny-code');
  const r = await m.complete('def f():', { strategy: 'self-speculative', exitLayer: e, numSpeculations: 4 });
  m.dispose();
  return r.tokens.length + dims.vocab + exitCandidates.length;
}`);
    assert.deepEqual(ok, []);
    const bad = typeErrors(`import { load } from './model.js';
export async function f(): Promise<void> {
  const m = await load('x');
  await m.complete('p', { exitLayer: 8 });
  await m.complete('p', { numSpeculations: 9 });
}`);
    assert.equal(bad.length, 2, bad.join('\n'));
    assert.match(bad[0], /'8' is not assignable/);
    assert.match(bad[1], /'9' is not assignable/);
  });
});
