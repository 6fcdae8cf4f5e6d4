/**
 * Using lsc as a library: load the bundled model, stream a self-speculative generation, compare
 * it with autoregressive decoding, and release the GPU.
 *
 *   npm run build && node dist/examples/embed.js
 */
import { fileURLToPath } from 'node:url';
import { LscModel, LscError } from 'lsc'; // the package's own name: what an embedder writes

const modelDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));
const prompt = 'def binary_search(items, target):\n    """Return the index of target in items, or -1."""\n';

async function main(): Promise<void> {
  const model = await LscModel.load(modelDir);
  try {
    // stream chunks of text as tokens are accepted
    const run = model.generate(prompt, { strategy: 'self-speculative', exitLayer: 2, numSpeculations: 3, maxNewTokens: 64 });
    process.stdout.write(prompt);
    for await (const chunk of run) process.stdout.write(chunk.text);
    const spec = await run.result;

    // the same prompt, decoded one token at a time: greedy output is identical
    const ar = await model.complete(prompt, { strategy: 'autoregressive', maxNewTokens: 64 });
    const s = spec.stats;
    console.log(`\n\nself-speculative: ${s.tokensPerSecond.toFixed(1)} tok/s, acceptance ${((s.acceptanceRate ?? 0) * 100).toFixed(1)}% ` +
      `(${s.acceptedTokens}/${s.draftedTokens} drafts in ${s.rounds} rounds)`);
    console.log(`autoregressive:   ${ar.stats.tokensPerSecond.toFixed(1)} tok/s; same tokens: ${ar.tokens.join() === spec.tokens.join()}`);
    console.log(`GPU memory: ${(s.gpuBytes.total / 2 ** 20).toFixed(1)} MiB (weights ${(s.gpuBytes.weights / 2 ** 20).toFixed(1)} MiB, KV cache ${(s.gpuBytes.kvCache / 2 ** 20).toFixed(1)} MiB)`);

    // sampling is seeded and reproducible
    const sampled = await model.complete(prompt, { strategy: 'self-speculative', temperature: 0.8, topP: 0.95, seed: 7, maxNewTokens: 32 });
    console.log(`sampled (T=0.8, top-p 0.95, seed 7): ${JSON.stringify(sampled.text.slice(0, 60))}...`);
  } finally {
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e instanceof LscError ? `error: ${e.format()}` : e);
  process.exitCode = e instanceof LscError ? 2 : 1;
});
