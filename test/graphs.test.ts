import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CATALOG } from '../compiler/builder/catalog.js';
import { catalogGraph } from '../compiler/builder/catalog-graph.js';
import { compileGraph } from '../compiler/compile.js';
import { validateGraph } from '../compiler/ir/validate.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('checked-in graphs', () => {
  for (const entry of CATALOG) {
    it(`graphs/${entry.name}.json equals the builder's output for ${entry.config}`, () => {
      const file = path.join(root, 'graphs', `${entry.name}.json`);
      const onDisk = JSON.parse(fs.readFileSync(file, 'utf8'));
      validateGraph(onDisk, file);
      assert.deepEqual(onDisk, JSON.parse(JSON.stringify(catalogGraph(root, entry))),
        'regenerate with: npm run build && node scripts/build-graphs.mjs');
    });
  }

  it('every graph compiles without weights or a GPU', () => {
    for (const entry of CATALOG) {
      const file = path.join(root, 'graphs', `${entry.name}.json`);
      const { plan } = compileGraph(JSON.parse(fs.readFileSync(file, 'utf8')), { file });
      assert.ok(plan.entries.some((e) => e.name === `draft@${plan.exits.defaultExitLayer}`));
    }
  });
});
