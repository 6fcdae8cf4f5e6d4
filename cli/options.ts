import { InvalidArgumentError } from 'commander';

/**
 * Parsers for numeric flags. They throw commander's InvalidArgumentError, which commander turns
 * into "option '--x <n>' argument 'abc' is invalid. <message>" (exit 2 via cli/program.ts).
 */
const INT = /^[+]?\d+$/;

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!INT.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('It must be a positive integer.');
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!INT.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('It must be a non-negative integer.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('It must be a number ≥ 0.');
  return n;
}

/** A sampling seed: the library's range, 0..2^32-1 (runtime/sampling.ts seeds a 32-bit state). */
export function seed32(value: string): number {
  const n = Number(value);
  if (!INT.test(value.trim()) || !(n <= 0xffffffff)) throw new InvalidArgumentError('It must be an integer in 0..4294967295.');
  return n;
}

/** Top-p: a probability mass in (0, 1]. */
export function probability(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new InvalidArgumentError('It must be a number in (0, 1].');
  return n;
}

/** "1,2,3" -> [1,2,3]; names the first bad item. */
export function intList(what: string, min: number): (value: string) => number[] {
  return (value) => {
    const items = value.split(',').map((s) => s.trim());
    if (value.trim() === '') throw new InvalidArgumentError(`It must be a comma-separated list of ${what}, got nothing.`);
    return items.map((s, i) => {
      const n = Number(s);
      if (!INT.test(s) || !Number.isSafeInteger(n) || n < min) {
        throw new InvalidArgumentError(`Item ${i + 1} ('${s}') is not a ${what.replace(/s$/, '')}${min > 0 ? ' (≥ ' + min + ')' : ''}.`);
      }
      return n;
    });
  };
}

/** Repeatable string flag (--stop A --stop B). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
