import type { AttentionKernel } from '../../compiler/ir/kernel.js';
import { ATTENTION_BINDING, emitAttention, type AttentionConfig } from '../attention.js';
import { requireMultipleOf4, type KernelConfig, type KernelFamily } from '../family.js';

/** Causal attention of each row over its layer's KV cache. */
export const attentionFamily: KernelFamily<AttentionKernel> = {
  name: 'attention',
  ops: ['attention'],
  standalone: ['attention'],
  fromNode(n, g) {
    const num = (key: string): number => {
      const v = n.attrs[key];
      if (typeof v !== 'number') throw new Error(`internal: ${n.id}.${key} not resolved`);
      return v;
    };
    return {
      family: 'attention', nodes: [n.id], q: g.valueInputs(n)[0]!, out: n.id, layer: n.layer!,
      heads: num('heads'), kvHeads: num('kvHeads'), headDim: num('headDim'),
    };
  },
  check(c) {
    const hd = c.node.attrs.headDim as number;
    requireMultipleOf4(c, `attention '${c.node.id}': headDim`, hd, c.attrAt('headDim'), 'use a head dimension that is a multiple of 4');
  },
  reads: (k) => [k.q],
  writes: (k) => [k.out],
  dispatchCount: () => 1,
  schedule(k, env) {
    const key = `attention:${k.heads}x${k.kvHeads}x${k.headDim}`;
    const config = env.config(key);
    const ctxt = { ctx: env.ctx, kvF16: env.kvF16, seqRows: env.seqRows };
    return [{
      source: key, config, tuningKey: key, emit: (c) => emitAttention(k, ctxt, c as unknown as AttentionConfig),
      buffers: new Map([[ATTENTION_BINDING.q, env.buffer(k.q)], [ATTENTION_BINDING.kv, env.kvBuffer(k.layer)], [ATTENTION_BINDING.out, env.buffer(k.out)]]),
      params: [], nodes: k.nodes,
    }];
  },
  // the register-heavy lane variants take LLVM (lavapipe) tens of seconds to compile for wide heads
  defaultConfig: (target, k): KernelConfig => (target === 'cpu' && k.headDim <= 32 ? { block: 8, lanes: 1, rows: 4 } : { block: 64 }),
  candidates() {
    const lanes = [1, 4, 8, 16].flatMap((block) => [1, 2, 4, 8].map((rows) => ({ block, ...(block > 1 ? { lanes: 1 } : {}), ...(rows > 1 ? { rows } : {}) })));
    return [...lanes, ...[16, 32, 64, 128].map((block) => ({ block }))];
  },
};
