/**
 * "1 token", "2 tokens", "0 tokens": the one place output counts pick their noun's number.
 * `many` for irregular plurals ("1 entry", "3 entries").
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
