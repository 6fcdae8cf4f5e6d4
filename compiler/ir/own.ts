/**
 * Name lookups in graph JSON. Names come from the user, so a lookup must see only the object's
 * own properties: `graph.weights['constructor']` would otherwise find Object.prototype's.
 */
export function own<T>(obj: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** An empty record without a prototype, for tables keyed by user names ('__proto__' is then a plain key). */
export function nameTable<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
