import { RANGE_SLOT_BYTES } from '../compiler/plan.js';

/**
 * Greedy acceptance on the GPU, so that speculation rounds chain inside one submission with no
 * readback between them. After verify@E has written its picks v0..vk to tokens[verifyBase..],
 * one thread:
 *   - counts n, the longest prefix of drafts (tokens[1..k]) equal to the picks;
 *   - appends v0..vn (= the accepted drafts, then the verifier's token) to the output list;
 *   - moves the position p on by n + 1 and puts vn in token slot 0 for the next round's draft;
 *   - writes the new p as posBase of the next round's range slots (rejected positions are simply
 *     overwritten later: nothing is copied).
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

export function emitAccept(): string {
  const slotWords = RANGE_SLOT_BYTES / 4;
  return `struct Params { ${ACCEPT_PARAMS.map((p) => `${p}: u32`).join(', ')} }
@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;
@group(0) @binding(3) var<storage, read_write> ranges: array<u32>;

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
  for (var s = 0u; s < prm.nextCount; s += 1u) { ranges[(prm.nextFirst + s) * ${slotWords}u + 2u] = p; }
}
`;
}
