/**
 * Emitted WGSL reads like written code: every kernel file starts with a header naming the graph
 * nodes it computes and its configuration, has a readable name, and carries no generator
 * leftovers: no `if (true)`, no `+ 0u` / `- 0u` / `* 1u`, no `let` whose value is never read.
 * Kernels of every graph in graphs/, compiled for WebGPU's default limits (so the sliced and the
 * split-over-kernels matmuls of 13B..70B are included) and for 16 storage buffers. Pure: no GPU.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { emitAccept } from '../codegen/accept.js';
import { acceptStopKernel, draftGateKernel } from '../codegen/draft-gate.js';
import { candidates } from '../runtime/tuner.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** `let` bindings never read before the end of their block, as "name (line n)". */
export function unusedLets(wgsl: string): string[] {
  const out: string[] = [];
  for (const m of wgsl.matchAll(/\blet\s+([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]+)?=[^;]*;/g)) {
    const after = m.index! + m[0].length;
    // the end of the enclosing block: the first unmatched '}'
    let depth = 0;
    let end = wgsl.length;
    for (let i = after; i < wgsl.length; i++) {
      if (wgsl[i] === '{') depth++;
      else if (wgsl[i] === '}' && depth-- === 0) { end = i; break; }
    }
    if (!new RegExp(`\\b${m[1]}\\b`).test(wgsl.slice(after, end))) out.push(`${m[1]} (line ${wgsl.slice(0, m.index).split('\n').length})`);
  }
  return out;
}

function leftovers(wgsl: string): string[] {
  const found: string[] = [];
  for (const re of [/if \(true\)/, /[+-] 0u\b/, /\* 1u\b/, /\n\n\n/]) if (re.test(wgsl)) found.push(re.source);
  return [...found, ...unusedLets(wgsl).map((l) => `unused let ${l}`)];
}

describe('emitted WGSL: headers, names, no generator leftovers', () => {
  const graphs = fs.readdirSync(path.join(root, 'graphs')).filter((f) => f.endsWith('.json')).sort();

  it('the checks see what they look for', () => {
    assert.deepEqual(unusedLets('fn main() {\n  let a = 1u;\n  let b = a + 2u;\n  { let c = b; }\n  x[b] = 0u;\n}'), ['c (line 4)']);
    assert.deepEqual(leftovers('if (true) { let q = t + 0u; y = q * 1u; }'), ['if \\(true\\)', '[+-] 0u\\b', '\\* 1u\\b']);
  });

  for (const file of graphs) {
    for (const storage of [undefined, 16]) {
      it(`${file.slice(0, -5)}${storage ? ', 16 storage buffers' : ''}: every kernel has a header and no leftovers`, () => {
        const full = path.join(root, 'graphs', file);
        const { plan, wgsl } = compileGraph(JSON.parse(fs.readFileSync(full, 'utf8')) as Graph,
          { file: full, limits: storage ? { maxStorageBuffersPerShaderStage: storage } : {} });
        const problems: string[] = [];
        for (const k of plan.kernels) {
          const code = wgsl.get(k.id)!;
          const head = code.split('\n').slice(0, 4);
          assert.match(head[0], new RegExp(`^// ${k.name}: lsc ${k.family} kernel$`), k.id);
          assert.equal(head[1], `// graph nodes (first use): ${k.fused.join(', ') || 'none'}`, k.id);
          // every kernel computes graph nodes but the acceptance kernels, which read verify's picks, and the draft stop's gate
          const outside = [plan.accept.kernel, plan.batchAccept?.kernel, plan.draftStop?.accept.kernel, plan.draftStop?.gate.kernel];
          assert.ok(k.fused.length > 0 || outside.includes(k.id), k.id);
          assert.match(head[2], /^\/\/ config: /, k.id);
          for (const [key, v] of Object.entries(k.config)) assert.ok(head[2].includes(`${key} ${v}`), `${k.id}: config ${key} missing from ${head[2]}`);
          assert.match(k.name, /^[a-z0-9]+(_[a-z0-9]+)*$/, k.id);
          const bad = leftovers(code);
          if (bad.length) problems.push(`${k.id}: ${bad.join(', ')}`);
        }
        assert.deepEqual(problems, []);
      });
    }
  }

  it('every tuning candidate of the sliced 13B kernels and of tiny-code (both targets) has no leftovers', () => {
    const problems: string[] = [];
    for (const [name, target] of [['llama2-13b', 'gpu'], ['tiny-code', 'gpu'], ['tiny-code', 'cpu']] as const) {
      const full = path.join(root, 'graphs', `${name}.json`);
      const { tunables } = compileGraph(JSON.parse(fs.readFileSync(full, 'utf8')) as Graph, { file: full, target });
      for (const t of tunables) {
        if (name === 'llama2-13b' && !t.key.includes('pieces')) continue;
        for (const cfg of candidates(t, 32)) {
          const bad = leftovers(t.emit(cfg).wgsl);
          if (bad.length) problems.push(`${name} ${t.family} ${JSON.stringify(cfg)}: ${bad.join(', ')}`);
        }
      }
    }
    assert.deepEqual(problems.slice(0, 10), []);
  });

  it('the acceptance kernels and the draft gate have no leftovers', () => {
    assert.deepEqual(leftovers(emitAccept()), []);
    assert.deepEqual(leftovers(acceptStopKernel().wgsl), []);
    assert.deepEqual(leftovers(draftGateKernel().wgsl), []);
  });
});
