/**
 * The import graph of the .ts sources (every import and re-export, type-only ones included:
 * stricter than what runs), and the layering it must keep:
 *   - compiler/ir/* and compiler/errors.ts import nothing from codegen/ or compiler/passes/
 *     (the kernel IR, compiler/ir/kernel.ts, is what both sides share);
 *   - codegen/* imports, from compiler/, only compiler/ir/* and compiler/errors.ts: never a pass,
 *     plan.ts or compile.ts (a kernel family knows the kernel IR, not the pipeline around it);
 *   - the compiler's passes and compile.ts reach the kernel families through codegen/registry.ts;
 *   - no module cycle anywhere (runtime/ included).
 * LSC_TEST_VERBOSE=1 prints the imports between compiler/ and codegen/.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SOURCE_DIRS = ['compiler', 'codegen', 'runtime', 'server', 'cli', 'bench'];

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [rel] : [];
  });
}

/** Module -> the modules it imports (relative imports only, as repository paths). */
function importGraph(files: string[]): Map<string, string[]> {
  const known = new Set(files);
  return new Map(files.map((f) => {
    const info = ts.preProcessFile(fs.readFileSync(path.join(root, f), 'utf8'), true, true);
    const deps = info.importedFiles.map((i) => i.fileName).filter((s) => s.startsWith('.'))
      .map((s) => path.normalize(path.join(path.dirname(f), s)).replace(/\.js$/, '.ts'))
      .filter((d) => known.has(d));
    return [f, [...new Set(deps)]];
  }));
}

/** Strongly connected components of more than one module (Tarjan): each holds a cycle. */
function cycles(g: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** One cycle through `from` inside `scc`, as a path (breadth-first, so the shortest). */
function cycleThrough(g: Map<string, string[]>, scc: string[], from: string): string[] {
  const inScc = new Set(scc);
  const prev = new Map<string, string>();
  const queue = [from];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of g.get(v) ?? []) {
      if (!inScc.has(w)) continue;
      if (w === from) {
        const p = [v];
        while (p[0] !== from) p.unshift(prev.get(p[0])!);
        return [...p, from];
      }
      if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
    }
  }
  return [from];
}

describe('import cycles between source modules', () => {
  const graph = importGraph(SOURCE_DIRS.flatMap(sources));
  const all = cycles(graph);

  it('reads the import graph of every source module', () => {
    assert.ok(graph.size > 50, `${graph.size} modules`);
    assert.ok(graph.get(path.join('runtime', 'model.ts'))!.includes(path.join('runtime', 'executor.ts')));
  });

  it('no module cycle anywhere (runtime/ included)', () => {
    assert.deepEqual(all.map((scc) => cycleThrough(graph, scc, scc[0]).join(' -> ')), []);
  });

  const edges = (from: (f: string) => boolean, to: (f: string) => boolean): string[] =>
    [...graph].flatMap(([f, deps]) => (from(f) ? deps.filter(to).map((d) => `${f} -> ${d}`) : []));
  const under = (dir: string) => (f: string): boolean => f.startsWith(dir.split('/').join(path.sep) + path.sep);
  const is = (file: string) => (f: string): boolean => f === file.split('/').join(path.sep);

  it('compiler/ir/ and compiler/errors.ts import nothing from codegen/ or compiler/passes/', () => {
    const low = (f: string): boolean => under('compiler/ir')(f) || is('compiler/errors.ts')(f);
    assert.deepEqual(edges(low, (d) => under('codegen')(d) || under('compiler/passes')(d)), []);
  });

  it('codegen/ imports from compiler/ only compiler/ir/ and compiler/errors.ts (LSC_TEST_VERBOSE=1 prints the imports between the two)', () => {
    if (process.env.LSC_TEST_VERBOSE) {
      console.log(`      codegen/ -> compiler/: ${edges(under('codegen'), under('compiler')).join('; ') || 'none'}`);
      console.log(`      compiler/ -> codegen/: ${edges(under('compiler'), under('codegen')).join('; ') || 'none'}`);
    }
    const allowed = (d: string): boolean => under('compiler/ir')(d) || is('compiler/errors.ts')(d);
    assert.deepEqual(edges(under('codegen'), (d) => under('compiler')(d) && !allowed(d)), []);
  });

  it('the compiler passes reach kernel families only through codegen/registry.ts (and the shared codegen/family.ts, codegen/kernel.ts)', () => {
    const shared = (d: string): boolean => ['codegen/registry.ts', 'codegen/family.ts', 'codegen/kernel.ts'].some((f) => is(f)(d));
    const passes = (f: string): boolean => under('compiler/passes')(f) || is('compiler/compile.ts')(f);
    assert.deepEqual(edges(passes, (d) => under('codegen')(d) && !shared(d)), []);
    assert.ok(edges(passes, is('codegen/registry.ts')).length > 0, 'the passes use the registry');
  });
});
