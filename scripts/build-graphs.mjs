// Regenerates graphs/<name>.json for every model of compiler/builder/catalog.ts (run after `npm run build`).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CATALOG } from '../dist/compiler/builder/catalog.js';
import { catalogGraph } from '../dist/compiler/builder/catalog-graph.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
for (const entry of CATALOG) {
  const file = path.join(root, 'graphs', `${entry.name}.json`);
  fs.writeFileSync(file, JSON.stringify(catalogGraph(root, entry), null, 2) + '\n');
  console.log(`wrote ${path.relative(root, file)}`);
}
