// Bundles the browser runtime with esbuild: web/src/index.ts -> lsc.js (the library, ESM) and
// web/src/page.ts -> page.js (the page lsc web serves), plus page/index.html, into dist/web/.
// Run by `npm run build`, or by `lsc web` when dist/web is missing. `node web/build.mjs [OUTDIR]`.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Modules the page bundles that import Node built-ins for Node-only functions the page never
 * calls; there the import resolves to a stub that throws if used. Anything else importing a Node
 * built-in fails the build: the page's code paths must not need Node.
 */
const NODE_ONLY_PARTS = {
  'runtime/tokenizer.ts': 'LscTokenizer.load(dir) reads files; the page uses LscTokenizer.fromObjects',
  'runtime/safe-file.ts': 'reads model files for LscTokenizer.load(dir), which the page does not call',
  'runtime/weights.ts': 'freeHostMemory() checks host memory for CPU adapters in Node; the page passes isCpu: false',
};

const stubPlugin = {
  name: 'lsc-browser',
  setup(build) {
    // the browser has GPUBufferUsage & co. as globals; dawn.node's are installed by gpu-globals.ts
    build.onResolve({ filter: /\/gpu-globals\.js$/ }, () => ({ path: 'gpu-globals', namespace: 'lsc-empty' }));
    build.onLoad({ filter: /.*/, namespace: 'lsc-empty' }, () => ({ contents: 'export {};', loader: 'js' }));
    build.onResolve({ filter: /^(node:|webgpu$)/ }, (args) => {
      const importer = path.relative(root, args.importer).split(path.sep).join('/');
      if (!(importer in NODE_ONLY_PARTS)) {
        return { errors: [{ text: `${importer} imports ${args.path}: the browser build has no Node APIs (see NODE_ONLY_PARTS in web/build.mjs)` }] };
      }
      return { path: args.path, namespace: 'lsc-node-stub' };
    });
    build.onLoad({ filter: /.*/, namespace: 'lsc-node-stub' }, (args) => ({
      loader: 'js',
      contents: `const fail = () => { throw new Error(${JSON.stringify(`${args.path} is not available in the browser`)}); };
const stub = new Proxy({}, { get: (_, key) => (key === 'then' ? undefined : fail) });
export default stub; export const freemem = fail, readFileSync = fail, existsSync = fail, join = fail, basename = fail;`,
    }));
  },
};

export async function buildWeb(outdir = path.join(root, 'dist', 'web')) {
  const { build } = await import('esbuild');
  fs.mkdirSync(outdir, { recursive: true });
  await build({
    entryPoints: { lsc: path.join(root, 'web/src/index.ts'), page: path.join(root, 'web/src/page.ts') },
    outdir, bundle: true, format: 'esm', platform: 'browser', target: 'es2022',
    sourcemap: true, logLevel: 'warning', plugins: [stubPlugin],
  });
  fs.copyFileSync(path.join(root, 'web/page/index.html'), path.join(outdir, 'index.html'));
  return outdir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const out = await buildWeb(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  console.log(`web bundle: ${path.relative(process.cwd(), out) || '.'}`);
}
