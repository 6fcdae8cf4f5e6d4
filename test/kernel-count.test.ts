/**
 * Kernel and dispatch counts per entry point, so that a regression in fusion (a kernel split in
 * two, an epilogue that stops fusing, a per-layer kernel that stops being shared) fails loudly.
 * The expected numbers are derived from the structure of a Llama decoder (the fusion rules of compiler/passes/fusion-rules.ts)
 * and written out for tiny-code, tiny-code-deep and llama2-7b. Pure: compiles plans, no GPU.
 *
 * One decoder layer is 5 dispatches:
 *   1. rms_norm (prologue) + q/k/v matmuls as one kernel, with RoPE on q, RoPE + KV-cache write on k
 *      and the KV-cache write of v as epilogues
 *   2. attention (reads the layer's KV cache)
 *   3. o-projection with the residual add into the trunk as epilogue
 *   4. rms_norm (prologue) + gate/up matmuls as one kernel with silu(gate)·up as epilogue
 *   5. down-projection with the residual add into the trunk as epilogue
 * Around the layers: the embedding lookup, one dispatch per row slice of the table, and the head:
 * final rms_norm (prologue) + LM head, one dispatch binding every row slice of the LM head, then
 * argmax. Tables are sliced so that no binding exceeds WebGPU's default
 * maxStorageBufferBindingSize (128 MiB) in slices of whole 128-row groups: a [vocab, d] f16 table
 * needs ceil(vocab / (floor(2^27 / (2·d) / 128) · 128)) slices.
 * Weights of a decoder layer split the same way (13B and larger) are bound slice by slice in the
 * one kernel, so every graph in graphs/ has 5 dispatches per decoder layer (last describe).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGraph } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import type { Plan, PlanDispatch, PlanEntry } from '../compiler/plan.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function compileFile(name: string): Plan {
  const file = path.join(root, 'graphs', `${name}.json`);
  return compileGraph(JSON.parse(fs.readFileSync(file, 'utf8')) as Graph, { file }).plan;
}

/** What each dispatch computes, by the graph node ids it covers (layer prefix stripped). */
const LAYER_ROLES = {
  qkv: ['h', 'q', 'q_rot', 'k', 'k_rot', 'v'],
  attention: ['attn'],
  wo: ['o', 'x1'],
  gateUp: ['h2', 'gate', 'up', 'act', 'mlp'],
  down: ['down', 'y'],
} as const;
const HEAD_ROLES = { embed: ['x0'], head: ['final', 'logits'], argmax: ['next'] } as const;
type Role = keyof typeof LAYER_ROLES | keyof typeof HEAD_ROLES;

const roleKey = (nodes: readonly string[]): string => [...nodes].sort().join(',');
const ROLE_OF = new Map<string, Role>(
  Object.entries({ ...LAYER_ROLES, ...HEAD_ROLES }).map(([role, nodes]) => [roleKey(nodes), role as Role]));

/** A dispatch as "role" or "role@layer", from the nodes it computes. */
function describeDispatch(d: PlanDispatch): string {
  const layers = new Set(d.nodes.map((n) => /^L(\d+)\./.exec(n)?.[1]).filter((l) => l !== undefined));
  assert.ok(layers.size <= 1, `a dispatch spans layers ${[...layers]}: ${d.nodes}`);
  const role = ROLE_OF.get(roleKey(d.nodes.map((n) => n.replace(/^L\d+\./, ''))));
  assert.ok(role, `dispatch of ${d.kernel} computes ${d.nodes.join(', ')}, which is no fused group of the decoder`);
  return layers.size ? `${role}@${[...layers][0]}` : role!;
}

const layerDispatches = (from: number, to: number): string[] =>
  Array.from({ length: to - from }, (_, i) => Object.keys(LAYER_ROLES).map((r) => `${r}@${from + i}`)).flat();
const repeat = (s: string, n: number): string[] => Array(n).fill(s);

interface Shape { L: number; embedSlices: number; headSlices: number }

