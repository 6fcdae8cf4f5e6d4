import { LscError, pointer } from '../errors.js';
import type { DimExpr, Graph, SymbolicDim } from './graph.js';

/**
 * Dim expressions: integers and names joined by `+`, `-` and `*` ("heads*headDim", "k+1").
 * Static dims evaluate to numbers; symbolic dims evaluate to their upper bound.
 */
export interface DimTable {
  /** Value of every static dim, and the upper bound of every symbolic one. */
  values: Record<string, number>;
  symbolic: Set<string>;
}

function isSymbolic(v: DimExpr | SymbolicDim): v is SymbolicDim {
  return typeof v === 'object' && v !== null;
}

const TOKEN = /\s*(\d+|[A-Za-z_][A-Za-z0-9_]*|[+*-])\s*/y;

/**
 * Parses a dim expression once into a function of a name lookup (the runtime evaluates range
 * expressions per submission: no re-parsing on that path). Throws Error on bad syntax.
 */
export function compileDimExpr(expr: DimExpr): (lookup: (name: string) => number) => number {
  if (typeof expr === 'number') return () => expr;
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expr.length) {
    const m = TOKEN.exec(expr);
    if (!m) throw new Error(`cannot parse dim expression '${expr}'`);
    tokens.push(m[1]);
  }
  // sum of products: terms[i] = [sign, factors]
  const terms: { sign: number; factors: (number | string)[] }[] = [];
  let i = 0;
  let sign = 1;
  const operand = (): number | string => {
    const t = tokens[i++];
    if (t === undefined || '+-*'.includes(t)) throw new Error(`cannot parse dim expression '${expr}'`);
    return /^\d+$/.test(t) ? Number(t) : t;
  };
  while (i < tokens.length) {
    const factors = [operand()];
    while (tokens[i] === '*') { i++; factors.push(operand()); }
    terms.push({ sign, factors });
    const op = tokens[i++];
    if (op === undefined) break;
    if (op !== '+' && op !== '-') throw new Error(`cannot parse dim expression '${expr}'`);
    sign = op === '+' ? 1 : -1;
  }
  if (!terms.length) throw new Error(`cannot parse dim expression '${expr}'`);
  return (lookup) => {
    let total = 0;
    for (const t of terms) {
      let v = 1;
      for (const f of t.factors) v *= typeof f === 'number' ? f : lookup(f);
      total += t.sign * v;
    }
    return total;
  };
}

/** Evaluates `expr` given a lookup for names; throws Error (callers wrap with location). */
export function evalDimExpr(expr: DimExpr, lookup: (name: string) => number): number {
  return compileDimExpr(expr)(lookup);
}

/** Resolves graph.dims into numbers (symbolic dims to their bound), detecting cycles and bad names. */
export function resolveDims(graph: Graph, file?: string): DimTable {
  const values: Record<string, number> = {};
  const symbolic = new Set<string>();
  const visiting = new Set<string>();
  const resolve = (name: string): number => {
    if (name in values) return values[name];
    const decl = graph.dims[name];
    if (decl === undefined) throw new Error(`unknown dim '${name}'`);
    if (visiting.has(name)) throw new Error(`dim '${name}' is defined in terms of itself`);
    visiting.add(name);
    const at = pointer('dims', name);
    let v: number;
    try {
      v = evalDimExpr(isSymbolic(decl) ? decl.max : decl, resolve);
    } catch (e) {
      if (e instanceof LscError) throw e;
      throw new LscError(`dim '${name}': ${(e as Error).message}`, { file, pointer: at });
    }
    visiting.delete(name);
    if (!Number.isInteger(v) || v <= 0) {
      throw new LscError(`dim '${name}' must be a positive integer, got ${v}`, { file, pointer: at });
    }
    if (isSymbolic(decl)) symbolic.add(name);
    values[name] = v;
    return v;
  };
  for (const name of Object.keys(graph.dims)) resolve(name);
  return { values, symbolic };
}

/** Evaluates a dim expression against a resolved table, with the error located at `pointer`. */
export function dimValue(table: DimTable, expr: DimExpr, where: { file?: string; pointer: string }): number {
  try {
    return evalDimExpr(expr, (n) => {
      if (!(n in table.values)) throw new Error(`unknown dim '${n}'`);
      return table.values[n];
    });
  } catch (e) {
    throw new LscError((e as Error).message, where, 'declare it under "dims"');
  }
}
