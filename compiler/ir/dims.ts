import { LscError, pointer } from '../errors.js';
import type { DimExpr, Graph, SymbolicDim } from './graph.js';
import { BOUNDS, NAMED_DIM_BOUNDS, checkBound } from './bounds.js';
import { nameTable, own } from './own.js';

/**
 * Dim expressions: integers and names joined by `+`, `-` and `*` ("heads*headDim", "k+1").
 * Static dims evaluate to numbers; symbolic dims evaluate to their upper bound.
 */
export interface DimTable {
  /** Value of every static dim, and the upper bound of every symbolic one (no prototype: names are the user's). */
  values: Record<string, number>;
  symbolic: Set<string>;
}

function isSymbolic(v: DimExpr | SymbolicDim): v is SymbolicDim {
  return typeof v === 'object' && v !== null;
}

const TOKEN = /\s*(\d+|[A-Za-z_][A-Za-z0-9_]*|[+*-])\s*/y;

/**
 * Parses a dim expression once into a function of a name lookup (the runtime evaluates range
 * expressions per submission: no re-parsing on that path). Throws Error on bad syntax, and when
 * a step of the arithmetic leaves the safe integers (the value would not be exact).
 */
export function compileDimExpr(expr: DimExpr): (lookup: (name: string) => number) => number {
  if (typeof expr === 'number') return () => expr;
  if (expr.length > BOUNDS.exprLength) throw new Error(`dim expression is longer than ${BOUNDS.exprLength} characters`);
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
  const exact = (v: number): number => {
    if (!Number.isSafeInteger(v)) throw new Error(`dim expression '${expr}' overflows (${v} is not an exact integer)`);
    return v;
  };
  return (lookup) => {
    let total = 0;
    for (const t of terms) {
      let v = 1;
      for (const f of t.factors) v = exact(v * exact(typeof f === 'number' ? f : lookup(f)));
      total = exact(total + t.sign * v);
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
  const values = nameTable<number>();
  const symbolic = new Set<string>();
  const visiting = new Set<string>();
  const resolve = (name: string): number => {
    if (Object.hasOwn(values, name)) return values[name];
    const decl = own(graph.dims, name);
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
    const named = NAMED_DIM_BOUNDS[name];
    checkBound(named ? `dim '${name}' (${named.what})` : `dim '${name}'`, v, named?.max ?? BOUNDS.dim, { file, pointer: at });
    if (isSymbolic(decl)) symbolic.add(name);
    values[name] = v;
    return v;
  };
  for (const name of Object.keys(graph.dims)) resolve(name);
  return { values, symbolic };
}

/**
 * Evaluates a dim expression against a resolved table, with the error located at `pointer`.
 * The value must be an integer in min..BOUNDS.dim (min 1: sizes; 0 for layer indices).
 */
export function dimValue(table: DimTable, expr: DimExpr, where: { file?: string; pointer: string }, min = 1): number {
  let v: number;
  try {
    v = evalDimExpr(expr, (n) => {
      if (!Object.hasOwn(table.values, n)) throw new Error(`unknown dim '${n}'`);
      return table.values[n];
    });
  } catch (e) {
    const unknown = (e as Error).message.startsWith('unknown dim');
    throw new LscError((e as Error).message, where, unknown ? 'declare it under "dims"' : undefined);
  }
  if (v < min) throw new LscError(`dim expression ${JSON.stringify(expr)} is ${v}; it must be at least ${min}`, where);
  checkBound(typeof expr === 'number' ? 'dim' : `dim expression ${JSON.stringify(expr)} =`, v, BOUNDS.dim, where);
  return v;
}
