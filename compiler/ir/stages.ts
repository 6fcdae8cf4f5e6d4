/**
 * What the entry points of a plan are and what each of their stages does: the one vocabulary the
 * compiler (passes/entry-points.ts) writes and the runtime looks stages up by. Entry and stage
 * names in a plan are for people only; code finds an entry by (kind, exit layer) and a stage by
 * its role.
 */
export const ENTRY_KINDS = ['prefill', 'decode', 'draft', 'verify'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

export const STAGE_ROLES = [
  /** The embedding and layers from 0 over every row of the stage (a prefill chunk, or a verify that recomputes from the embedding). */
  'trunk',
  /** Verify that reuses the exit query cache: the newest draft through the layers below E (the drafts before it went through them). */
  'newest',
  /** Verify's layers from E to the last over the round's k+1 rows. */
  'deep',
  /** The shared head (final norm, LM head, argmax) on the stage's rows. */
  'head',
  /** A whole token step (decode, draft): embedding, layers, head for row i. */
  'step',
] as const;
export type StageRole = (typeof STAGE_ROLES)[number];

/** Display name of an entry point (plan.json, inspect, summaries); never parsed. */
export function entryName(kind: EntryKind, exitLayer?: number): string {
  return exitLayer === undefined ? kind : `${kind}@${exitLayer}`;
}

/** The parts of a plan entry the look-ups read (structural: compiler and runtime entries alike). */
interface EntryLike {
  name: string;
  kind: EntryKind;
  exitLayer?: number;
  stages: readonly { role: StageRole }[];
}

/**
 * The entry point of `kind` for exit layer E; E undefined is the full model (prefill, decode).
 * Throws an internal error when the plan has none: plans are checked against their graph at load.
 */
export function entryOf<E extends EntryLike>(plan: { entries: readonly E[] }, kind: EntryKind, exitLayer?: number): E {
  const e = plan.entries.find((x) => x.kind === kind && x.exitLayer === exitLayer);
  if (!e) throw new Error(`internal: the plan has no ${kind} entry${exitLayer === undefined ? '' : ` for exit ${exitLayer}`}`);
  return e;
}

/** The stage of `role` of an entry point, or undefined if that entry has none. */
export function findStage<E extends EntryLike>(entry: E, role: StageRole): E['stages'][number] | undefined {
  return entry.stages.find((s) => s.role === role);
}

/** The stage of `role` of the entry of `kind` for exit E (undefined: the full model). */
export function stageOf<E extends EntryLike>(plan: { entries: readonly E[] }, kind: EntryKind, exitLayer: number | undefined, role: StageRole): E['stages'][number] {
  const e = entryOf(plan, kind, exitLayer);
  const s = findStage(e, role);
  if (!s) throw new Error(`internal: ${e.name} has no ${role} stage`);
  return s;
}
