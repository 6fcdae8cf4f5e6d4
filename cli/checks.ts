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

/**
 * --ctx past the positions the model was trained for: RoPE there is extrapolation and the output
 * degrades, so it is refused unless --force-ctx says the user means it.
 */
export function checkCtx(ctx: number | undefined, trained: number, what: string, force: boolean | undefined): void {
  if (ctx === undefined || ctx <= trained || force) return;
  throw new LscError(`--ctx ${ctx} exceeds the ${trained} positions ${what} (RoPE past them degrades the output)`, {},
    `pass --ctx ${trained} or less, or add --force-ctx to run anyway`);
}
