import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { formatDot } from '../cli/inspect-dot.js';
import { formatHtml } from '../cli/inspect-html.js';
import { viewModel } from '../cli/inspect-view.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function load(name: string) {
  const file = path.join(root, 'graphs', `${name}.json`);
  const graph = JSON.parse(fs.readFileSync(file, 'utf8')) as Graph;
  return { graph, plan: compileGraph(graph, { file }).plan, file };
}

/** Node ids declared in DOT (`"id" [...]`) and the edges (`"a" -> "b"`). */
function parseDot(dot: string): { nodes: Set<string>; edges: [string, string][]; clusters: string[] } {
  const nodes = new Set<string>();
  const edges: [string, string][] = [];
  const clusters: string[] = [];
  for (const line of dot.split('\n').map((l) => l.trim())) {
    const e = /^"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)"/.exec(line);
    if (e) { edges.push([e[1], e[2]]); continue; }
    const n = /^"((?:[^"\\]|\\.)*)" \[/.exec(line);
    if (n) nodes.add(n[1]);
    const c = /^subgraph "(cluster_[^"]+)"/.exec(line);
    if (c) clusters.push(c[1]);
  }
  return { nodes, edges, clusters };
}

describe('lsc inspect --format dot|html (cli/inspect-*.ts)', () => {
  for (const name of ['tiny-code', 'tiny-code-deep', 'llama2-7b', 'llama3.2-1b']) {
    it(`${name}: DOT declares every edge's ends, one cluster per multi-node kernel, the exit and verify nodes`, () => {
      const { graph, plan, file } = load(name);
      const v = viewModel(graph, plan, file);
      const dot = formatDot(v);
      assert.match(dot, /^digraph "[^"]+" \{\n/);
      assert.ok(dot.trimEnd().endsWith('}'));
      // braces balance outside quoted strings
      const unquoted = dot.replace(/"(?:[^"\\]|\\.)*"/g, '""');
      assert.equal((unquoted.match(/\{/g) ?? []).length, (unquoted.match(/\}/g) ?? []).length);
      const { nodes, edges, clusters } = parseDot(dot);
      for (const [a, b] of edges) assert.ok(nodes.has(a) && nodes.has(b), `edge ${a} -> ${b} has an undeclared end`);
      for (const n of graph.blocks.decoder.nodes) assert.ok(nodes.has(`decoder/${n.id}`), n.id);
      for (const n of graph.body.filter((x) => x.op !== 'repeat')) assert.ok(nodes.has(n.id), n.id);
      assert.ok(nodes.has('exit_point') && nodes.has('verify_subgraph'));
      // a Llama layer is 5 kernels; 4 of them fuse several nodes (attention stands alone)
      assert.equal(clusters.filter((c) => c.startsWith('cluster_blockk')).length, 4);
      assert.equal(v.block.nodes.filter((n) => n.kernel === undefined).length, 0, 'every block node is placed in a kernel');
    });

    it(`${name}: the HTML page is self-contained and lists every entry point, kernel and buffer`, () => {
      const { graph, plan, file } = load(name);
      const html = formatHtml(graph, plan, viewModel(graph, plan, file));
      assert.match(html, /^<!doctype html>/);
      // one inline script (the page's own, allowed by hash in its Content-Security-Policy), nothing fetched
      assert.equal((html.match(/<script>/g) ?? []).length, 1, 'one inline script');
      assert.doesNotMatch(html, /<script[^>]* src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'nothing fetched');
      assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
      for (const e of plan.entries) assert.ok(html.includes(`<td class="mono">${e.name}</td>`), e.name);
      for (const k of plan.kernels) assert.ok(html.includes(`id="kernel-${k.id}"`), k.id);
      // buffers grouped across layers (w:wq.{L} ×L): every buffer counted once
      const counts = [...html.matchAll(/<tr class="group" data-count="(\d+)">/g)].map((m) => Number(m[1]));
      assert.equal(counts.reduce((a, b) => a + b, 0), plan.buffers.length);
      // the layer strip: one box per layer and a marker per exit candidate
      assert.equal((html.match(/<title>layer \d+<\/title>/g) ?? []).length, plan.dims.layers);
      assert.equal((html.match(/<title>exit after layer/g) ?? []).length, graph.exit.candidates.length);
      // tags balance (void elements aside)
      const tags = [...html.matchAll(/<(\/?)([a-z]+)[^>]*?(\/?)>/g)].filter((m) => !['meta', 'link', '!doctype'].includes(m[2]) && m[3] !== '/');
      const stack: string[] = [];
      for (const [, close, tag] of tags) {
        if (!close) stack.push(tag);
        else assert.equal(stack.pop(), tag, `</${tag}> closes something else`);
      }
      assert.deepEqual(stack, []);
    });
  }
});
