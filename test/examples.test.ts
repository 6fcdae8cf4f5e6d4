import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('examples', () => {
  it('examples/embed.ts runs: streams self-speculative output equal to autoregressive', () => {
    const r = spawnSync(process.execPath, ['dist/examples/embed.js'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^def binary_search/);
    assert.match(r.stdout, /self-speculative: [\d.]+ tok\/s, acceptance [\d.]+%/);
    assert.match(r.stdout, /same tokens: true/);
    assert.match(r.stdout, /sampled \(T=0\.8/);
  });
});
