/**
 * The graph validator (compiler/ir/validate.ts) and the passes that check a graph's meaning
 * (dims, expand-layers, infer-shapes, entry-points), each on a mutated copy of
 * graphs/tiny-code.json: one test per failure class, asserting the LscError, its message and the
 * exact JSON pointer (RFC 6901) of the offending value, since the pointer is what lets a user find
 * the mistake in a 600-line file. Pure: no GPU.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LscError } from '../compiler/errors.js';
import { compileGraph } from '../compiler/compile.js';
import type { Graph, SymbolicDim } from '../compiler/ir/graph.js';
import { validateGraph } from '../compiler/ir/validate.js';
import { resolveDims } from '../compiler/ir/dims.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const FILE = path.join(root, 'graphs', 'tiny-code.json');
const tiny = JSON.parse(fs.readFileSync(FILE, 'utf8')) as Graph;

/** A deep copy of tiny-code's graph after `edit` (edits see it untyped, so they can break it freely). */
function mutated(edit: (g: Graph & Record<string, unknown>) => void): unknown {
  const g = structuredClone(tiny) as Graph & Record<string, unknown>;
  edit(g);
  return g;
}

/** Index of a decoder node by id, so pointers in the tests read as what they point at. */
const node = (id: string): number => tiny.blocks.decoder.nodes.findIndex((n) => n.id === id);
const bodyNode = (id: string): number => tiny.body.findIndex((n) => n.id === id);

interface Expected {
  message: RegExp;
  pointer: string;
}

