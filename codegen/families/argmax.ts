import type { ArgmaxKernel } from '../../compiler/ir/kernel.js';
import { ARGMAX_BINDING, emitArgmax, type ArgmaxConfig } from '../argmax.js';
import type { KernelFamily } from '../family.js';
import { GATE_PROBS, GATE_THRESHOLD } from '../draft-gate.js';

/**
 * Greedy pick per row into the token buffer: step slots, or the verify slots for a verify entry
 * point; a draft entry's also writes the pick's probability for the draft stop (param `prob`).
 */
export const argmaxFamily: KernelFamily<ArgmaxKernel> = {
  name: 'argmax',
  ops: ['argmax'],
  standalone: ['argmax'],
  fromNode(n, g) {
    const x = g.valueInputs(n)[0]!;
    return { family: 'argmax', nodes: [n.id], x, out: n.id, n: g.width(x) };
  },
  reads: (k) => [k.x],
  writes: (k) => [k.out],
  persistent: (k) => ({ logits: k.x, picks: [k.out] }),
  dispatchCount: () => 1,
  schedule(k, env) {
    const key = `argmax:${k.n}`;
    const config = env.config(key);
    // every entry's argmax binds the draft gate; only a draft step's writes its pick's probability (codegen/draft-gate.ts)
    const gate = { threshold: GATE_THRESHOLD, probs: GATE_PROBS };
    return [{
      source: key, config, tuningKey: key, emit: (c) => emitArgmax(k, c as unknown as ArgmaxConfig, gate),
      buffers: new Map([[ARGMAX_BINDING.logits, env.buffer(k.x)], [ARGMAX_BINDING.tokens, env.tokensBuffer], [ARGMAX_BINDING.gate, env.draftGate]]),
      params: [env.verify ? env.tokenOutBase : 1, env.draft ? 1 : 0, 0, 0], nodes: k.nodes,
    }];
  },
  // GPUs want a wide tree reduction; CPU drivers (lavapipe), where barriers are costly, few threads
  defaultConfig: (target) => ({ threads: target === 'gpu' ? 256 : 8 }),
  candidates: () => [1, 8, 32, 64, 128, 256].map((threads) => ({ threads })),
};
