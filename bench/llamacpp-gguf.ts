/**
 * lsc against llama.cpp (node-llama-cpp's prebuilt CPU build, a dev dependency) decoding the same
 * GGUF file: per weight format, greedy autoregressive decode tok/s of each (tokens after the
 * first per second of decoding, prefill excluded, as `lsc bench`), the median over the bundled
 * code prompts after one warm-up, and how many greedy tokens the two agree on before they part.
 * lsc runs on this machine's WebGPU adapter (lavapipe here: Vulkan on the CPU).
 *
 *   node dist/bench/llamacpp-gguf.js [--model examples/models/tiny-code | --gguf FILE.gguf]
 *     [--formats f16,q8_0,q4_0] [--max-new-tokens 64] [--threads 1,2] [--json]
 *
 * llama.cpp runs once per CPU thread count given (on a tiny model one thread can beat two: the
 * threads' synchronization per layer costs more than the arithmetic).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getLlama, LlamaLogLevel, type LlamaModel, type Token } from 'node-llama-cpp';
import { LscModel } from '../runtime/model.js';
import { quantizeToGguf } from '../runtime/quant/to-gguf.js';
import type { MatrixFormat } from '../compiler/ir/weight-formats.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: fileURLToPath(new URL('../../examples/models/tiny-code', import.meta.url)) },
    gguf: { type: 'string' },
    formats: { type: 'string', default: 'f16,q8_0,q4_0' },
    'max-new-tokens': { type: 'string', default: '64' },
    threads: { type: 'string', default: '1,2' },
    json: { type: 'boolean', default: false },
  },
});
const prompts = JSON.parse(fs.readFileSync(new URL('../../examples/prompts/code.json', import.meta.url), 'utf8')) as string[];
const maxNew = Number(values['max-new-tokens']);
const threadCounts = values.threads.split(',').map(Number);
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/** llama.cpp greedy decode: tokens and decode tok/s (after the first token, as lsc counts). */
async function llamaRun(model: LlamaModel, ids: number[], threads: number): Promise<{ tokens: number[]; tps: number }> {
  const ctx = await model.createContext({ contextSize: ids.length + maxNew + 8, batchSize: 512, threads });
  try {
    const tokens: number[] = [];
    let first = 0;
    for await (const t of ctx.getSequence().evaluate(ids as Token[], { temperature: 0, yieldEogToken: true })) {
      tokens.push(t);
      if (tokens.length === 1) first = performance.now();
      if (tokens.length >= maxNew) break;
    }
    return { tokens, tps: (tokens.length - 1) / ((performance.now() - first) / 1000) };
  } finally {
    await ctx.dispose();
  }
}

interface Row { format: string; file: string; lscTps: number; llamaTps: number[]; agree: string }

const llama = await getLlama({ build: 'never', gpu: false, logLevel: LlamaLogLevel.error });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-llamacpp-bench-'));
const rows: Row[] = [];
try {
  const files: [string, string][] = values.gguf ? [['(file)', values.gguf]]
    : values.formats.split(',').map((f) => {
      const file = path.join(tmp, `${path.basename(values.model)}-${f}.gguf`);
      quantizeToGguf(values.model, file, f as MatrixFormat);
      return [f, file];
    });
  for (const [format, file] of files) {
    const lsc = await LscModel.load(file);
    const lm = await llama.loadModel({ modelPath: file });
    try {
      const lscTps: number[] = [], llamaTps: number[][] = threadCounts.map(() => []), agree: number[] = [];
      for (const [i, prompt] of [prompts[0], ...prompts].entries()) {
        const ids = lsc.tokenizer.encode(prompt);
        const a = await lsc.complete(ids, { maxNewTokens: maxNew, stopAtEos: false, strategy: 'autoregressive' });
        const b: Awaited<ReturnType<typeof llamaRun>>[] = [];
        for (const n of threadCounts) b.push(await llamaRun(lm, ids, n)); // one at a time: they share the CPU
        if (i === 0) continue; // warm-up
        lscTps.push(a.stats.tokensPerSecond);
        b.forEach((r, k) => llamaTps[k].push(r.tps));
        const split = a.tokens.findIndex((t, j) => t !== b[0].tokens[j]);
        agree.push(split < 0 ? maxNew : split);
      }
      rows.push({ format: format === '(file)' ? lsc.plan.dtypes.weights : format, file: path.basename(file), lscTps: median(lscTps), llamaTps: llamaTps.map(median),
        agree: `${agree.filter((n) => n === maxNew).length}/${agree.length} all ${maxNew} (min ${Math.min(...agree)})` });
    } finally {
      lsc.dispose();
      await lm.dispose();
    }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
if (values.json) {
  console.log(JSON.stringify({ maxNewTokens: maxNew, threads: threadCounts, prompts: prompts.length, rows }, null, 2));
} else {
  console.log(`greedy autoregressive, ${prompts.length} prompts × ${maxNew} tokens, medians`);
  console.log(`| format | lsc tok/s | ${threadCounts.map((n) => `llama.cpp CPU ${n}T tok/s`).join(' | ')} | greedy tokens agree (lsc vs llama.cpp) |`);
  console.log(`|---|---:|${threadCounts.map(() => '---:|').join('')}---|`);
  for (const r of rows) console.log(`| ${r.format} | ${r.lscTps.toFixed(1)} | ${r.llamaTps.map((t) => t.toFixed(1)).join(' | ')} | ${r.agree} |`);
}
