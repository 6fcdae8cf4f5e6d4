/**
 * Hardening of the graph and config.json readers (issue 8): every value a user can put in a
 * graph or a config.json either compiles, or is refused as an LscError that names the value (file
 * and JSON pointer) before anything is sized from it. Each test is a finding that, before the
 * fix, hung or ran out of memory, crashed with a stack trace (exit 1), or compiled a plan that
 * computes something else. Pure: no GPU.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { LscError } from '../compiler/errors.js';
import { compileGraph, type CompileOptions } from '../compiler/compile.js';
import type { Graph } from '../compiler/ir/graph.js';
import { BOUNDS } from '../compiler/ir/bounds.js';
import { parseLlamaConfig } from '../compiler/builder/hf-config.js';
import { buildLlamaGraph } from '../compiler/builder/llama.js';
import { ROOT } from './helpers/run-cli.js';

const FILE = path.join(ROOT, 'graphs', 'tiny-code.json');
const tiny = JSON.parse(fs.readFileSync(FILE, 'utf8')) as Graph;
const CONFIG_FILE = path.join(ROOT, 'examples', 'models', 'tiny-code', 'config.json');
const tinyConfig = JSON.parse(fs.readFileSync(CONFIG_FILE, 'utf8')) as Record<string, unknown>;

type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A deep copy of tiny-code's graph after `edit`, which sees it untyped so it can break it freely. */
function mutated(edit: (g: Loose) => void): Graph {
  const g = structuredClone(tiny) as unknown as Loose;
  edit(g);
  return g as Graph;
}