function expectError(run: () => unknown, want: Expected): LscError {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected an LscError matching ${want.message}, but nothing was thrown`);
  assert.ok(caught instanceof LscError, `expected an LscError, got ${(caught as Error)?.stack ?? String(caught)}`);
  assert.match(caught.message, want.message);
  assert.equal(caught.where.pointer, want.pointer, `pointer of: ${caught.message}`);
  assert.equal(caught.where.file, FILE, `file of: ${caught.message}`);
  return caught;
}

/** Through the whole compiler (validator, dims, passes), the way `lsc compile` sees a graph. */
const compile = (raw: unknown) => (): unknown => compileGraph(raw as Graph, { file: FILE });
/** The validator alone. */
const validate = (raw: unknown) => (): unknown => validateGraph(raw, FILE);

describe('graph validation: errors point at the offending value', () => {
  it('accepts the unmodified graph (the mutations below are the only defect)', () => {
    validateGraph(structuredClone(tiny), FILE);
    compileGraph(structuredClone(tiny), { file: FILE });
  });

  describe('schema', () => {
    it('wrong format string', () => {
      expectError(validate(mutated((g) => { g.format = 'lsc.graph/2' as never; })),
        { message: /does not match the lsc\.graph\/1 schema: must be "lsc\.graph\/1"/, pointer: '/format' });
    });

    it('missing required section', () => {
      expectError(validate(mutated((g) => { delete (g as Partial<Graph>).verify; })),
        { message: /schema: missing property 'verify'/, pointer: '' });
      // a nested one points at the object that lacks it
      expectError(validate(mutated((g) => { delete (g.dtypes as Partial<Graph['dtypes']>).kv; })),
        { message: /schema: missing property 'kv'/, pointer: '/dtypes' });
    });

    it('unknown property (a typo of attrs)', () => {
      const i = node('q_rot');
      expectError(validate(mutated((g) => { (g.blocks.decoder.nodes[i] as unknown as Record<string, unknown>).atrs = {}; })),
        { message: /schema: unknown property 'atrs'/, pointer: `/blocks/decoder/nodes/${i}` });
    });

    it('unknown op', () => {
      const i = node('act');
      const e = expectError(validate(mutated((g) => { g.blocks.decoder.nodes[i].op = 'gelu' as never; })),
        { message: /schema: must be one of \[.*"silu".*\]/, pointer: `/blocks/decoder/nodes/${i}/op` });
      assert.ok(e.hint, 'schema errors carry a hint');
    });
  });

  describe('node references', () => {
    it('an input that no node produces (a typo of an id)', () => {
      const i = node('attn');
      expectError(compile(mutated((g) => { g.blocks.decoder.nodes[i].in[2] = 'vv'; })),
        { message: /input 'vv' is not produced by any earlier node/, pointer: `/blocks/decoder/nodes/${i}/in/2` });
    });

    it('a node reading a later node (a cycle)', () => {
      const i = node('q');
      expectError(validate(mutated((g) => { g.blocks.decoder.nodes[i].in[0] = 'q_rot'; })),
        { message: /node 'q' reads 'q_rot', which is produced by itself or a later node \(a cycle\)/, pointer: `/blocks/decoder/nodes/${i}/in/0` });
      // in the body too, and a node reading itself
      const j = bodyNode('final');
      expectError(validate(mutated((g) => { g.body[j].in[0] = 'final'; })),
        { message: /node 'final' reads 'final'.*a cycle/, pointer: `/body/${j}/in/0` });
    });

    it('duplicate node id', () => {
      const i = node('v');
      expectError(validate(mutated((g) => { g.blocks.decoder.nodes[i].id = 'k'; })),
        { message: /duplicate node id 'k'/, pointer: `/blocks/decoder/nodes/${i}/id` });
    });

    it('block output that is not a node of the block', () => {
      expectError(validate(mutated((g) => { g.blocks.decoder.out = 'yy'; })),
        { message: /block output 'yy' is not a node of block 'decoder'/, pointer: '/blocks/decoder/out' });
    });

    it('repeat of an unknown block', () => {
      const j = bodyNode('trunk');
      expectError(compile(mutated((g) => { g.body[j].block = 'decodr'; })),
        { message: /repeat refers to unknown block 'decodr'/, pointer: `/body/${j}/block` });
    });

    it('graph output that is not a body node', () => {
      expectError(validate(mutated((g) => { g.outputs = ['logits', 'nxt']; })),
        { message: /output 'nxt' is not a body node/, pointer: '/outputs' });
    });
  });

  describe('weights', () => {
    it('reference to an undeclared weight', () => {
      const i = node('k');
      expectError(compile(mutated((g) => { g.blocks.decoder.nodes[i].in[1] = '@nope'; })),
        { message: /unknown weight '@nope'/, pointer: `/blocks/decoder/nodes/${i}/in/1` });
    });

    it('a per-layer weight used in the body', () => {
      const j = bodyNode('logits');
      expectError(compile(mutated((g) => { g.body[j].in[1] = '@wq'; })),
        { message: /per-layer weight '@wq' used outside a layer block/, pointer: `/body/${j}/in/1` });
    });

    it('weight shape disagreeing with its matmul points at the node', () => {
      const i = node('q');
      expectError(compile(mutated((g) => { g.weights.wq.shape = ['d', 'ffn']; })),
        { message: /matmul 'L0\.q': cannot multiply \[T, 128\] by weightᵀ of \[128, 352\]: inner dims differ/, pointer: `/blocks/decoder/nodes/${i}` });
      const n = node('h2');
      expectError(compile(mutated((g) => { g.weights.ffn_norm.shape = ['ffn']; })),
        { message: /rms_norm 'L0\.h2': norm weight must have shape \[128\], got \[352\]/, pointer: `/blocks/decoder/nodes/${n}` });
    });

    it('tiedTo an unknown weight', () => {
      expectError(validate(mutated((g) => { g.weights.lm_head.tiedTo = 'embedding'; })),
        { message: /weight 'lm_head' is tied to unknown weight 'embedding'/, pointer: '/weights/lm_head/tiedTo' });
    });

    it('tiedTo a weight of another shape', () => {
      expectError(validate(mutated((g) => { g.weights.final_norm.tiedTo = 'embed'; })),
        { message: /weight 'final_norm' must have the shape of 'embed'/, pointer: '/weights/final_norm/shape' });
    });
  });

  describe('attributes', () => {
    it('rope attrs inconsistent with the width of its input', () => {
      const i = node('q_rot');
      expectError(compile(mutated((g) => { g.blocks.decoder.nodes[i].attrs = { heads: 2, headDim: 'headDim' }; })),
        { message: /rope 'L0\.q_rot': input width 128 is not heads\*headDim = 64/, pointer: `/blocks/decoder/nodes/${i}` });
    });

    it('attention heads not a multiple of kvHeads', () => {
      const i = node('attn');
      expectError(compile(mutated((g) => { g.blocks.decoder.nodes[i].attrs!.kvHeads = 3; })),
        { message: /attention 'L0\.attn': heads \(4\) must be a multiple of kvHeads \(3\)/, pointer: `/blocks/decoder/nodes/${i}` });
    });

    it('an attribute naming an unknown dim points at the attribute', () => {
      const i = node('attn');
      expectError(compile(mutated((g) => { g.blocks.decoder.nodes[i].attrs!.headDim = 'headDims'; })),
        { message: /unknown dim 'headDims'/, pointer: `/blocks/decoder/nodes/${i}/attrs/headDim` });
    });
  });

  describe('dims', () => {
    it('a dim that references an unknown dim', () => {
      expectError(compile(mutated((g) => { g.dims.qDim = 'heads*headDimm'; })),
        { message: /dim 'qDim': unknown dim 'headDimm'/, pointer: '/dims/qDim' });
    });

    it('a dim defined in terms of itself', () => {
      expectError(compile(mutated((g) => { g.dims.ffn = 'ffn+1'; })),
        { message: /dim 'ffn'.*defined in terms of itself/, pointer: '/dims/ffn' });
      // through another dim: resolving qDim reaches kvDim, which finds qDim mid-resolution
      expectError(compile(mutated((g) => { g.dims.qDim = 'kvDim'; g.dims.kvDim = 'qDim'; })),
        { message: /dim 'kvDim': dim 'qDim' is defined in terms of itself/, pointer: '/dims/kvDim' });
    });

    it('a zero or negative dim', () => {
      expectError(compile(mutated((g) => { g.dims.ffn = 0; })),
        { message: /dim 'ffn' must be a positive integer, got 0/, pointer: '/dims/ffn' });
      expectError(compile(mutated((g) => { g.dims.ffn = 'd-256'; })),
        { message: /dim 'ffn' must be a positive integer, got -128/, pointer: '/dims/ffn' });
      // a negative literal is already a schema error
      expectError(validate(mutated((g) => { g.dims.ffn = -1; })),
        { message: /schema: must be >= 0/, pointer: '/dims/ffn' });
      // a symbolic dim's bound too
      expectError(compile(mutated((g) => { (g.dims.T as SymbolicDim).max = 'ctx-ctx'; })),
        { message: /dim 'T' must be a positive integer, got 0/, pointer: '/dims/T' });
    });

    it('symbolic dims resolve to their bound', () => {
      const t = resolveDims(tiny, FILE);
      assert.equal(t.values.qDim, 128);
      assert.equal(t.values.T, 1024);
      assert.deepEqual([...t.symbolic].sort(), ['T', 'ctx', 'k']);
    });
  });

  describe('exits and defaults', () => {
    it('default exit layer not among the candidates', () => {
      expectError(validate(mutated((g) => { g.exit.candidates = [2, 4]; g.defaults.exitLayer = 3; })),
        { message: /default exit layer 3 is not among the exit candidates \[2,4\]/, pointer: '/defaults/exitLayer' });
    });

    it('numSpeculations above dims.k.max', () => {
      const kMax = (tiny.dims.k as SymbolicDim).max as number;
      expectError(validate(mutated((g) => { g.defaults.numSpeculations = kMax + 1; })),
        { message: new RegExp(`default numSpeculations ${kMax + 1} exceeds dims\\.k\\.max ${kMax}`), pointer: '/defaults/numSpeculations' });
    });

    it('an exit candidate at or past the last layer', () => {
      // tiny-code has 8 layers: exits after layers 1..7 leave at least one layer to verify
      const candidates = [tiny.defaults.exitLayer, 8];
      expectError(compile(mutated((g) => { g.exit.candidates = candidates; })),
        { message: /exit candidate 8 must be a layer in 1\.\.7/, pointer: '/exit/candidates/1' });
    });

    it('an exit head node that is not a body node', () => {
      expectError(compile(mutated((g) => { g.exit.head = ['final', 'logitz', 'next']; })),
        { message: /head node 'logitz' is not a body node/, pointer: '/exit/head/1' });
    });
  });

  describe('JSON pointers escape names (RFC 6901: "~" → "~0", "/" → "~1")', () => {
    // Dim and weight names are free-form keys in the schema, so a pointer built from them must
    // escape them; otherwise "/dims/a/b" points at a key "a" and then "b".
    it('a bad dim whose name has a slash', () => {
      expectError(compile(mutated((g) => { g.dims['ffn/2'] = 0; })),
        { message: /dim 'ffn\/2' must be a positive integer/, pointer: '/dims/ffn~12' });
    });

    it('a weight whose name has a slash and a bad shape', () => {
      expectError(compile(mutated((g) => {
        g.weights['lm/head'] = { ...g.weights.lm_head, shape: ['vocab', 'dd'] };
        g.body[bodyNode('logits')].in[1] = '@lm/head';
      })), { message: /unknown dim 'dd'/, pointer: '/weights/lm~1head/shape/1' });
    });
  });

  describe('error format', () => {
    it('.format() is one line with the file, the pointer and the fix', () => {
      const i = node('attn');
      const e = expectError(compile(mutated((g) => { g.blocks.decoder.nodes[i].in[2] = 'vv'; })),
        { message: /input 'vv'/, pointer: `/blocks/decoder/nodes/${i}/in/2` });
      const line = e.format();
      assert.doesNotMatch(line, /\n/);
      assert.ok(line.includes(`(at ${FILE} #/blocks/decoder/nodes/${i}/in/2)`), line);
      assert.match(line, /\. Fix: check the node ids and their order$/);
    });

    it('.format() of a schema error at the root still names the place', () => {
      const e = expectError(validate(mutated((g) => { delete (g as Partial<Graph>).verify; })),
        { message: /missing property 'verify'/, pointer: '' });
      const line = e.format();
      assert.doesNotMatch(line, /\n/);
      assert.ok(line.includes(`(at ${FILE} #)`), line);
    });
  });
});

describe('checked-in graphs validate', () => {
  const dir = path.join(root, 'graphs');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

  it('there are the two bundled models and the 7 LayerSkip graphs', () => {
    assert.equal(files.length, 9, files.join(', '));
  });

  for (const f of files) {
    it(`graphs/${f}`, () => {
      const file = path.join(dir, f);
      const g = validateGraph(JSON.parse(fs.readFileSync(file, 'utf8')), file);
      const dims = resolveDims(g, file).values;
      assert.ok(g.exit.candidates.every((e) => e >= 1 && e < dims.layers), `candidates ${g.exit.candidates} within 1..${dims.layers - 1}`);
      assert.ok(g.exit.candidates.includes(g.defaults.exitLayer));
      assert.ok(g.defaults.numSpeculations <= dims.k);
      assert.equal(dims.qDim, dims.heads * dims.headDim);
      assert.equal(dims.heads % dims.kvHeads, 0);
    });
  }
});
