/**
 * Import cycles between the source modules, from the import graph of the .ts sources (every
 * import and re-export, type-only ones included: stricter than what runs). runtime/ must have
 * none, and no module cycle may remain anywhere but between compiler/ and codegen/. Between those
 * two directories imports go both ways (the compiler's passes call the emitters and plan.ts names
 * KernelSource; the emitters read the kernel IR of compiler/passes/fuse.ts): a directory-level
 * cycle that moving the kernel IR out of the fusion pass removes; LSC_TEST_VERBOSE=1 prints those
 * imports, and any module cycle among them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SOURCE_DIRS = ['compiler', 'codegen', 'runtime', 'cli', 'bench'];

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

  it('no import cycle involves a runtime/ module', () => {
    const bad = all.filter((scc) => scc.some((f) => f.startsWith(`runtime${path.sep}`)));
    assert.deepEqual(bad.map((scc) => cycleThrough(graph, scc, scc.find((f) => f.startsWith('runtime'))!).join(' -> ')), []);
  });

  it('module cycles only between compiler/ and codegen/ (LSC_TEST_VERBOSE=1 prints them and the imports between the two)', () => {
    if (process.env.LSC_TEST_VERBOSE) {
      for (const [from, to] of [['compiler', 'codegen'], ['codegen', 'compiler']]) {
        const edges = [...graph].flatMap(([f, deps]) => (f.startsWith(from + path.sep) ? deps.filter((d) => d.startsWith(to + path.sep)).map((d) => `${f} -> ${d}`) : []));
        console.log(`      ${from}/ -> ${to}/: ${edges.length ? edges.join('; ') : 'none'}`);
      }
      if (!all.length) console.log('      no module cycles');
    }
    for (const scc of all) {
      const dirs = new Set(scc.map((f) => f.split(path.sep)[0]));
      assert.ok([...dirs].every((d) => d === 'compiler' || d === 'codegen'), `a cycle outside compiler/ and codegen/: ${scc.join(', ')}`);
      if (process.env.LSC_TEST_VERBOSE) {
        console.log(`      cycle of ${scc.length} modules: ${scc.join(', ')}`);
        for (const f of scc.filter((x) => x.startsWith('compiler'))) {
          const c = cycleThrough(graph, scc, f);
          if (c.some((x) => x.startsWith('codegen'))) { console.log(`        e.g. ${c.join(' -> ')}`); break; }
        }
      }
    }
  });
});
