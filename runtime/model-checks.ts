/** Checks of a request against a loaded plan, shared by LscModel (Node) and the browser's WebModel (web/). */
import { LscError } from '../compiler/errors.js';
import type { Plan } from '../compiler/plan.js';

/** Every id inside the vocabulary, at least one, and no more than the context holds. */
export function checkTokens(plan: Plan, ids: number[], where = 'tokens'): void {
  const vocab = plan.dims.vocab;
  const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
  if (bad !== undefined) throw new LscError(`${where}: token id ${bad} is outside the vocabulary 0..${vocab - 1}`);
  if (ids.length === 0) throw new LscError(`${where}: no tokens`);
  if (ids.length > plan.dims.ctx) {
    throw new LscError(`${where}: ${ids.length} tokens do not fit the context of ${plan.dims.ctx} positions`, {},
      'shorten the prompt or load with a larger --ctx');
  }
}

/** An exit layer compiled into the plan (or the full model: undefined or the layer count). */
export function checkExit(plan: Plan, exitLayer: number | undefined): void {
  if (exitLayer === undefined || exitLayer === plan.dims.layers) return;
  if (!plan.exits.candidates.includes(exitLayer)) {
    throw new LscError(`exit layer ${exitLayer} is not compiled into this model's plan (candidates: ${plan.exits.candidates.join(', ')})`,
      {}, 'choose one of the candidates, or add it to exit.candidates in the graph');
  }
}
