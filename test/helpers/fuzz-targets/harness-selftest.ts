/** A target whose cases misbehave on purpose, one way each, to test the fuzz harness itself. */
import { LscError } from '../../../compiler/errors.js';
import type { FuzzCase } from '../fuzz.js';
import type { Rng } from '../../../runtime/sampling.js';

export function fuzzCase(rng: Rng, index: number): FuzzCase {
  const draw = rng.next();
  switch (index % 6) {
    case 0: return { label: `ok ${draw}`, run: () => draw };
    case 1: return { label: 'user error', run: () => { throw new LscError(`bad value ${index}`, { pointer: '/x' }, 'fix it'); } };
    case 2: return { label: 'crash', run: () => { throw new TypeError('cannot read properties of undefined'); } };
    case 3: return { label: 'multi-line user error', run: () => { throw new LscError('two\nlines'); } };
    case 4: return {
      label: 'hang', run: () => { for (;;) { /* never returns */ } },
    };
    default: return {
      label: 'unbounded allocation',
      run: () => {
        const keep: number[][] = [];
        for (;;) keep.push(new Array(1 << 16).fill(index));
      },
    };
  }
}