/** Sets an own property the way JSON.parse does, even for '__proto__'. */
function defineOwn(obj: object, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const nodeIndex = (id: string): number => tiny.blocks.decoder.nodes.findIndex((n) => n.id === id);
const decoderNode = (g: Loose, id: string): Loose => g.blocks.decoder.nodes[nodeIndex(id)];

interface Expected { message: RegExp; pointer: string; file?: string }

/** Runs `run`, which must throw an LscError with this message, file and pointer, formatted on one line. */
function expectError(run: () => unknown, want: Expected): LscError {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected an LscError matching ${want.message}, but it compiled`);
  assert.ok(caught instanceof LscError, `expected an LscError, got ${(caught as Error)?.stack ?? String(caught)}`);
  assert.match(caught.message, want.message);
  assert.equal(caught.where.pointer, want.pointer, `pointer of: ${caught.message}`);
  assert.equal(caught.where.file, want.file ?? FILE, `file of: ${caught.message}`);
  assert.doesNotMatch(caught.format(), /\n/, 'format() is one line');
  return caught;
}

const compile = (g: Graph, opts: CompileOptions = {}) => (): unknown => compileGraph(g, { file: FILE, ...opts });

/** What `lsc compile MODEL_DIR` does with a config.json text: parse, check, build the graph, compile. */
const compileConfig = (text: string) => (): unknown => {
  const config = parseLlamaConfig(JSON.parse(text), CONFIG_FILE);
  return compileGraph(buildLlamaGraph(config, { name: 'tiny-code' }));
};
/** tiny-code's config.json text with `fields` replacing (or adding) raw JSON values, e.g. { rope_theta: '1e999' }. */
function configText(fields: Record<string, string>): string {
  const rest = Object.entries(tinyConfig).filter(([k]) => !Object.hasOwn(fields, k)).map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{${[...rest, ...Object.entries(fields).map(([k, v]) => `${JSON.stringify(k)}: ${v}`)].join(', ')}}`;
}

describe('graph hardening: sizes are bounded before anything is sized from them', () => {
  it('dims.layers 1000000 is refused at /dims/layers at once (before: 4.5 GB and SIGABRT after ~110 s)', () => {
    const t0 = performance.now();
    expectError(compile(mutated((g) => { g.dims.layers = 1_000_000; })),
      { message: /dim 'layers' \(decoder layers\) 1000000 exceeds 1024/, pointer: '/dims/layers' });
    assert.ok(performance.now() - t0 < 10_000, `refused in ${performance.now() - t0} ms`);
  });

  it('dims.layers 10000 is refused at /dims/layers (before: 18 s and a 220 MB artifact)', () => {
    expectError(compile(mutated((g) => { g.dims.layers = 10_000; })),
      { message: /dim 'layers' \(decoder layers\) 10000 exceeds 1024/, pointer: '/dims/layers' });
  });

  it('layers within bounds but every one an exit candidate is refused by the node-copy budget at /exit/candidates', () => {
    const t0 = performance.now();
    expectError(compile(mutated((g) => {
      g.dims.layers = 1000;
      g.exit.candidates = Array.from({ length: 999 }, (_, i) => i + 1);
    })), { message: /999 exit candidates over 1000 layers make \d+ node copies in the entry points, more than 250000/, pointer: '/exit/candidates' });
    assert.ok(performance.now() - t0 < 20_000, `refused in ${performance.now() - t0} ms`);
  });

  it('huge dims are user errors at their pointer, not "internal: a row of embed exceeds the binding limit"', () => {
    const cases: [string, number, RegExp][] = [
      ['d', 1e12, /dim 'd' \(hidden size\) 1000000000000 exceeds 65536/],
      ['d', 2 ** 53 + 2, /dim 'd' \(hidden size\) 9007199254740994 exceeds 65536/],
      ['headDim', 1e6, /dim 'headDim' \(head dimension\) 1000000 exceeds 1024/],
      ['heads', 1e5, /dim 'heads' \(attention heads\) 100000 exceeds 1024/],
      ['ffn', 1e9, /dim 'ffn' \(MLP width\) 1000000000 exceeds 262144/],
      ['vocab', 1e12, /dim 'vocab' \(vocabulary size\) 1000000000000 exceeds 1048576/],
    ];
    for (const [name, value, message] of cases) {
      expectError(compile(mutated((g) => { g.dims[name] = value; })), { message, pointer: `/dims/${name}` });
    }
  });

  it('dim arithmetic that leaves the safe integers or the bounds is refused at the expression (before: a width mismatch of 562949953421312)', () => {
    expectError(compile(mutated((g) => { g.dims.qDim = 'heads*headDim*d*d*d*d*d*d'; })),
      { message: /dim 'qDim' 562949953421312 exceeds 16777216/, pointer: '/dims/qDim' });
    expectError(compile(mutated((g) => { g.dims.qDim = 'd*d*d*d*d*d*d*d'; })),
      { message: /dim 'qDim': dim expression .* overflows/, pointer: '/dims/qDim' });
    expectError(compile(mutated((g) => { g.weights.wq.shape[0] = 'heads-heads'; })),
      { message: /dim expression "heads-heads" is 0; it must be at least 1/, pointer: '/weights/wq/shape/0' });
  });

  it('a literal weight dim of 2^32+1 is refused at the shape (before: compiled 8193 LM-head slices and a 4294967297u literal, invalid WGSL)', () => {
    expectError(compile(mutated((g) => { g.weights.lm_head.shape[0] = 2 ** 32 + 1; })),
      { message: /dim 4294967297 exceeds 16777216/, pointer: '/weights/lm_head/shape/0' });
  });

  it('a logits buffer past the binding limit is refused at /dims/vocab (before: compiled a plan no adapter can bind)', () => {
    expectError(compile(mutated((g) => { g.dims.vocab = 1 << 20; })),
      { message: /buffer io:logits \(logits \[64, 1048576\] f32\) needs 268435456 bytes; the target binds at most 134217728/, pointer: '/dims/vocab' });
  });

  it('a weight row slice past a small binding limit is a user error at the weight (before: internal error)', () => {
    expectError(compile(structuredClone(tiny), { limits: { maxStorageBufferBindingSize: 4096 } }),
      { message: /a row slice of weight 'embed' \(32 rows of 256 bytes\) exceeds the binding limit 4096/, pointer: '/weights/embed/shape/1' });
  });

  it('a prefill chunk of 1e15 is refused at /defaults/prefillChunk (before: compiled)', () => {
    expectError(compile(mutated((g) => { g.defaults.prefillChunk = 1e15; })),
      { message: /prefill chunk 1000000000000000 exceeds 1048576/, pointer: '/defaults/prefillChunk' });
  });

  it('the bounds admit a 405B-class config (126 layers, hidden 16384, ffn 53248, 128 heads, vocab 128256)', function () {
    this.timeout(60_000);
    const config = parseLlamaConfig({
      hidden_size: 16384, intermediate_size: 53248, num_hidden_layers: 126, num_attention_heads: 128, num_key_value_heads: 8,
      vocab_size: 128256, rms_norm_eps: 1e-5, rope_theta: 500000, max_position_embeddings: 131072, eos_token_id: [128001, 128009],
      rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    }, 'config.json');
    // a few exit candidates keep this test at a second; the default 31 also fit the budgets (205k dispatches)
    const { plan } = compileGraph(buildLlamaGraph(config, { name: '405b', exitCandidates: [8, 32] }));
    assert.equal(plan.dims.layers, 126);
    assert.equal(plan.kvBuffers.length, 126);
    assert.ok(plan.weights.find((w) => w.id === 'w_down.0')!.chunks.length > 1, 'the big matrices are split into binding-sized slices');
  });
});

describe('graph hardening: kernel preconditions are compile-time user errors', () => {
  it('a hidden size not a multiple of 4 is refused at /dims/d (before: internal: matmul K must be a multiple of 4)', () => {
    expectError(compile(mutated((g) => { g.dims.d = 130; })),
      { message: /embedding width 130 must be a multiple of 4/, pointer: '/dims/d' });
  });

  it('an MLP width not a multiple of 4 is refused at /dims/ffn (before: internal: matmul K=350 must be a multiple of 4)', () => {
    expectError(compile(mutated((g) => { g.dims.ffn = 350; })),
      { message: /matmul 'L0\.down': inner dimension 350 must be a multiple of 4/, pointer: '/dims/ffn' });
  });

  it('a head dimension not a multiple of 4 is refused at /dims/headDim (before: compiled; --target cpu crashed in codegen)', () => {
    expectError(compile(mutated((g) => { g.dims.headDim = 30; }), { target: 'cpu' }),
      { message: /attention 'L0\.attn': headDim 30 must be a multiple of 4/, pointer: '/dims/headDim' });
  });

  it('a vocabulary that is not a multiple of 4 still compiles (no kernel needs it)', () => {
    const { plan } = compileGraph(mutated((g) => { g.dims.vocab = 2051; }), { file: FILE });
    assert.equal(plan.dims.vocab, 2051);
  });
});

describe('graph hardening: names that are Object.prototype members', () => {
  const cases: [string, (g: Loose) => void, RegExp, string][] = [
    ['a node input "constructor"', (g) => { decoderNode(g, 'q').in[0] = 'constructor'; },
      /input 'constructor' is not produced by any earlier node/, `/blocks/decoder/nodes/${nodeIndex('q')}/in/0`],
    ['a body input "hasOwnProperty"', (g) => { g.body[0].in[0] = 'hasOwnProperty'; },
      /input 'hasOwnProperty' is not produced by any earlier node/, '/body/0/in/0'],
    ['a weight "@__proto__"', (g) => { decoderNode(g, 'q').in[1] = '@__proto__'; },
      /unknown weight '@__proto__'/, `/blocks/decoder/nodes/${nodeIndex('q')}/in/1`],
    ['a weight "@constructor"', (g) => { decoderNode(g, 'q').in[1] = '@constructor'; },
      /unknown weight '@constructor'/, `/blocks/decoder/nodes/${nodeIndex('q')}/in/1`],
    ['a repeat block "constructor"', (g) => { g.body[1].block = 'constructor'; }, /repeat refers to unknown block 'constructor'/, '/body/1/block'],
    ['a repeat block "toString"', (g) => { g.body[1].block = 'toString'; }, /repeat refers to unknown block 'toString'/, '/body/1/block'],
    ['a repeat block "__proto__"', (g) => { g.body[1].block = '__proto__'; }, /repeat refers to unknown block '__proto__'/, '/body/1/block'],
    ['a dim expression "constructor"', (g) => { g.dims.d = 'constructor'; }, /dim 'd': unknown dim 'constructor'/, '/dims/d'],
    ['a shape dim "valueOf"', (g) => { g.weights.lm_head.shape[0] = 'valueOf'; }, /unknown dim 'valueOf'/, '/weights/lm_head/shape/0'],
    ['a weight tied to "constructor"', (g) => { g.weights.lm_head.tiedTo = 'constructor'; },
      /weight 'lm_head' is tied to unknown weight 'constructor'/, '/weights/lm_head/tiedTo'],
    ['the repeat carrying "__proto__"', (g) => { g.body[1].in[0] = '__proto__'; },
      /input '__proto__' is not produced by any earlier node/, '/body/1/in/0'],
  ];
  for (const [what, edit, message, pointer] of cases) {
    it(`${what} is an unknown name, not a stack trace`, () => {
      expectError(compile(mutated(edit)), { message, pointer });
    });
  }

  it('dims named "constructor" and "__proto__" are ordinary dims', () => {
    for (const name of ['constructor', '__proto__']) {
      const g = mutated((x) => {
        defineOwn(x.dims, name, x.dims.ffn);
        delete x.dims.ffn;
        for (const w of Object.values(x.weights) as Loose[]) w.shape = w.shape.map((s: unknown) => (s === 'ffn' ? name : s));
      });
      const { plan } = compileGraph(g, { file: FILE });
      assert.equal(Object.getOwnPropertyDescriptor(plan.dims, name)?.value, 352, `dims.${name}`);
      assert.deepEqual(plan.weights.find((w) => w.id === 'w_up.0')!.shape, [352, 128]);
    }
  });

  it('a block and a weight named "constructor" are ordinary names', () => {
    const { plan } = compileGraph(mutated((g) => {
      g.blocks.constructor = g.blocks.decoder;
      delete g.blocks.decoder;
      g.body[1].block = 'constructor';
      defineOwn(g.weights, 'constructor', g.weights.final_norm);
      delete g.weights.final_norm;
      g.body[2].in[1] = '@constructor';
    }), { file: FILE });
    assert.ok(plan.weights.some((w) => w.id === 'constructor'));
  });
});

describe('graph hardening: values that compiled into a plan computing something else', () => {
  const eps = `/blocks/decoder/nodes/${nodeIndex('h')}/attrs/eps`;
  it('rms_norm eps -1 is refused at the attribute (before: compiled; reported to decode token 0 forever)', () => {
    expectError(compile(mutated((g) => { decoderNode(g, 'h').attrs.eps = -1; })),
      { message: /rms_norm node 'h': attribute 'eps' must be a number in \(0, 1\], got -1/, pointer: eps });
  });

  it('rms_norm eps 0, "1e-5" (a string) and 1e39 (not an f32) are refused (before: compiled)', () => {
    for (const v of [0, '1e-5', 1e39]) {
      expectError(compile(mutated((g) => { decoderNode(g, 'h').attrs.eps = v; })),
        { message: /attribute 'eps' must be a number in \(0, 1\]/, pointer: eps });
    }
  });

  it('an attribute no op reads ("epsilon") is refused (before: ignored, eps defaulted silently)', () => {
    expectError(compile(mutated((g) => { decoderNode(g, 'h').attrs = { epsilon: 1e-5 }; })),
      { message: /rms_norm node 'h' has unknown attribute 'epsilon'/, pointer: `/blocks/decoder/nodes/${nodeIndex('h')}/attrs/epsilon` });
  });

  it('attention without causal: true is refused at the attribute', () => {
    expectError(compile(mutated((g) => { decoderNode(g, 'attn').attrs.causal = false; })),
      { message: /attribute 'causal' must be true, got false/, pointer: `/blocks/decoder/nodes/${nodeIndex('attn')}/attrs/causal` });
  });

  it('repeat layers [0, 100] with dims.layers 8 is refused (before: compiled "8 layers", planned 100)', () => {
    expectError(compile(mutated((g) => { g.body[1].layers = [0, 100]; })),
      { message: /repeat layers \[0, 100\) must be \[0, 8\): the decoder layers 0\.\.dims\.layers-1/, pointer: '/body/1/layers' });
  });

  it('repeat layers [5, 2] is refused with the range it must be (before: "exit candidate 1 must be a layer in 1..-4")', () => {
    expectError(compile(mutated((g) => { g.body[1].layers = [5, 2]; })),
      { message: /repeat layers \[5, 2\) must be \[0, 8\)/, pointer: '/body/1/layers' });
  });

  it('a stack split over two repeats is refused (before: internal: value L7.y has no buffer)', () => {
    expectError(compile(mutated((g) => {
      g.body[1].layers = [0, 4];
      g.body.splice(2, 0, { id: 'upper', op: 'repeat', block: 'decoder', layers: [4, 'layers'], in: ['trunk'] });
      g.body[3].in[0] = 'upper';
      g.exit.candidates = [1, 2, 3];
    })), { message: /more than one repeat node/, pointer: '/body/2' });
  });

  it('a repeat carrying a graph input is a user error (before: internal: value tokens used before definition)', () => {
    expectError(compile(mutated((g) => { g.body[1].in[0] = 'tokens'; })),
      { message: /a repeat must carry a node's output \(the embedding\), not input 'tokens'/, pointer: '/body/1/in/0' });
  });

  it('exit candidates past the layer count are refused; a 1-layer model says why', () => {
    expectError(compile(mutated((g) => { g.exit.candidates = [2, 100]; })),
      { message: /exit candidate 100 must be a layer in 1\.\.7/, pointer: '/exit/candidates/1' });
    expectError(compile(mutated((g) => { g.dims.layers = 1; g.exit.candidates = [1]; g.defaults.exitLayer = 1; })),
      { message: /exit candidate 1: a model of 1 layer has no layer to exit after/, pointer: '/exit/candidates/0' });
  });

  it('a verify span the runtime cannot run is refused, saying why (before: ignored)', () => {
    expectError(compile(mutated((g) => { g.verify.layers = ['E', 4]; })),
      { message: /verify_subgraph layers must end at the last layer \(8\), got 4/, pointer: '/verify/layers/1' });
    expectError(compile(mutated((g) => { g.verify.layers = ['layers', 'layers']; })),
      { message: /verify_subgraph layers start "layers" is layer 8 for exit 1: layers 1\.\.7 would never run/, pointer: '/verify/layers/0' });
    // E=1 starts at 1 = E, but E=2 would start inside the draft's layers, whose state is gone
    expectError(compile(mutated((g) => { g.verify.layers = ['1', 'layers']; })),
      { message: /layer 1 for exit 2: verify would need the trunk state after layer 0, which the draft's layers 1\.\.1 overwrite in place/, pointer: '/verify/layers/0' });
    expectError(compile(mutated((g) => { g.verify.layers = ['E-1', 'layers']; })),
      { message: /verify_subgraph layers start "E-1" is layer 1 for exit 2: verify would need the trunk state after layer 0/, pointer: '/verify/layers/0' });
    expectError(compile(mutated((g) => { g.verify.layers = ['F', 'layers']; })),
      { message: /verify_subgraph layers start "F": unknown dim 'F' \(the exit layer is "E"\)/, pointer: '/verify/layers/0' });
    // from must say what layers says
    expectError(compile(mutated((g) => { g.verify.layers = ['0', 'layers']; })),
      { message: /verify_subgraph from is "exit_query_cache", but layers start at 0: verify starts from the embedding/, pointer: '/verify/from' });
    expectError(compile(mutated((g) => { g.verify.from = 'embedding'; })),
      { message: /verify_subgraph from is "embedding", but layers start at E/, pointer: '/verify/from' });
    expectError(compile(mutated((g) => { g.verify.positions = 'k'; })),
      { message: /verify_subgraph positions must be "k\+1"/, pointer: '/verify/positions' });
  });

  it('heads that differ from the body after the trunk are refused (before: compiled)', () => {
    expectError(compile(mutated((g) => { g.verify.head = ['next']; })),
      { message: /verify_subgraph head must be the exit_point head/, pointer: '/verify/head' });
    expectError(compile(mutated((g) => { g.exit.head = ['final', 'logits']; g.verify.head = ['final', 'logits']; })),
      { message: /exit_point head \["final","logits"\] must list the body nodes after the trunk, in order: \["final","logits","next"\]/, pointer: '/exit/head' });
    expectError(compile(mutated((g) => { g.body.pop(); g.outputs = ['logits']; g.exit.head = ['final', 'logits']; g.verify.head = ['final', 'logits']; })),
      { message: /the head must end with an argmax node/, pointer: '/exit/head' });
  });

  it('rope or attention headDim other than dims.headDim is refused (before: compiled; the RoPE table is sized by dims.headDim)', () => {
    expectError(compile(mutated((g) => {
      for (const id of ['q_rot', 'k_rot']) Object.assign(decoderNode(g, id).attrs, { heads: 8, headDim: 16 });
    })), { message: /rope 'L0\.q_rot' headDim is 16 but dims\.headDim is 32/, pointer: `/blocks/decoder/nodes/${nodeIndex('q_rot')}` });
  });

  it('the dims the runtime reads by name must be declared (before: compiled a plan without dims.vocab)', () => {
    expectError(compile(mutated((g) => { delete g.dims.vocab; g.weights.embed.shape[0] = 2048; g.weights.lm_head.shape[0] = 2048; })),
      { message: /dims has no 'vocab'/, pointer: '/dims' });
  });

  it('rope theta Infinity (JSON 1e999) is refused at /rope/theta (before: compiled)', () => {
    const g = JSON.parse(JSON.stringify(tiny).replace('"theta":10000', '"theta":1e999')) as Graph;
    expectError(compile(g), { message: /rope theta must be a finite number, got Infinity/, pointer: '/rope/theta' });
  });
});

describe('config.json hardening: bounds and numbers at config.json pointers, before building a graph', () => {
  const at = (pointer: string): Expected & { file: string } => ({ message: /./, pointer, file: CONFIG_FILE });
  const cases: [string, Record<string, string>, RegExp, string][] = [
    ['hidden_size 1e12 (before: internal: a row of embed exceeds the binding limit)', { hidden_size: '1e12' },
      /'hidden_size' 1000000000000 exceeds 65536/, '/hidden_size'],
    ['num_hidden_layers 1e6 (before: out of memory)', { num_hidden_layers: '1000000' }, /'num_hidden_layers' 1000000 exceeds 1024/, '/num_hidden_layers'],
    ['vocab_size 1e12 (before: out of memory)', { vocab_size: '1e12' }, /'vocab_size' 1000000000000 exceeds 1048576/, '/vocab_size'],
    ['intermediate_size 1e9 (before: internal error)', { intermediate_size: '1000000000' }, /'intermediate_size' 1000000000 exceeds 262144/, '/intermediate_size'],
    ['head_dim 2^40 (before: out of memory)', { head_dim: '1099511627776' }, /'head_dim' 1099511627776 exceeds 1024/, '/head_dim'],
    ['max_position_embeddings 1e300 (not an exact integer; before: accepted)', { max_position_embeddings: '1e300' },
      /'max_position_embeddings' must be a positive integer, got 1e\+300/, '/max_position_embeddings'],
    ['rope_theta 1e999 (Infinity; before: accepted)', { rope_theta: '1e999' }, /'rope_theta' must be a positive number, got Infinity/, '/rope_theta'],
    ['rms_norm_eps -1', { rms_norm_eps: '-1' }, /'rms_norm_eps' must be a positive number at most 1, got -1/, '/rms_norm_eps'],
    ['rms_norm_eps 1e39 (not an f32; before: accepted)', { rms_norm_eps: '1e39' }, /'rms_norm_eps' must be a positive number at most 1, got 1e\+39/, '/rms_norm_eps'],
    ['hidden_size 130 (before: internal: matmul K=130 must be a multiple of 4)', { hidden_size: '130', head_dim: '32' },
      /hidden_size 130 must be a multiple of 4/, '/hidden_size'],
    ['head_dim 30 (before: accepted; --target cpu crashed in codegen)', { head_dim: '30' }, /head dimension 30 must be an integer multiple of 4/, '/head_dim'],
    ['num_hidden_layers 1 (before: TypeError: Reduce of empty array)', { num_hidden_layers: '1' },
      /num_hidden_layers 1: lsc needs at least 2 layers/, '/num_hidden_layers'],
    ['bos_token_id -1 (before: a schema error at the built graph\'s /tokens/bos)', { bos_token_id: '-1' },
      /bos_token_id must be a token id/, '/bos_token_id'],
    ['rope_scaling.factor -1 (before: a schema error at the built graph)',
      { rope_scaling: '{"rope_type": "llama3", "factor": -1, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}' },
      /rope_scaling\.factor must be a positive number, got -1/, '/rope_scaling/factor'],
    ['rope_scaling high_freq_factor = low_freq_factor (before: accepted; the RoPE table divides by their difference)',
      { rope_scaling: '{"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 4, "original_max_position_embeddings": 8192}' },
      /rope_scaling\.high_freq_factor \(4\) must be larger than low_freq_factor \(4\)/, '/rope_scaling/high_freq_factor'],
    ['rope_scaling.factor 1e999 (Infinity; before: accepted)', { rope_scaling: '{"type": "linear", "factor": 1e999}' },
      /rope_scaling\.factor must be a positive number, got Infinity/, '/rope_scaling/factor'],
    ['rope_scaling type "dynamic"', { rope_scaling: '{"type": "dynamic", "factor": 2}' },
      /rope_scaling type "dynamic" is not supported/, '/rope_scaling/type'],
  ];
  for (const [what, fields, message, pointer] of cases) {
    it(`${what}`, () => {
      const t0 = performance.now();
      expectError(compileConfig(configText(fields)), { ...at(pointer), message });
      assert.ok(performance.now() - t0 < 10_000, `refused in ${performance.now() - t0} ms`);
    });
  }

  it('the unmodified config and a head_dim other than hidden/heads still compile', () => {
    assert.equal((compileConfig(configText({}))() as { plan: { dims: { d: number } } }).plan.dims.d, 128);
    assert.equal((compileConfig(configText({ head_dim: '16' }))() as { plan: { dims: { headDim: number } } }).plan.dims.headDim, 16);
  });
});

describe('graph hardening: the bounds module', () => {
  it('states bounds above every released Llama, and budgets above the 405B-class plan', () => {
    assert.ok(BOUNDS.layers >= 126 && BOUNDS.hidden >= 16384 && BOUNDS.ffn >= 53248 && BOUNDS.heads >= 128);
    assert.ok(BOUNDS.vocab >= 128256 && BOUNDS.ctx >= 131072 && BOUNDS.headDim >= 256);
    assert.ok(BOUNDS.dispatches >= 205_010 && BOUNDS.nodeCopies >= 100_000);
    // every size computed from bounded dims (dim × dim × 8 bytes) stays an exact integer
    assert.ok(BOUNDS.dim * BOUNDS.dim * 8 <= Number.MAX_SAFE_INTEGER);
  });
});
