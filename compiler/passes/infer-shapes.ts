import type { DType, Graph } from '../ir/graph.js';
import { dimValue, type DimTable } from '../ir/dims.js';
import { LscError, pointer, pointerToken } from '../errors.js';
import type { FlatGraph, FlatInput, FlatNode } from './expand-layers.js';
import { BOUNDS, checkBound } from '../ir/bounds.js';
import { own } from '../ir/own.js';
import { FAMILIES } from '../../codegen/registry.js';
import type { NodeCheck } from '../../codegen/family.js';

/** A resolved dim: a number, or the name of a symbolic dim ('T'). */
export type RDim = number | string;

export interface TypedValue {
  shape: RDim[];
  dtype: DType;
}

export interface TypedGraph extends FlatGraph {
  values: Map<string, TypedValue>;
  weightShapes: Map<string, number[]>;
}

const fmt = (s: RDim[]): string => `[${s.join(', ')}]`;
const same = (a: RDim[], b: RDim[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/** Attribute that names a dim (e.g. heads: "kvHeads") or holds a number. */
function attrDim(node: FlatNode, key: string, dims: DimTable, file?: string): number {
  const v = node.attrs[key];
  if (typeof v !== 'number' && typeof v !== 'string') {
    throw new LscError(`${node.op} needs attribute '${key}'`, { file, pointer: `${node.pointer}/attrs` });
  }
  return dimValue(dims, v, { file, pointer: `${node.pointer}/attrs/${pointerToken(key)}` });
}

/** Computes the shape and dtype of every value and checks that operands agree. */
export function inferShapes(graph: Graph, flat: FlatGraph, dims: DimTable, file?: string): TypedGraph {
  const resolveShape = (shape: (string | number)[], at: string): RDim[] =>
    shape.map((d, i) => (typeof d === 'string' && dims.symbolic.has(d) ? d : dimValue(dims, d, { file, pointer: `${at}/${i}` })));

  /** Where a size comes from: the dim it names (what a user edits), else the expression's own place. */
  const sourceOf = (expr: unknown, at: string): string =>
    (typeof expr === 'string' && own(graph.dims, expr.trim()) !== undefined ? pointer('dims', expr.trim()) : at);
  const weightShapes = new Map<string, number[]>();
  for (const w of flat.weights.values()) {
    const shape = resolveShape(own(graph.weights, w.decl)!.shape, pointer('weights', w.decl, 'shape'));
    if (shape.some((d) => typeof d !== 'number')) {
      throw new LscError(`weight '${w.decl}' has a symbolic dim`, { file, pointer: pointer('weights', w.decl, 'shape') });
    }
    weightShapes.set(w.id, shape as number[]);
  }
  const values = new Map<string, TypedValue>();
  const inputValue = (inp: FlatInput): TypedValue => {
    if (inp.kind === 'weight') return { shape: weightShapes.get(inp.id)!, dtype: 'f16' };
    if (inp.kind === 'input') {
      const decl = own(graph.inputs, inp.name)!;
      return { shape: resolveShape(decl.shape, pointer('inputs', inp.name, 'shape')), dtype: decl.dtype };
    }
    const v = values.get(inp.id);
    if (!v) throw new Error(`internal: value ${inp.id} used before definition`);
    return v;
  };

  const nodes: FlatNode[] = [];
  for (const decl of flat.nodes) {
    // attributes that name dims become numbers for the passes after this one
    const node: FlatNode = { ...decl, attrs: { ...decl.attrs } };
    for (const key of ['heads', 'kvHeads', 'headDim']) {
      if (Object.hasOwn(node.attrs, key)) node.attrs[key] = attrDim(decl, key, dims, file);
    }
    nodes.push(node);
    const ins = node.inputs.map(inputValue);
    const where = { file, pointer: node.pointer };
    const fail = (msg: string): never => { throw new LscError(`${node.op} '${node.id}': ${msg}`, where); };
    const arity = (n: number): void => { if (ins.length !== n) fail(`takes ${n} inputs, got ${ins.length}`); };
    const isWeight = (i: number): boolean => node.inputs[i].kind === 'weight';
    const weightDecl = (i: number) => { const inp = node.inputs[i]; return inp.kind === 'weight' ? flat.weights.get(inp.id)! : undefined; };
    const weightDim = (i: number, axis: number): string => {
      const w = weightDecl(i)!;
      return sourceOf(own(graph.weights, w.decl)!.shape[axis], pointer('weights', w.decl, 'shape', axis));
    };
    let out: TypedValue;
    switch (node.op) {
      case 'embed': {
        arity(2);
        if (!isWeight(1) || ins[1].shape.length !== 2) fail('second input must be a [vocab, d] weight');
        if (ins[0].dtype !== 'i32' || ins[0].shape.length !== 1) fail(`tokens must be an i32 vector, got ${fmt(ins[0].shape)}`);
        out = { shape: [ins[0].shape[0], ins[1].shape[1]], dtype: 'f32' };
        break;
      }
      case 'rms_norm': {
        arity(2);
        const n = ins[0].shape[ins[0].shape.length - 1];
        if (!isWeight(1) || !same(ins[1].shape, [n])) fail(`norm weight must have shape [${n}], got ${fmt(ins[1].shape)}`);
        out = { ...ins[0] };
        break;
      }
      case 'matmul': {
        arity(2);
        if (!isWeight(1) || ins[1].shape.length !== 2) fail('second input must be a 2-D weight [out, in]');
        const [rows, k] = ins[0].shape;
        if (ins[0].shape.length !== 2 || k !== ins[1].shape[1]) {
          fail(`cannot multiply ${fmt(ins[0].shape)} by weightᵀ of ${fmt(ins[1].shape)}: inner dims differ`);
        }
        out = { shape: [rows, ins[1].shape[0]], dtype: 'f32' };
        break;
      }
      case 'rope': {
        arity(1);
        const heads = attrDim(node, 'heads', dims, file);
        const hd = attrDim(node, 'headDim', dims, file);
        if (ins[0].shape[1] !== heads * hd) fail(`input width ${ins[0].shape[1]} is not heads*headDim = ${heads * hd}`);
        if (hd % 2) fail('headDim must be even');
        out = { ...ins[0] };
        break;
      }
      case 'attention': {
        arity(3);
        const h = attrDim(node, 'heads', dims, file);
        const hkv = attrDim(node, 'kvHeads', dims, file);
        const hd = attrDim(node, 'headDim', dims, file);
        const attrAt = (key: string): string => sourceOf(decl.attrs[key], `${node.pointer}/attrs/${key}`);
        checkBound(`attention '${node.id}': heads`, h, BOUNDS.heads, { file, pointer: attrAt('heads') });
        checkBound(`attention '${node.id}': kvHeads`, hkv, BOUNDS.heads, { file, pointer: attrAt('kvHeads') });
        checkBound(`attention '${node.id}': headDim`, hd, BOUNDS.headDim, { file, pointer: attrAt('headDim') });
        if (h % hkv) fail(`heads (${h}) must be a multiple of kvHeads (${hkv})`);
        if (ins[0].shape[1] !== h * hd) fail(`q width ${ins[0].shape[1]} is not heads*headDim = ${h * hd}`);
        for (const i of [1, 2]) if (ins[i].shape[1] !== hkv * hd) fail(`k/v width ${ins[i].shape[1]} is not kvHeads*headDim = ${hkv * hd}`);
        if (node.attrs.causal !== true) fail('only causal attention is supported');
        if (node.attrs.kvCache !== 'layer') fail("attention needs kvCache: 'layer'");
        out = { shape: [ins[0].shape[0], h * hd], dtype: 'f32' };
        break;
      }
      case 'add':
      case 'mul': {
        arity(2);
        if (!same(ins[0].shape, ins[1].shape)) fail(`operand shapes differ: ${fmt(ins[0].shape)} vs ${fmt(ins[1].shape)}`);
        out = { ...ins[0] };
        break;
      }
      case 'silu':
        arity(1);
        out = { ...ins[0] };
        break;
      case 'argmax':
        arity(1);
        out = { shape: [ins[0].shape[0]], dtype: 'i32' };
        break;
      default:
        throw new LscError(`unknown op '${(node as FlatNode).op}'`, where);
    }
    // what the kernels that compute this op need of it (codegen/families/*)
    const check: NodeCheck = {
      node, file, inputShape: (i) => ins[i].shape, weightDimAt: weightDim,
      attrAt: (key) => sourceOf(decl.attrs[key], `${node.pointer}/attrs/${pointerToken(key)}`),
    };
    for (const f of FAMILIES) if (f.ops.includes(node.op)) f.check?.(check);
    values.set(node.id, out);
  }
  return { ...flat, nodes, values, weightShapes };
}
