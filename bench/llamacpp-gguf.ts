/**
 * lsc against llama.cpp (node-llama-cpp's prebuilt CPU build, a dev dependency) decoding the same
 * GGUF file: per weight format, greedy autoregressive decode tok/s of each (tokens after the
 * first per second of decoding, prefill excluded, as `lsc bench`), the median over the bundled
 * code prompts after one warm-up, and how many greedy tokens the two agree on before they part.
 * lsc runs on this machine's WebGPU adapter (lavapipe here: Vulkan on the CPU).
 *
 *   node dist/bench/llamacpp-gguf.js [--model examples/models/tiny-code | --gguf FILE.gguf]
 *     [--formats f16,q8_0,q4_0] [--max-new-tokens 64] [--threads 2] [--json]
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
    threads: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
  },
});
const prompts = JSON.parse(fs.readFileSync(new URL('../../examples/prompts/code.json', import.meta.url), 'utf8')) as string[];
const maxNew = Number(values['max-new-tokens']);
const threads = Number(values.threads);
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

/** llama.cpp greedy decode: tokens and decode tok/s (after the first token, as lsc counts). */
async function llamaRun(model: LlamaModel, ids: number[]): Promise<{ tokens: number[]; tps: number }> {
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

interface Row { format: string; file: string; lscTps: number; llamaTps: number; agree: string }

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
      const lscTps: number[] = [], llamaTps: number[] = [], agree: number[] = [];
      for (const [i, prompt] of [prompts[0], ...prompts].entries()) {
        const ids = lsc.tokenizer.encode(prompt);
        const a = await lsc.complete(ids, { maxNewTokens: maxNew, stopAtEos: false, strategy: 'autoregressive' });
        const b = await llamaRun(lm, ids);
        if (i === 0) continue; // warm-up
        lscTps.push(a.stats.tokensPerSecond);
        llamaTps.push(b.tps);
        const split = a.tokens.findIndex((t, j) => t !== b.tokens[j]);
        agree.push(split < 0 ? maxNew : split);
      }
      rows.push({ format: format === '(file)' ? lsc.plan.dtypes.weights : format, file: path.basename(file), lscTps: median(lscTps), llamaTps: median(llamaTps),
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
  console.log(JSON.stringify({ maxNewTokens: maxNew, threads, prompts: prompts.length, rows }, null, 2));
} else {
  console.log(`greedy autoregressive, ${prompts.length} prompts × ${maxNew} tokens, medians; llama.cpp CPU ${threads} threads`);
  console.log('| format | lsc tok/s | llama.cpp CPU tok/s | greedy tokens agree |');
  console.log('|---|---:|---:|---|');
  for (const r of rows) console.log(`| ${r.format} | ${r.lscTps.toFixed(1)} | ${r.llamaTps.toFixed(1)} | ${r.agree} |`);
}
