import { LscError } from '../errors.js';
import { weightRefs, type Graph } from './graph.js';
import { WEIGHT_CHOICES, type MatrixFormat } from './weight-formats.js';

/**
 * What `--weights` (and the library's `weights` option) asks for: the matrices' format
 * (`dtypes.weights`) and, optionally, the LM head's (its declaration's `format`). Without `head`
 * the head gets HEAD_FORMAT of the matrices' format, or what its declaration says.
 */
export interface WeightsSpec {
  matrices: MatrixFormat;
  head?: MatrixFormat;
}

const GRAMMAR = 'FORMAT or FORMAT:head=FORMAT, FORMAT one of f16, q8, q4 (e.g. q4 or q4:head=q8)';

/** `q4`, `q4:head=q8`: the --weights grammar, a one-line error otherwise. */
export function parseWeightsSpec(text: string): WeightsSpec {
  const fail = (why: string): never => { throw new LscError(`--weights ${text}: ${why}`, {}, `pass ${GRAMMAR}`); };
  const format = (v: string): MatrixFormat => WEIGHT_CHOICES[v] ?? fail(`'${v}' is not one of ${Object.keys(WEIGHT_CHOICES).join(', ')}`);
  const [first, ...rest] = text.split(':');
  const spec: WeightsSpec = { matrices: format(first) };
  for (const part of rest) {
    const m = /^([a-z]+)=(.*)$/.exec(part);
    if (!m || m[1] !== 'head') fail(`'${part}' is not head=FORMAT`);
    if (spec.head !== undefined) fail('head is given twice');
    spec.head = format(m![2]);
  }
  return spec;
}

/** The spec as --weights writes it. */
export function weightsSpecText(s: WeightsSpec): string {
  const name = (f: MatrixFormat): string => Object.keys(WEIGHT_CHOICES).find((k) => WEIGHT_CHOICES[k] === f)!;
  return `${name(s.matrices)}${s.head ? `:head=${name(s.head)}` : ''}`;
}

/** Declarations of the matrices the LM head's matmuls read (the body nodes `exit.head` names), tied ones left out. */
export function headDecls(graph: Graph): string[] {
  return [...new Set(graph.body.filter((n) => n.op === 'matmul' && graph.exit.head.includes(n.id)).flatMap(weightRefs))];
}

/** Declarations of the tables `embed` nodes gather rows from (kept f16: the gather reads f16 rows). */
export function gatheredDecls(graph: Graph): string[] {
  const nodes = [...graph.body, ...Object.values(graph.blocks).flatMap((b) => b.nodes)];
  return [...new Set(nodes.filter((n) => n.op === 'embed').flatMap(weightRefs))];
}

/** The graph with `dtypes.weights` and, when the spec names one, the untied head's `format` replaced. */
export function withWeightsSpec(graph: Graph, spec: WeightsSpec | MatrixFormat | undefined): Graph {
  if (spec === undefined) return graph;
  const s = typeof spec === 'string' ? { matrices: spec } : spec;
  const weights = { ...graph.weights };
  if (s.head !== undefined) {
    for (const d of headDecls(graph)) if (weights[d] && weights[d].tiedTo === undefined) weights[d] = { ...weights[d], format: s.head };
  }
  return { ...graph, dtypes: { ...graph.dtypes, weights: s.matrices }, weights };
}
