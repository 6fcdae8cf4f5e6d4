import type { BindingDecl, KernelSource } from '../compiler/ir/kernel.js';
import { SEQ_ROW_BYTES, bindingsWgsl, kernelHeader } from './kernel.js';

/**
 * Greedy acceptance of batched speculation rounds on the GPU (the batch engine's counterpart of
 * codegen/accept.ts), so that rounds of several sequences chain in one submission. A round of N
 * sequences with k drafts holds sequence s's token i in row i·N + s: its input tokens sit at
 * tokens[i·N + s] (the drafts at i ≥ 1), verify's picks at tokens[verifyBase + i·N + s]. One
 * thread per sequence:
 *   - counts n, the longest prefix of its drafts equal to its picks;
 *   - appends its picks v0..vn (the accepted drafts, then the verifier's token) to its output;
 *   - moves its position p on by n + 1 and puts vn in token slot s, the next round's input;
 *   - writes the next round's position offsets of its rows i·N + s into the SeqRows image at the
 *     start of the state buffer, which the runtime copies into the SeqRows uniform (a kernel
 *     cannot write a uniform). Rejected positions are simply overwritten later.
 * Only the position word of a row changes: its KV slot stays as the runtime wrote it.
 *
 * State buffer (u32): [0, 4·rowsMax) the SeqRows image, then per sequence s at
 * batchAcceptSeqBase(rowsMax, kMax, s): [0] p, [1] output count, [2 + j] n of round j,
 * [2 + BATCH_ACCEPT_MAX_ROUNDS + ..] output.
 */
export const BATCH_ACCEPT_MAX_ROUNDS = 16;
/** Sequences one dispatch accepts for (its workgroup's threads). */
export const BATCH_ACCEPT_MAX_SEQS = 64;
const SEQ_WORDS = SEQ_ROW_BYTES / 4;

/** u32 words per sequence of the state buffer. */
export function batchAcceptSeqWords(kMax: number): number {
  return 2 + BATCH_ACCEPT_MAX_ROUNDS + BATCH_ACCEPT_MAX_ROUNDS * (kMax + 1);
}

/** Word offset of sequence s's state. */
export function batchAcceptSeqBase(rowsMax: number, kMax: number, s: number): number {
  return rowsMax * SEQ_WORDS + s * batchAcceptSeqWords(kMax);
}

/** Word offset of sequence s's output tokens. */
export function batchAcceptOutBase(rowsMax: number, kMax: number, s: number): number {
  return batchAcceptSeqBase(rowsMax, kMax, s) + 2 + BATCH_ACCEPT_MAX_ROUNDS;
}

/** Bytes of the state buffer. */
export function batchAcceptStateBytes(rowsMax: number, kMax: number): number {
  return batchAcceptSeqBase(rowsMax, kMax, Math.min(rowsMax, BATCH_ACCEPT_MAX_SEQS)) * 4;
}

export const BATCH_ACCEPT_PARAMS = ['k', 'n', 'verifyBase', 'round', 'pad0', 'pad1', 'pad2', 'pad3'] as const;

/** Bindings in order: params, then the token buffer and the state buffer (plan.batchAccept.buffers). */
export const BATCH_ACCEPT_BINDINGS: readonly BindingDecl[] = [
  { name: 'prm', type: 'params' }, { name: 'tokens', type: 'rw' }, { name: 'state', type: 'rw' },
];
const DECLS = ['var<uniform> $: Params', 'var<storage, read_write> $: array<u32>', 'var<storage, read_write> $: array<u32>'];

/** The batched acceptance kernel's source for a plan of `rowsMax` rows and up to kMax drafts. */
export function batchAcceptKernel(rowsMax: number, kMax: number): KernelSource {
  const meta: Omit<KernelSource, 'wgsl'> = {
    family: 'accept', name: 'batch_accept', workgroupSize: BATCH_ACCEPT_MAX_SEQS, bindings: [...BATCH_ACCEPT_BINDINGS],
    params: [...BATCH_ACCEPT_PARAMS], grid: [1, 1, 1], config: {}, features: [],
  };
  return { ...meta, wgsl: kernelHeader(meta, []) + emitBatchAccept(rowsMax, kMax) };
}

function emitBatchAccept(rowsMax: number, kMax: number): string {
  return `// greedy acceptance of batched chained speculation rounds, one thread per sequence (codegen/batch-accept.ts)
struct Params { ${BATCH_ACCEPT_PARAMS.map((p) => `${p}: u32`).join(', ')} }
${bindingsWgsl(BATCH_ACCEPT_BINDINGS.map((b, i) => ({ name: b.name, decl: DECLS[i] })))}

@compute @workgroup_size(${BATCH_ACCEPT_MAX_SEQS})
fn main(@builtin(local_invocation_index) s: u32) {
  let N = prm.n;
  if (s >= N) { return; }
  // token slots 0..N-1 are written (next inputs); everything read sits at N.. or verifyBase..
  var n = 0u;
  loop {
    if (n >= prm.k || tokens[(n + 1u) * N + s] != tokens[prm.verifyBase + n * N + s]) { break; }
    n += 1u;
  }
  let base = ${batchAcceptSeqBase(rowsMax, kMax, 0)}u + s * ${batchAcceptSeqWords(kMax)}u;
  let out = base + ${2 + BATCH_ACCEPT_MAX_ROUNDS}u;
  let count = state[base + 1u];
  for (var j = 0u; j <= n; j += 1u) { state[out + count + j] = tokens[prm.verifyBase + j * N + s]; }
  state[base + 1u] = count + n + 1u;
  state[base + 2u + prm.round] = n;
  let p = state[base] + n + 1u;
  state[base] = p;
  tokens[s] = tokens[prm.verifyBase + n * N + s];
  // row i·N + s sits at position p + i: the kernels add the row, so the offset is p + i - row
  for (var i = 0u; i <= prm.k; i += 1u) {
    let row = i * N + s;
    state[row * ${SEQ_WORDS}u] = p + i - row;
  }
}
`;
}
