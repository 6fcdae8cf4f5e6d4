import type { ArgmaxKernel } from '../../compiler/ir/kernel.js';
import { ARGMAX_BINDING, emitArgmax, type ArgmaxConfig } from '../argmax.js';
import type { KernelFamily } from '../family.js';
import { GATE_PROBS, GATE_THRESHOLD } from '../draft-gate.js';

/**
 * Greedy pick per row into the token buffer: step slots, or the verify slots for a verify entry
 * point; a draft entry's also writes the pick's probability for the draft stop.
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
    const buffers = new Map<string, string>([[ARGMAX_BINDING.logits, env.buffer(k.x)], [ARGMAX_BINDING.tokens, env.tokensBuffer]]);
    const params = [env.verify ? env.tokenOutBase : 1, 0, 0, 0];
    if (env.draftGate) {
      // a draft's pick with its probability (codegen/draft-gate.ts); the tuned config of the same shape
      buffers.set(ARGMAX_BINDING.gate, env.draftGate);
      return [{
        source: `${key}:prob`, config, emit: (c) => emitArgmax(k, c as unknown as ArgmaxConfig, { threshold: GATE_THRESHOLD, probs: GATE_PROBS }),
        buffers, params, nodes: k.nodes,
      }];
    }
    return [{ source: key, config, tuningKey: key, emit: (c) => emitArgmax(k, c as unknown as ArgmaxConfig), buffers, params, nodes: k.nodes }];
  },
  // GPUs want a wide tree reduction; CPU drivers (lavapipe), where barriers are costly, few threads
  defaultConfig: (target) => ({ threads: target === 'gpu' ? 256 : 8 }),
  candidates: () => [1, 8, 32, 64, 128, 256].map((threads) => ({ threads })),
};
