import type { BindingDecl, KernelSource } from '../compiler/ir/kernel.js';
import { RANGE_FIELDS, RANGE_SLOT_WORDS, bindingsWgsl, kernelHeader } from './kernel.js';

/**
 * Greedy acceptance on the GPU, so that speculation rounds chain inside one submission with no
 * readback between them. After verify@E has written its picks v0..vk to tokens[verifyBase..],
 * one thread:
 *   - counts n, the longest prefix of drafts (tokens[1..k]) equal to the picks;
 *   - appends v0..vn (= the accepted drafts, then the verifier's token) to the output list;
 *   - moves the position p on by n + 1 and puts vn in token slot 0 for the next round's draft;
 *   - writes the new p as posBase of the next round's range slots (rejected positions are simply
 *     overwritten later: nothing is copied).
 * A kernel of the plan (plan.accept says what it binds); the runtime supplies its params per
 * round (runtime/greedy-chain.ts).
 *
 * State buffer (u32): [0] p, [1] output count, [2 + j] n of round j, [ACCEPT_OUT + ..] output.
 */
export const ACCEPT_MAX_ROUNDS = 64;
export const ACCEPT_OUT = 2 + ACCEPT_MAX_ROUNDS;
/** Bytes of the state buffer for drafts of up to kMax per round. */
export function acceptStateBytes(kMax: number): number {
  return (ACCEPT_OUT + ACCEPT_MAX_ROUNDS * (kMax + 1)) * 4;
}

export const ACCEPT_PARAMS = ['k', 'verifyBase', 'nextFirst', 'nextCount', 'round', 'pad0', 'pad1', 'pad2'] as const;

/** Bindings in order: params, then the token buffer and the state buffer (plan.accept.buffers), then the range table. */
export const ACCEPT_BINDINGS: readonly BindingDecl[] = [
  { name: 'prm', type: 'params' }, { name: 'tokens', type: 'rw' }, { name: 'state', type: 'rw' }, { name: 'ranges', type: 'ranges' },
];
const DECLS = ['var<uniform> $: Params', ...Array(3).fill('var<storage, read_write> $: array<u32>')];

/** The acceptance kernel's source: one thread, its params per round. */
export function acceptKernel(): KernelSource {
  const meta: Omit<KernelSource, 'wgsl'> = {
    family: 'accept', name: 'greedy_accept', workgroupSize: 1, bindings: [...ACCEPT_BINDINGS], params: [...ACCEPT_PARAMS],
    grid: [1, 1, 1], config: {}, features: [],
  };
  return { ...meta, wgsl: kernelHeader(meta, []) + emitAccept() };
}

export function emitAccept(): string {
  return `// greedy acceptance of a chained speculation round (codegen/accept.ts)
struct Params { ${ACCEPT_PARAMS.map((p) => `${p}: u32`).join(', ')} }
${bindingsWgsl(ACCEPT_BINDINGS.map((b, i) => ({ name: b.name, decl: DECLS[i] })))}

@compute @workgroup_size(1)
fn main() {
  var n = 0u;
  loop {
    if (n >= prm.k || tokens[1u + n] != tokens[prm.verifyBase + n]) { break; }
    n += 1u;
  }
  let count = state[1];
  for (var j = 0u; j <= n; j += 1u) { state[${ACCEPT_OUT}u + count + j] = tokens[prm.verifyBase + j]; }
  state[1] = count + n + 1u;
  state[2u + prm.round] = n;
  let p = state[0] + n + 1u;
  state[0] = p;
  tokens[0] = tokens[prm.verifyBase + n];
  for (var s = 0u; s < prm.nextCount; s += 1u) { ranges[(prm.nextFirst + s) * ${RANGE_SLOT_WORDS}u + ${RANGE_FIELDS.indexOf('posBase')}u] = p; }
}
`;
}
