/**
 * tiny-code decode throughput in the page (headless chromium, WebGPU on SwiftShader) and in Node
 * (dawn.node on lavapipe), on the same plan: f32 KV cache, CPU-driver kernels, untuned. The two
 * adapters are different CPU rasterizers sharing this machine's cores, so the ratio compares
 * adapters as much as runtimes. Each prompt of examples/prompts/code.json runs once to warm up, then
 * `--repeat` times per strategy, alternating page and Node; medians of tok/s are printed.
 *
 *   node dist/bench/web-vs-node.js [--repeat N] [--max-new-tokens N]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';
import { startWebServer } from '../cli/web-server.js';
import { LscModel } from '../runtime/model.js';
import { openDevice } from '../runtime/device.js';
import type { GenerateOptions, GenerateStats } from '../runtime/generate.js';

declare const lsc: { ready: Promise<void>; generate(p: string, o: GenerateOptions): Promise<{ tokens: number[]; stats: GenerateStats }> };

const { values } = parseArgs({ options: { repeat: { type: 'string', default: '3' }, 'max-new-tokens': { type: 'string', default: '96' } } });
const root = fileURLToPath(new URL('../../', import.meta.url));
const TINY = path.join(root, 'examples', 'models', 'tiny-code');
const prompts = JSON.parse(fs.readFileSync(path.join(root, 'examples', 'prompts', 'code.json'), 'utf8')) as string[];
const repeat = Number(values.repeat);
const base = { temperature: 0, stopAtEos: false, maxNewTokens: Number(values['max-new-tokens']) } as const;
const strategies: [string, GenerateOptions][] = [
  ['autoregressive', { strategy: 'autoregressive' }],
  ['self-speculative E=2 k=2', { strategy: 'self-speculative', exitLayer: 2, numSpeculations: 2 }],
];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const server = await startWebServer({ model: TINY, port: 0 });
const browser = await puppeteer.launch({
  executablePath: process.env.LSC_CHROMIUM ?? '/usr/bin/chromium', headless: true,
  args: ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])],
});
const gpu = await openDevice({ noShaderF16: true, cpuDriverThreads: 0 });
try {
  const page = await browser.newPage();
  await page.goto(server.url);
  await page.evaluate(() => lsc.ready);
  const node = await LscModel.load(TINY, { gpu, tuned: false });
  const web = (p: string, o: GenerateOptions): Promise<{ tokens: number[]; stats: GenerateStats }> => page.evaluate((p, o) => lsc.generate(p, o), p, o);
  for (const p of prompts) { await web(p, { ...base, strategy: 'autoregressive' }); await node.complete(p, { ...base, strategy: 'autoregressive' }); }
  for (const [name, o] of strategies) {
    const rates = { page: [] as number[], node: [] as number[] };
    let same = true;
    for (let r = 0; r < repeat; r++) {
      for (const p of prompts) {
        const a = await web(p, { ...base, ...o });
        const b = await node.complete(p, { ...base, ...o });
        rates.page.push(a.stats.tokensPerSecond);
        rates.node.push(b.stats.tokensPerSecond);
        same &&= a.tokens.join() === b.tokens.join();
      }
    }
    console.log(`${name.padEnd(26)} page (SwiftShader) ${median(rates.page).toFixed(1).padStart(6)} tok/s   Node (lavapipe) ${median(rates.node).toFixed(1).padStart(6)} tok/s   `
      + `page/Node ${(median(rates.page) / median(rates.node)).toFixed(2)}   same tokens: ${same}`);
  }
  node.dispose();
} finally {
  await browser.close();
  await server.close();
  gpu.dispose();
}
