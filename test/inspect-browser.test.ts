import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import type { Plan } from '../compiler/plan.js';
import { CostModel } from '../cli/inspect-cost.js';
import { formatHtml } from '../cli/inspect-html.js';
import { PlanFigures } from '../cli/inspect-kernels.js';
import { readKernelProfile } from '../cli/inspect-profile.js';
import { viewModel } from '../cli/inspect-view.js';
import { ROOT } from './helpers/run-cli.js';

/**
 * The HTML view (`lsc inspect --format html`) in a real browser: Debian's chromium, headless,
 * driven by puppeteer-core (scripts/setup.sh installs it for the tests). DOM assertions at 800
 * and 1400 px; screenshots go to the temp dir (lsc-viewer-*.png).
 */
// what the page callbacks use of the browser's globals (the tests compile without the DOM lib)
interface El { getAttribute(n: string): string | null; getBoundingClientRect(): { left: number; right: number; width: number }; textContent: string | null; querySelector(s: string): El | null }
declare const document: { querySelectorAll(s: string): Iterable<El> & ArrayLike<El>; querySelector(s: string): El | null; documentElement: { scrollWidth: number; clientWidth: number };
  title: string; scripts: ArrayLike<unknown>; images: ArrayLike<unknown>; body: El };
declare const window: unknown;
declare function getComputedStyle(e: unknown): { display: string; backgroundColor: string };

const CHROMIUM = process.env.LSC_CHROMIUM ?? '/usr/bin/chromium';
const WIDTHS = [800, 1400];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-viewer-'));

interface Loaded { graph: Graph; plan: Plan; wgsl: Map<string, string>; file: string }
function load(graph: Graph, file: string): Loaded {
  const c = compileGraph(graph, { file });
  return { graph, plan: c.plan, wgsl: c.wgsl, file };
}
const graphFile = (name: string): Loaded => {
  const file = path.join(ROOT, 'graphs', `${name}.json`);
  return load(JSON.parse(fs.readFileSync(file, 'utf8')) as Graph, file);
};