/** The dispatch sequence of every stage of an entry point, from the structure above. */
function expectedStages(e: PlanEntry, s: Shape): Record<string, string[]> {
  const embed = repeat('embed', s.embedSlices);
  const head = ['head', 'argmax'];
  switch (e.kind) {
    // prefill@E (early exit) runs layers < E, then the shared head
    case 'prefill': return { layers: [...embed, ...layerDispatches(0, e.exitLayer ?? s.L)], head };
    case 'decode': return { step: [...embed, ...layerDispatches(0, s.L), ...head] };
    // the draft runs layers < E and leaves through the shared head
    case 'draft': return { step: [...embed, ...layerDispatches(0, e.exitLayer!), ...head] };
    // layers < E for the newest draft only, layers E..L-1 for all k+1 rows, then the head
    case 'verify': return { newest: [...embed, ...layerDispatches(0, e.exitLayer!)], deep: layerDispatches(e.exitLayer!, s.L), head };
  }
}

function entry(plan: Plan, name: string): PlanEntry {
  const e = plan.entries.find((x) => x.name === name);
  assert.ok(e, `no entry point ${name} (have ${plan.entries.map((x) => x.name).join(', ')})`);
  return e;
}

const dispatchCount = (e: PlanEntry): number => e.stages.reduce((a, s) => a + s.dispatches.length, 0);
const kernelsOf = (e: PlanEntry): Set<string> => new Set(e.stages.flatMap((s) => s.dispatches.map((d) => d.kernel)));

interface Case {
  name: string;
  shape: Shape;
  /** Distinct kernels of the whole plan. */
  kernels: number;
  /** Dispatches per entry point, for the default exit and one other. */
  dispatches: Record<string, number>;
}

const cases: Case[] = [
  {
    // vocab 2048 x d 128 in f16 is 512 KiB: one slice each for the embedding and the LM head
    name: 'tiny-code',
    shape: { L: 8, embedSlices: 1, headSlices: 1 },
    // embed, qkv, attention, wo, gate/up, down, head, argmax: every layer and every entry point
    // shares them (rows come from a uniform); wo and down differ in K (128 vs 352)
    kernels: 8,
    dispatches: {
      prefill: 1 + 5 * 8 + 1 + 1, // 43: embed + 8 layers, then head on the last row + argmax
      decode: 1 + 5 * 8 + 1 + 1, // 43
      'draft@2': 1 + 5 * 2 + 1 + 1, // 13
      'verify@2': (1 + 5 * 2) + 5 * 6 + (1 + 1), // 43: newest 11, deep 30, head 2
      'draft@6': 1 + 5 * 6 + 1 + 1, // 33
      'verify@6': (1 + 5 * 6) + 5 * 2 + (1 + 1), // 43
    },
  },
  {
    // the deep bundled model: 16 layers, vocab 1024 x d 128 in f16 is 256 KiB (one slice each)
    name: 'tiny-code-deep',
    shape: { L: 16, embedSlices: 1, headSlices: 1 },
    // the same 8 kernels as tiny-code: depth adds dispatches, not kernels
    kernels: 8,
    dispatches: {
      prefill: 1 + 5 * 16 + 1 + 1, // 83
      decode: 1 + 5 * 16 + 1 + 1, // 83
      'draft@4': 1 + 5 * 4 + 1 + 1, // 23: the default exit
      'verify@4': (1 + 5 * 4) + 5 * 12 + (1 + 1), // 83: newest 21, deep 60, head 2
      'draft@12': 1 + 5 * 12 + 1 + 1, // 63
      'verify@12': (1 + 5 * 12) + 5 * 4 + (1 + 1), // 83
    },
  },
  {
    // vocab 32000 x d 4096 in f16 is 250 MiB: slices of 16384 rows (2^27 / 8192 bytes per row),
    // so 2 slices each for the embedding and the (untied) LM head
    name: 'llama2-7b',
    shape: { L: 32, embedSlices: 2, headSlices: 2 },
    // the same 8 kernels: one embed kernel serves both slices, one head kernel binds both LM head slices
    kernels: 8,
    dispatches: {
      prefill: 2 + 5 * 32 + 1 + 1, // 164
      decode: 2 + 5 * 32 + 1 + 1, // 164
      'draft@8': 2 + 5 * 8 + 1 + 1, // 44
      'verify@8': (2 + 5 * 8) + 5 * 24 + (1 + 1), // 164
      'draft@16': 2 + 5 * 16 + 1 + 1, // 84
      'verify@16': (2 + 5 * 16) + 5 * 16 + (1 + 1), // 164
    },
  },
];

