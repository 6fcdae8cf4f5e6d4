import type { Graph } from '../ir/graph.js';
import type { DimTable } from '../ir/dims.js';
import { LscError, pointer } from '../errors.js';
import type { TypedGraph } from './infer-shapes.js';

/**
 * The dims the plan and the runtime read by name: the KV cache is sized by kvHeads·headDim and
 * ctx, the RoPE table by headDim, exits and layer loops by layers, sampling by vocab, the exit
 * query cache by d. A graph must declare them, and its nodes must agree with them: otherwise the
 * plan would read tables of the wrong size and decode garbage.
 */
export const RUNTIME_DIMS = ['vocab', 'd', 'kvHeads', 'headDim', 'layers', 'ctx'] as const;

export function checkRuntimeDims(graph: Graph, g: TypedGraph, dims: DimTable, file?: string): void {
  const v = dims.values;
  for (const name of RUNTIME_DIMS) {
    if (!Object.hasOwn(v, name)) {
      throw new LscError(`dims has no '${name}'`, { file, pointer: '/dims' },
        `declare ${RUNTIME_DIMS.join(', ')} under "dims" (the plan and the runtime read them by name)`);
    }
  }
  const at = (name: string): string => pointer('dims', name);
  const mismatch = (what: string, got: number, name: string, nodePointer: string): never => {
    throw new LscError(`${what} is ${got} but dims.${name} is ${v[name]}`, { file, pointer: nodePointer },
      `make the node agree with dims.${name} (${at(name)})`);
  };
  for (const n of g.nodes) {
    const hd = n.attrs.headDim;
    if ((n.op === 'rope' || n.op === 'attention') && hd !== v.headDim) {
      mismatch(`${n.op} '${n.id}' headDim`, hd as number, 'headDim', n.pointer);
    }
    if (n.op === 'attention' && (n.attrs.kvHeads as number) * v.headDim !== v.kvHeads * v.headDim) {
      mismatch(`attention '${n.id}' kvHeads`, n.attrs.kvHeads as number, 'kvHeads', n.pointer);
    }
    if (n.op === 'embed') {
      const width = g.values.get(n.id)!.shape[1];
      if (width !== v.d) mismatch(`embed '${n.id}' width`, width as number, 'd', n.pointer);
    }
    if (n.op === 'argmax') {
      const x = n.inputs[0];
      if (x.kind !== 'value') throw new LscError(`argmax '${n.id}' must read logits computed by a node`, { file, pointer: `${n.pointer}/in/0` });
      const width = g.values.get(x.id)!.shape[1];
      if (width !== v.vocab) mismatch(`argmax '${n.id}' input width`, width as number, 'vocab', n.pointer);
    }
  }
  const trunk = g.trunks.get(graph.exit.trunk);
  if (trunk && trunk.layers !== v.layers) mismatch(`the trunk's layer count`, trunk.layers, 'layers', '/exit/trunk');
}