describe('lsc inspect --format html in a browser (chromium + puppeteer-core)', function () {
  this.timeout(120_000);
  let browser: Browser;
  const problems: string[] = [];

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`no browser at ${CHROMIUM}: the viewer tests need Debian's chromium (LSC_SETUP_BROWSER=1 bash scripts/setup.sh, or apt-get install chromium; LSC_CHROMIUM=path for another)`);
    }
    browser = await puppeteer.launch({
      executablePath: CHROMIUM, headless: true,
      args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
    });
  });
  after(async () => {
    await browser?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Opens the page at a width; console errors and page errors are collected into `problems`. */
  async function open(html: string, name: string, width: number): Promise<Page> {
    const file = path.join(dir, `${name}.html`);
    fs.writeFileSync(file, html);
    const page = await browser.newPage();
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warn') problems.push(`${name}@${width}: console ${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => { problems.push(`${name}@${width}: page error: ${(e as Error).message}`); });
    page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) problems.push(`${name}@${width}: fetched ${r.url()}`); });
    await page.setViewport({ width, height: 900 });
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    return page;
  }
  const noProblems = (): void => { assert.deepEqual(problems.splice(0), [], 'no console errors, page errors or requests'); };

  for (const name of ['tiny-code', 'llama2-7b']) {
    for (const width of WIDTHS) {
      it(`${name} at ${width} px: every layer within the window, one exit view per compiled exit, grouped buffers, kernel panels with WGSL and bytes/FLOPs`, async () => {
        const m = graphFile(name);
        const page = await open(formatHtml(m.graph, m.plan, viewModel(m.graph, m.plan, m.file), { wgsl: m.wgsl, file: m.file }), `${name}-${width}`, width);
        try {
          // the SVG scales: every layer box inside the viewport, and the page does not scroll sideways
          const layout = await page.evaluate(() => ({
            layers: [...document.querySelectorAll('#layer-strip rect.layer')].map((r) => { const b = r.getBoundingClientRect(); return [b.left, b.right, b.width]; }),
            scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
          }));
          assert.equal(layout.layers.length, m.plan.dims.layers);
          for (const [l, [left, right, w]] of layout.layers.entries()) {
            assert.ok(left >= 0 && right <= layout.clientWidth && w >= 4, `layer ${l} at [${left}, ${right}] of ${layout.clientWidth} px`);
          }
          assert.ok(layout.scrollWidth <= layout.clientWidth, `page is ${layout.scrollWidth} px wide in a ${layout.clientWidth} px window`);
          await page.screenshot({ path: path.join(os.tmpdir(), `lsc-viewer-${name}-${width}.png`) });

          // the exit picker lists every compiled exit; picking one redraws the draft/verify spans
          const options = await page.$$eval('#exit-picker option', (os) => os.map((o) => Number((o as unknown as { value: string }).value)));
          assert.deepEqual(options, m.plan.exits.candidates);
          const layerBox = async (l: number) => page.$eval(`#layer-strip rect.layer[data-layer="${l}"]`, (r) => { const b = r.getBoundingClientRect(); return { left: b.left, right: b.right }; });
          for (const E of options) {
            await page.select('#exit-picker', String(E));
            const shown = await page.$$eval('#layer-strip g.exit-view', (gs) => gs.filter((g) => getComputedStyle(g).display !== 'none').map((g) => g.getAttribute('data-exit')));
            assert.deepEqual(shown, [String(E)], `E=${E}: only its spans drawn`);
            const draft = await page.$eval(`g.exit-view[data-exit="${E}"] rect.span-draft`, (r) => { const b = r.getBoundingClientRect(); return { left: b.left, right: b.right }; });
            const first = await layerBox(0);
            const lastDrafted = await layerBox(E - 1);
            assert.ok(Math.abs(draft.left - first.left) < 1 && draft.right >= lastDrafted.right - 1, `E=${E}: the draft span covers layers 0..${E - 1}`);
            if (E < m.plan.dims.layers) {
              const deep = await page.$$eval(`g.exit-view[data-exit="${E}"] rect.span-verify`, (rs) => rs.map((r) => r.getBoundingClientRect().left));
              const firstDeep = await layerBox(E);
              assert.ok(deep.some((x) => Math.abs(x - firstDeep.left) < 1), `E=${E}: verify runs the deep layers from layer ${E}`);
            }
            const rows = await page.$$eval('#entries tr.entry', (trs) => trs.filter((t) => getComputedStyle(t).display !== 'none').map((t) => t.getAttribute('data-entry')));
            assert.deepEqual(rows, ['prefill', 'decode', `prefill@${E}`, `draft@${E}`, `verify@${E}`], `E=${E}: the entry points of that exit`);
          }

          // buffers grouped across layers, with counts
          const groups = await page.$$eval('#buffers tr.group', (trs) => trs.map((t) => ({ count: Number(t.getAttribute('data-count')), text: t.textContent ?? '' })));
          assert.equal(groups.reduce((a, g) => a + g.count, 0), m.plan.buffers.length, 'every buffer in one group');
          assert.ok(groups.length <= 24, `${groups.length} rows for ${m.plan.buffers.length} buffers`);
          const L = m.plan.dims.layers;
          assert.ok(groups.some((g) => g.count === L && g.text.includes(`×${L}`) && g.text.includes('{L}')), `a group of ${L} per-layer buffers`);

          // a kernel link opens its panel: WGSL and bytes/FLOPs per dispatch (those of cli/inspect-cost.ts)
          const link = await page.$('table.nodes a.kernel-link');
          const id = await link!.evaluate((a) => a.getAttribute('data-kernel')!);
          await link!.click();
          const panel = await page.$eval(`details.kernel[id="kernel-${id}"]`, (d) => ({
            open: (d as unknown as { open: boolean }).open,
            wgsl: d.querySelector('pre.wgsl')?.textContent ?? '',
            read: Number(d.querySelector('.cost-read')?.getAttribute('data-bytes')),
            write: Number(d.querySelector('.cost-write')?.getAttribute('data-bytes')),
            flops: Number(d.querySelector('.cost-flops')?.getAttribute('data-flops')),
            visible: d.querySelector('pre.wgsl')!.getBoundingClientRect().width > 0,
          }));
          assert.ok(panel.open && panel.visible, `clicking ${id} opens its panel`);
          assert.equal(panel.wgsl, m.wgsl.get(id), 'the panel shows the kernel\'s WGSL as text');
          const fig = new PlanFigures(m.plan, new CostModel(m.graph, m.plan, m.file));
          const use = fig.firstUse(m.plan.kernels.find((k) => k.id === id)!)!;
          const c = fig.cost.cost(use.dispatch, fig.rows(use.stage), fig.position);
          assert.deepEqual({ read: panel.read, write: panel.write, flops: panel.flops }, { read: c.readBytes, write: c.writeBytes, flops: c.flops });
          assert.ok(c.readBytes > 0 && c.writeBytes > 0 && c.flops > 0);
          noProblems();
        } finally {
          await page.close();
        }
      });
    }
  }

  for (const width of WIDTHS) {
    it(`tiny-code with --profile at ${width} px: kernels coloured by measured time, slowest darkest; the entry picker repaints`, async () => {
      const m = graphFile('tiny-code');
      const entries = ['decode', 'draft@2'].map((name) => m.plan.entries.find((e) => e.name === name)!);
      // times that differ by kernel: the attention is slowest in decode, the head in the draft
      // the head kernel (final norm + LM head) is the one named rmsnorm_matmul_<hash> with nothing fused after the matmul
      const HEAD = /^rmsnorm_matmul_[0-9a-f]+$/;
      const ms = (entry: string, kernel: string): number => (entry === 'decode' ? (kernel.startsWith('attention') ? 3 : 0.5) : HEAD.test(kernel) ? 4 : 0.25);
      const profile = {
        plan: { graph: m.plan.graph.name, hash: m.plan.graph.hash }, position: 512,
        entries: entries.map((e) => ({ entry: e.name, rows: 1, dispatches: e.stages[0].dispatches.map((d) => ({ kernel: d.kernel, nodes: d.nodes, ms: ms(e.name, d.kernel) })) })),
      };
      const pf = path.join(dir, `profile-${width}.json`);
      fs.writeFileSync(pf, JSON.stringify({ profile: { kernels: profile } }));
      const times = readKernelProfile(pf, m.plan);
      const page = await open(formatHtml(m.graph, m.plan, viewModel(m.graph, m.plan, m.file), { wgsl: m.wgsl, profile: times, file: m.file }), `profile-${width}`, width);
      try {
        const paint = () => page.$$eval('.heat[data-kernel]', (els) => els.map((e) => ({
          kernel: e.getAttribute('data-kernel')!, ms: e.getAttribute('data-ms'), bg: getComputedStyle(e).backgroundColor,
        })));
        const lightness = (rgb: string): number => { const [r, g, b] = rgb.match(/\d+/g)!.map(Number); return (Math.max(r, g, b) + Math.min(r, g, b)) / 2; };
        const check = async (entry: number, slowest: RegExp) => {
          const cells = await paint();
          const byKernel = times.entries[entry].byKernel;
          for (const c of cells) {
            const t = byKernel.get(c.kernel);
            if (!t) { assert.equal(c.ms, null, `${c.kernel}: not measured, not coloured`); continue; }
            assert.equal(Number(c.ms), t.ms, `${c.kernel}: its summed time`);
            assert.notEqual(c.bg, 'rgba(0, 0, 0, 0)', `${c.kernel}: coloured`);
          }
          const measured = cells.filter((c) => c.ms !== null);
          const darkest = measured.reduce((a, b) => (lightness(b.bg) < lightness(a.bg) ? b : a));
          assert.match(darkest.kernel, slowest, `darkest is ${darkest.kernel}`);
          assert.ok(new Set(measured.map((c) => c.bg)).size > 1, 'colours differ with time');
        };
        await check(0, /^attention/);
        const label = await page.$eval('details.kernel .kernel-time', (e) => e.textContent ?? '');
        assert.match(label, /ms in decode \(\d+\.\d%\)/);
        await page.select('#profile-entry', '1');
        await check(1, HEAD);
        noProblems();
      } finally {
        await page.close();
      }
    });
  }

  it('a graph whose name and doc hold <script> and quotes is shown as text: nothing injected runs', async () => {
    const m0 = graphFile('tiny-code');
    const name = `x"><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'`;
    const graph: Graph = { ...m0.graph, name, doc: `doc </script><script>window.__pwned=3</script> "quoted" & 'single' <b>bold</b>` };
    const m = load(graph, m0.file);
    const page = await open(formatHtml(m.graph, m.plan, viewModel(m.graph, m.plan, m.file), { wgsl: m.wgsl, file: m.file }), 'inject', 800);
    try {
      const seen = await page.evaluate(() => ({
        pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
        h1: document.querySelector('h1')!.textContent, title: document.title,
        scripts: document.scripts.length, imgs: document.images.length, bold: document.querySelectorAll('b').length,
        doc: document.body.textContent!.includes(`"quoted" & 'single' <b>bold</b>`),
        picker: document.querySelectorAll('#exit-picker option').length,
      }));
      assert.equal(seen.pwned, null, 'no injected script ran');
      assert.equal(seen.h1, name);
      assert.ok(seen.title.startsWith(name));
      assert.equal(seen.scripts, 2, 'the data and the page script only');
      assert.equal(seen.imgs, 0);
      assert.ok(seen.doc, 'the doc string shown as text');
      assert.equal(seen.picker, m.plan.exits.candidates.length, 'the page script still ran');
      noProblems();
    } finally {
      await page.close();
    }
  });
});