describe('kernel and dispatch counts (fusion regressions fail here)', () => {
  for (const c of cases) {
    describe(c.name, () => {
      let plan: Plan;
      before(() => { plan = compileFile(c.name); });

      it('the entry points counted here exist: the default exit and another', () => {
        const exits = Object.keys(c.dispatches).filter((n) => n.startsWith('draft@')).map((n) => Number(n.slice(6)));
        assert.ok(exits.includes(plan.exits.defaultExitLayer),
          `default exit ${plan.exits.defaultExitLayer} is not among the counted ${exits}: update the case`);
        for (const name of Object.keys(c.dispatches)) entry(plan, name);
        assert.equal(plan.dims.layers, c.shape.L);
        assert.equal(plan.weights.find((w) => w.id === 'embed')!.chunks.length, c.shape.embedSlices);
        assert.equal(plan.weights.find((w) => w.id === 'lm_head')!.chunks.length, c.shape.headSlices);
      });

      it(`${c.kernels} distinct kernels, each used by every entry point (and the acceptance kernels)`, () => {
        // chained speculation rounds run an acceptance kernel after verify, outside the entry points
        // (one sequence's, or the batch engine's), and the draft stop's gate and acceptance kernels
        const outside = [plan.accept.kernel, plan.batchAccept?.kernel, plan.draftStop?.gate.kernel, plan.draftStop?.accept.kernel];
        assert.equal(plan.kernels.filter((k) => !outside.includes(k.id)).length, c.kernels, plan.kernels.map((k) => k.name).join(', '));
        assert.equal(plan.kernels.find((k) => k.id === plan.accept.kernel)?.family, 'accept');
        assert.equal(plan.kernels.find((k) => k.id === plan.batchAccept?.kernel)?.family, 'accept');
        for (const e of plan.entries) {
          assert.equal(kernelsOf(e).size, c.kernels, `${e.name} uses ${[...kernelsOf(e)].join(', ')}`);
        }
      });

      it('one kernel per fused group, shared by every layer and entry point', () => {
        const byRole = new Map<string, Set<string>>();
        for (const e of plan.entries) {
          for (const d of e.stages.flatMap((s) => s.dispatches)) {
            const role = describeDispatch(d).replace(/@\d+$/, '');
            let set = byRole.get(role);
            if (!set) byRole.set(role, (set = new Set()));
            set.add(d.kernel);
          }
        }
        assert.deepEqual([...byRole.keys()].sort(), ['argmax', 'attention', 'down', 'embed', 'gateUp', 'head', 'qkv', 'wo']);
        for (const [role, ids] of byRole) assert.equal(ids.size, 1, `${role} runs ${ids.size} different kernels: ${[...ids]}`);
        assert.equal(new Set([...byRole.values()].map((s) => [...s][0])).size, byRole.size, 'fused groups have kernels of their own');
      });

      for (const [name, n] of Object.entries(c.dispatches)) {
        it(`${name}: ${n} dispatches`, () => {
          const e = entry(plan, name);
          const actual = Object.fromEntries(e.stages.map((s) => [s.name, s.dispatches.map(describeDispatch)]));
          assert.deepEqual(actual, expectedStages(e, c.shape));
          assert.equal(dispatchCount(e), n);
        });
      }

      it('every draft@E and verify@E has the structural dispatch count', () => {
        for (const e of plan.entries) {
          const want = Object.values(expectedStages(e, c.shape)).flat().length;
          assert.equal(dispatchCount(e), want, e.name);
        }
        // prefill and decode, then prefill@E, draft@E and verify@E per exit
        assert.equal(plan.entries.length, 2 + 3 * plan.exits.candidates.length);
      });

      it('fusion rules fired once per layer (norms twice, plus the final norm)', () => {
        const L = c.shape.L;
        // counted per fused kernel of decode: the final norm is one prologue however many slices the head has
        assert.deepEqual(plan.fusion, {
          'rms_norm → matmul prologue': 2 * L + 1,
          'sibling matmuls → one kernel': L, // q/k/v (gate/up count as the silu·mul pair)
          'rope epilogue': L, // q
          'rope + KV-cache write epilogue': L, // k
          'KV-cache write epilogue': L, // v
          'residual add epilogue': 2 * L, // o and down
          'silu·mul epilogue': L,
        });
      });

      it('draft and verify bind only buffers that prefill or decode bind', () => {
        const base = new Set<string>();
        for (const name of ['prefill', 'decode']) {
          for (const d of entry(plan, name).stages.flatMap((s) => s.dispatches)) d.buffers.forEach((b) => base.add(b));
        }
        const baseKernels = new Set([...kernelsOf(entry(plan, 'prefill')), ...kernelsOf(entry(plan, 'decode'))]);
        for (const e of plan.entries.filter((x) => x.kind === 'draft' || x.kind === 'verify')) {
          for (const d of e.stages.flatMap((s) => s.dispatches)) {
            const extra = d.buffers.filter((b) => !base.has(b));
            assert.deepEqual(extra, [], `${e.name}: ${describeDispatch(d)} binds ${extra.join(', ')}, which autoregressive decoding never binds`);
            assert.ok(baseKernels.has(d.kernel), `${e.name} runs kernel ${d.kernel} that prefill/decode do not`);
          }
        }
        // and every buffer the plan allocates is bound by some dispatch
        const bound = new Set([...plan.entries.flatMap((e) => e.stages.flatMap((s) => s.dispatches.flatMap((d) => d.buffers))), ...plan.accept.buffers, ...(plan.batchAccept?.buffers ?? []),
          ...(plan.draftStop?.gate.buffers ?? [])]);
        const unbound = plan.buffers.filter((b) => !bound.has(b.id)).map((b) => b.id);
        assert.deepEqual(unbound, [], 'allocated but never bound');
      });
    });
  }
});

