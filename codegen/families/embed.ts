import type { EmbedKernel } from '../../compiler/ir/kernel.js';
import { EMBED_BINDING, emitEmbed } from '../embed.js';
import { requireMultipleOf4, type KernelFamily } from '../family.js';

/** Token embedding lookup into the trunk: one dispatch per vocab slice of the table. */
export const embedFamily: KernelFamily<EmbedKernel> = {
  name: 'embed',
  ops: ['embed'],
  standalone: ['embed'],
  fromNode(n, g) {
    const table = (n.inputs[1] as { id: string }).id;
    const [vocab, d] = g.weightShape(table);
    return { family: 'embed', nodes: [n.id], out: n.id, table, vocab, d };
  },
  check(c) {
    requireMultipleOf4(c, 'embedding width', c.inputShape(1)[1] as number, c.weightDimAt(1, 1), 'use a hidden size that is a multiple of 4');
  },
  reads: () => [],
  writes: (k) => [k.out],
  persistent: (k) => ({ trunk: [k.out] }),
  dispatchCount: (k, slices) => slices(k.table),
  schedule(k, env) {
    const chunks = env.weight(k.table).chunks;
    const chunked = chunks.length > 1;
    return chunks.map((ch) => ({
      source: `embed:${k.vocab}x${k.d}:${chunked}`, config: {}, emit: () => emitEmbed(k, chunked),
      buffers: new Map([[EMBED_BINDING.tokens, env.tokensBuffer], [EMBED_BINDING.table, ch.buffer], [EMBED_BINDING.out, env.buffer(k.out)]]),
      params: chunked ? [ch.rowStart, ch.rowCount, 0, 0] : [], nodes: k.nodes,
    }));
  },
};
