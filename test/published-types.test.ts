import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { ROOT } from './helpers/run-cli.js';

/**
 * The published declarations, as a strict consumer sees them: a package in a temp dir that
 * depends on lsc by path (node_modules/lsc → this repository, as npm link makes it; no registry)
 * and type-checks against dist/*.d.ts with strict on and skipLibCheck off.
 */
const CONSUMER = `import { LscModel, ChatTemplate, LscError, type ChatMessage, type GenerateResult, type GpuBytes } from 'lsc';
import { compileGraph, buildLlamaGraph } from 'lsc/compiler';

export async function use(dir: string): Promise<[GenerateResult, GpuBytes, GPUDevice]> {
  const seen: string[] = [];
  const model = await LscModel.load(dir, {
    onProgress: (done: number, total: number, tensor: string) => { seen.push(\`\${tensor} \${done}/\${total}\`); },
  });
  const messages: ChatMessage[] = [{ role: 'user', content: 'hi' }];
  const prompt: string = model.chatTemplate.render(messages);
  for await (const chunk of model.chat(messages, { maxNewTokens: 4 })) seen.push(chunk.text);
  const r = await model.complete(prompt, { strategy: 'autoregressive' });
  void [ChatTemplate, LscError, compileGraph, buildLlamaGraph];
  return [r, model.gpuBytes, model.gpu.device];
}
`;

describe('published types (dist/*.d.ts) for a strict consumer', function () {
  this.timeout(120_000);
  let tmp: string;
  before(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-consumer-')); });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('a consumer importing lsc and lsc/compiler type-checks with --strict and no skipLibCheck (GPU types from @webgpu/types)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    assert.ok(pkg.dependencies['@webgpu/types'], '@webgpu/types is a dependency, so consumers get it installed');
    fs.mkdirSync(path.join(tmp, 'node_modules', '@types'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(tmp, 'node_modules', 'lsc'), 'dir');
    fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(tmp, 'node_modules', '@types', 'node'), 'dir');
    fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
    const file = path.join(tmp, 'use.ts');
    fs.writeFileSync(file, CONSUMER);
    const program = ts.createProgram([file], {
      strict: true, noEmit: true, skipLibCheck: false, target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    });
    const errors = ts.getPreEmitDiagnostics(program).map((d) =>
      `${d.file ? path.relative(tmp, d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    assert.deepEqual(errors, []);
    // the declarations checked are the built ones, reached through the package name
    assert.ok(program.getSourceFiles().some((f) => f.fileName.endsWith('/dist/runtime/index.d.ts')), 'dist/runtime/index.d.ts was read');
  });
});
