import path from 'node:path';
import { LscError } from '../compiler/errors.js';

/** Where `lsc compile` writes without -o. */
export const OUT_ROOT = 'out';

/**
 * out/<name> for a graph name: the name is user input (any string in the graph file), so it is
 * turned into one safe path segment instead of being joined as a path. Characters outside
 * [A-Za-z0-9._-] (slashes, backslashes, NUL, spaces) become '-', and leading dots and dashes
 * are dropped ('..', '.hidden', '-flag'), so '../../x' gives out/x and 'meta/llama 7b' gives
 * out/meta-llama-7b. Deriving rather than refusing keeps `lsc compile MODEL_DIR` working for
 * any folder name; a name with nothing usable left (e.g. '.' or '..') is refused.
 */
export function defaultOutDir(graphName: string, graphFile?: string): string {
  const segment = graphName.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '').replace(/[.-]+$/, '').slice(0, 100);
  if (!segment) {
    throw new LscError(`graph name ${JSON.stringify(graphName)} has no characters usable as a directory name under ${OUT_ROOT}/`,
      graphFile ? { file: graphFile, pointer: '/name' } : {}, 'pass -o DIR, or give the graph a name of letters, digits, ".", "_" or "-"');
  }
  const dir = path.join(OUT_ROOT, segment);
  // one segment below out/, whatever the name was
  if (path.dirname(path.resolve(dir)) !== path.resolve(OUT_ROOT)) throw new Error(`internal: ${dir} is not inside ${OUT_ROOT}/`);
  return dir;
}
