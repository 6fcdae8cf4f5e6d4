import { LscError } from '../compiler/errors.js';
import type { Plan } from '../compiler/plan.js';

/** An exit layer must be one the plan compiled draft/verify entry points for. */
export function checkExitLayer(plan: Plan, exitLayer: number | undefined): void {
  if (exitLayer === undefined || exitLayer === plan.dims.layers) return;
  if (!plan.exits.candidates.includes(exitLayer)) {
    throw new LscError(`exit layer ${exitLayer} is not compiled into the plan (candidates: ${plan.exits.candidates.join(', ')})`, {},
      'choose one of the candidates, or add it to exit.candidates in the graph');
  }
}
