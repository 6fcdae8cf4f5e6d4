/**
 * llama.cpp (through node-llama-cpp's prebuilt CPU binaries, a dev dependency) as a second
 * implementation to check lsc's GGUF files against: greedy tokens and next-token log-probabilities.
 */
import type { Llama, LlamaModel, Token } from 'node-llama-cpp';

/** llama.cpp on the CPU, or the reason it cannot load on this machine. */
export async function loadLlamaCpp(): Promise<Llama | string> {
  try {
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    return await getLlama({ build: 'never', gpu: false, logLevel: LlamaLogLevel.error });
  } catch (e) {
    return `node-llama-cpp cannot load llama.cpp on this machine: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** Greedy continuation of ids (BOS included) for n tokens, EOS not stopping it. */
export async function llamaGreedy(model: LlamaModel, ids: number[], n: number): Promise<number[]> {
  const ctx = await model.createContext({ contextSize: 512, batchSize: 512, threads: 1 });
  try {
    const out: number[] = [];
    for await (const t of ctx.getSequence().evaluate(ids as Token[], { temperature: 0, yieldEogToken: true })) {
      out.push(t);
      if (out.length >= n) break;
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}

/** Next-token log-probabilities after ids (BOS included), over the whole vocabulary. */
export async function llamaLogProbs(model: LlamaModel, ids: number[], vocab: number): Promise<Float64Array> {
  const ctx = await model.createContext({ contextSize: 512, batchSize: 512, threads: 1 });
  try {
    const items = ids.map((t, i) => (i === ids.length - 1 ? [t, { generateNext: { probabilities: true } }] as const : t));
    const res = await ctx.getSequence().controlledEvaluate(items as Parameters<ReturnType<typeof ctx.getSequence>['controlledEvaluate']>[0]);
    const probs = res[ids.length - 1]?.next?.probabilities;
    if (!probs) throw new Error('llama.cpp returned no probabilities');
    const lp = new Float64Array(vocab).fill(-Infinity);
    for (const [t, p] of probs) lp[t] = Math.log(p);
    return lp;
  } finally {
    await ctx.dispose();
  }
}

/** log-softmax in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (x) => x - lse);
}
