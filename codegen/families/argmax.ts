import type { ArgmaxKernel } from '../../compiler/ir/kernel.js';
import { ARGMAX_BINDING, emitArgmax, type ArgmaxConfig } from '../argmax.js';
import type { KernelFamily } from '../family.js';

/** Greedy pick per row into the token buffer: step slots, or the verify slots for a verify entry point. */
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
    return [{
      source: key, config, tuningKey: key, emit: (c) => emitArgmax(k, c as unknown as ArgmaxConfig),
      buffers: new Map([[ARGMAX_BINDING.logits, env.buffer(k.x)], [ARGMAX_BINDING.tokens, env.tokensBuffer]]),
      params: [env.verify ? env.tokenOutBase : 1, 0, 0, 0], nodes: k.nodes,
    }];
  },
  // GPUs want a wide tree reduction; CPU drivers (lavapipe), where barriers are costly, few threads
  defaultConfig: (target) => ({ threads: target === 'gpu' ? 256 : 8 }),
  candidates: () => [1, 8, 32, 64, 128, 256].map((threads) => ({ threads })),
};
