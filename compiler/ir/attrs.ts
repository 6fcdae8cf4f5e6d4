import { LscError, pointerToken } from '../errors.js';
import type { NodeDecl, OpName } from './graph.js';

/**
 * The attributes each op reads, and what their values may be. Checked before any pass runs: an
 * attribute the compiler would ignore (a typo such as "epsilon") or a value no kernel computes
 * correctly (eps ≤ 0) is an error here, not a plan that silently computes something else.
 * Dim-valued attributes are resolved (and bounded) by infer-shapes.
 */
type AttrCheck = (v: unknown) => string | undefined;

const dim: AttrCheck = (v) => (typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v) && v > 0)
  ? undefined : 'must be a positive integer or the name of a dim');
/** RMSNorm's epsilon is added to a mean of squares in f32 (and written into WGSL as a literal): a small positive number. */
const eps: AttrCheck = (v) => (typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= 1
  ? undefined : 'must be a number in (0, 1]');
const exactly = (want: unknown): AttrCheck => (v) => (v === want ? undefined : `must be ${JSON.stringify(want)}`);

interface AttrSpec { checks: Record<string, AttrCheck>; required: string[] }

const SPECS: Record<OpName, AttrSpec> = {
  embed: { checks: {}, required: [] },
  rms_norm: { checks: { eps }, required: [] },
  matmul: { checks: {}, required: [] },
  rope: { checks: { heads: dim, headDim: dim }, required: ['heads', 'headDim'] },
  attention: {
    checks: { heads: dim, kvHeads: dim, headDim: dim, causal: exactly(true), kvCache: exactly('layer') },
    required: ['heads', 'kvHeads', 'headDim', 'causal', 'kvCache'],
  },
  add: { checks: {}, required: [] },
  mul: { checks: {}, required: [] },
  silu: { checks: {}, required: [] },
  argmax: { checks: {}, required: [] },
  repeat: { checks: {}, required: [] },
};

/** Checks a node's attrs against its op; `at` is the node's JSON pointer. */
export function checkAttrs(n: NodeDecl, at: string, file?: string): void {
  const spec = SPECS[n.op];
  const attrs = n.attrs ?? {};
  for (const [key, value] of Object.entries(attrs)) {
    const check = Object.hasOwn(spec.checks, key) ? spec.checks[key] : undefined;
    const where = { file, pointer: `${at}/attrs/${pointerToken(key)}` };
    if (!check) {
      const known = Object.keys(spec.checks);
      throw new LscError(`${n.op} node '${n.id}' has unknown attribute '${key}'`, where,
        known.length ? `${n.op} reads ${known.join(', ')}` : `${n.op} takes no attributes`);
    }
    const why = check(value);
    if (why) throw new LscError(`${n.op} node '${n.id}': attribute '${key}' ${why}, got ${JSON.stringify(value)}`, where);
  }
  for (const key of spec.required) {
    if (!Object.hasOwn(attrs, key)) {
      throw new LscError(`${n.op} node '${n.id}' needs attribute '${key}'`, { file, pointer: n.attrs ? `${at}/attrs` : at });
    }
  }
}
