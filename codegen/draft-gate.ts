import type { BindingDecl, KernelSource } from '../compiler/ir/kernel.js';
import { ACCEPT_MAX_ROUNDS, acceptKernel } from './accept.js';
import { RANGE_FIELDS, RANGE_SLOT_WORDS, bindingsWgsl, kernelHeader } from './kernel.js';

/**
 * Confidence-stopped drafting inside GPU-chained greedy rounds. The draft steps' argmax also
 * writes the probability of its pick (codegen/argmax.ts); before draft step i (i ≥ 1) of a round,
 * this one-thread gate kernel decides whether the step runs: only if step i-1 ran and its pick's
 * probability reached the threshold. Otherwise it sets the rowCount of step i's range slots to 0,
 * so each of its kernels returns at once (every family bounds its rows by rng.rowCount) and no
 * kernel family changes. Where it stops a round at step i, it moves the round's verify 'newest'
 * stage (layers < E for the last draft, which no draft step ran) from row k to row i, the last
 * draft made, by rewriting that slot's rowStart. The stop-aware acceptance kernel (codegen/accept.ts
 * with gate words) caps the accepted drafts at the drafts made and resets the count.
 *
 * (Indirect dispatches from arguments the gate writes would launch no workgroups at all, but Dawn
 * validates each indirect dispatch with a compute dispatch of its own, which on lavapipe cost more
 * than the skipped drafts saved: BENCHMARKS.md, "Confidence-stopped drafting on the GPU".)
 *
 * Gate buffer (u32 words):
 *   [0] the threshold (f32 bits); 0: no stop, and the draft argmax skips the probability
 *   [1] drafts made so far in the current round (the round's first draft always runs: 1)
 *   [GATE_ROUNDS + j] drafts made by chained round j (written by the acceptance kernel)
 *   [GATE_PROBS + row] probability of the draft pick of that row (f32 bits)
 */
export const GATE_THRESHOLD = 0;
export const GATE_MADE = 1;
export const GATE_ROUNDS = 2;
export const GATE_PROBS = GATE_ROUNDS + ACCEPT_MAX_ROUNDS;

/** Bytes of the gate buffer for `maxRows` draft rows. */
export function draftGateBytes(maxRows: number): number {
  return (GATE_PROBS + maxRows) * 4;
}

/**
 * Params of the gate kernel: draft step i, the first of its range slots and their count, the
 * range slot of the round's verify 'newest' stage.
 */
export const GATE_PARAMS = ['i', 'stepSlot', 'stepSlots', 'newestSlot'] as const;

/** Bindings in order: params, the gate buffer (plan.draftStop.gate.buffers), the range table. */
export const GATE_BINDINGS: readonly BindingDecl[] = [{ name: 'prm', type: 'params' }, { name: 'gate', type: 'rw' }, { name: 'ranges', type: 'ranges' }];
const DECLS = ['var<uniform> $: Params', ...Array(2).fill('var<storage, read_write> $: array<u32>')];

/** The gate kernel's source: one thread. */
export function draftGateKernel(): KernelSource {
  const meta: Omit<KernelSource, 'wgsl'> = {
    family: 'draft-gate', name: 'draft_gate', workgroupSize: 1, bindings: [...GATE_BINDINGS], params: [...GATE_PARAMS],
    grid: [1, 1, 1], config: {}, features: [],
  };
  return { ...meta, wgsl: kernelHeader(meta, []) + emitDraftGate() };
}

function emitDraftGate(): string {
  const word = (slot: string, name: (typeof RANGE_FIELDS)[number]): string => {
    const field = RANGE_FIELDS.indexOf(name);
    return `${slot} * ${RANGE_SLOT_WORDS}u${field ? ` + ${field}u` : ''}`;
  };
  return `// draft i runs only if draft i-1 ran and its pick was likely enough (codegen/draft-gate.ts)
struct Params { ${GATE_PARAMS.map((p) => `${p}: u32`).join(', ')} }
${bindingsWgsl(GATE_BINDINGS.map((b, i) => ({ name: b.name, decl: DECLS[i] })))}

@compute @workgroup_size(1)
fn main() {
  // a NaN probability compares false: it stops too
  let ran = gate[${GATE_MADE}u] == prm.i;
  let live = ran && bitcast<f32>(gate[${GATE_PROBS}u + prm.i - 1u]) >= bitcast<f32>(gate[${GATE_THRESHOLD}u]);
  if (live) {
    gate[${GATE_MADE}u] = prm.i + 1u;
    return;
  }
  // no rows: every kernel of the step returns at once
  for (var s = 0u; s < prm.stepSlots; s += 1u) { ranges[${word('(prm.stepSlot + s)', 'rowCount')}] = 0u; }
  // stopping here: verify runs layers < E for draft i (row i), the last made, instead of row k
  if (ran) { ranges[${word('prm.newestSlot', 'rowStart')}] = prm.i; }
}
`;
}

/** The acceptance kernel of rounds that may stop drafting early (plan.draftStop.accept). */
export function acceptStopKernel(): KernelSource {
  return acceptKernel({ made: GATE_MADE, rounds: GATE_ROUNDS });
}