/**
 * Every graph in graphs/: 5 dispatches per decoder layer in every entry point, however its
 * weights are sliced. Compiled for an adapter that allows 16 storage buffers per shader stage
 * (lavapipe does; so do most desktop GPUs' Vulkan drivers). Under WebGPU's default 8, a kernel
 * cannot bind every slice of the largest FFNs: 70B's gate and up are 28672 × 8192 f16 = 448 MiB
 * each, 4 slices of ≤ 128 MiB, so 8 weight bindings + x, the norm weight and the output = 11 > 8
 * (34B: 3 slices each, 9 > 8); there the slices go to 2 kernels and the layer takes 6 dispatches,
 * which the second test states (a compile for the defaults still runs on every adapter).
 */
describe('dispatches per decoder layer, every graph in graphs/', () => {
  const names = fs.readdirSync(path.join(root, 'graphs')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  const compileFor = (name: string, storage?: number): Plan => {
    const file = path.join(root, 'graphs', `${name}.json`);
    const limits = storage ? { maxStorageBuffersPerShaderStage: storage } : {};
    return compileGraph(JSON.parse(fs.readFileSync(file, 'utf8')) as Graph, { file, limits }).plan;
  };
  /** Dispatches per decoder layer of every entry point: the dispatches computing layer nodes (L<i>.*) / layers run. */
  const perLayer = (plan: Plan): Map<string, number> => new Map(plan.entries.map((e) => {
    const layerDispatches = e.stages.flatMap((st) => st.dispatches).filter((d) => d.nodes.some((n) => /^L\d+\./.test(n)));
    // layers an entry runs = layers whose KV it writes (draft@E and prefill@E: E)
    return [e.name, layerDispatches.length / (e.kvLayers[1] - e.kvLayers[0])];
  }));

  it('covers all the graphs of graphs/', () => {
    assert.ok(names.length >= 9, names.join(', '));
    for (const n of ['tiny-code', 'tiny-code-deep', 'llama2-7b', 'llama2-13b', 'llama2-70b', 'codellama-34b']) assert.ok(names.includes(n), n);
  });

  for (const name of names) {
    it(`${name}: 5 dispatches per decoder layer in every entry point (16 storage buffers per stage)`, () => {
      const plan = compileFor(name, 16);
      for (const [entryName, n] of perLayer(plan)) assert.equal(n, 5, `${name} ${entryName}`);
      for (const e of plan.entries) for (const st of e.stages) st.dispatches.forEach(describeDispatch);
    });
  }

  it('under WebGPU\'s default limits: 5 per layer where every FFN slice fits one kernel, else 6 (34B, 70B)', () => {
    for (const name of names) {
      const plan = compileFor(name);
      const gateSlices = plan.weights.find((w) => w.id === 'w_gate.0')!.chunks.length;
      // x, the norm weight, the output and the gate and up slices
      const fits = 3 + 2 * gateSlices <= plan.limits.maxStorageBuffersPerShaderStage;
      for (const [entryName, n] of perLayer(plan)) assert.equal(n, fits ? 5 : 6, `${name} ${entryName} (${gateSlices} gate slices)`);
      assert.equal(fits, !['codellama-34b', 'llama2-70b'].includes(name), name);
    }
  });
});
