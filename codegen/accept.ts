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

/**
 * Bindings in order: params, then the token buffer and the state buffer (plan.accept.buffers), then
 * the range table. The stop-aware kernel (plan.draftStop.accept) binds the draft gate buffer
 * (codegen/draft-gate.ts) after the state.
 */
export const ACCEPT_BINDINGS: readonly BindingDecl[] = [
  { name: 'prm', type: 'params' }, { name: 'tokens', type: 'rw' }, { name: 'state', type: 'rw' }, { name: 'ranges', type: 'ranges' },
];
const GATE_BINDING: BindingDecl = { name: 'gate', type: 'rw' };
const STORAGE = 'var<storage, read_write> $: array<u32>';

/** Where the stop-aware variant finds, in the gate buffer, the drafts made and the per-round record. */
export interface AcceptGateWords {
  made: number;
  rounds: number;
}

function acceptBindings(gate?: AcceptGateWords): BindingDecl[] {
  return gate ? [...ACCEPT_BINDINGS.slice(0, 3), GATE_BINDING, ACCEPT_BINDINGS[3]] : [...ACCEPT_BINDINGS];
}

/**
 * The acceptance kernel's source: one thread, its params per round. With `gate`: the variant for
 * rounds whose drafting may stop early (codegen/draft-gate.ts), which accepts at most the drafts
 * made, records that count per round and resets it for the next round.
 */
export function acceptKernel(gate?: AcceptGateWords): KernelSource {
  const meta: Omit<KernelSource, 'wgsl'> = {
    family: 'accept', name: gate ? 'greedy_accept_stop' : 'greedy_accept', workgroupSize: 1, bindings: acceptBindings(gate), params: [...ACCEPT_PARAMS],
    grid: [1, 1, 1], config: {}, features: [],
  };
  return { ...meta, wgsl: kernelHeader(meta, []) + emitAccept(gate) };
}

export function emitAccept(gate?: AcceptGateWords): string {
  return `// greedy acceptance of a chained speculation round (codegen/accept.ts)
struct Params { ${ACCEPT_PARAMS.map((p) => `${p}: u32`).join(', ')} }
${bindingsWgsl(acceptBindings(gate).map((b) => ({ name: b.name, decl: b.type === 'params' ? 'var<uniform> $: Params' : STORAGE })))}

@compute @workgroup_size(1)
fn main() {
  var n = 0u;
${gate ? `  // drafts past the ones made hold stale tokens, and their positions no KV
  let made = min(prm.k, gate[${gate.made}u]);
  gate[${gate.rounds}u + prm.round] = made;
  gate[${gate.made}u] = 1u;
` : ''}  loop {
    if (n >= ${gate ? 'made' : 'prm.k'} || tokens[1u + n] != tokens[prm.verifyBase + n]) { break; }
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
