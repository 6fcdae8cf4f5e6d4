import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HINT_MIN_BYTES, hugePageHint, selectedShmemSetting } from '../cli/huge-page-hint.js';

describe('the shmem huge page hint (cli/huge-page-hint.ts)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-thp-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (text: string): string => {
    const f = path.join(dir, `shmem_enabled-${Math.random().toString(36).slice(2)}`);
    fs.writeFileSync(f, text);
    return f;
  };

  it('reads the selected value of a shmem_enabled file', () => {
    assert.equal(selectedShmemSetting('always within_size advise [never] deny force\n'), 'never');
    assert.equal(selectedShmemSetting('always [within_size] advise never deny force\n'), 'within_size');
    assert.equal(selectedShmemSetting('[always] inherit within_size advise never\n'), 'always');
    assert.equal(selectedShmemSetting('garbage'), undefined);
  });

  it('hints only for a large load on a CPU adapter with the setting at never', () => {
    const never = file('always within_size advise [never] deny force\n');
    const hint = hugePageHint(true, HINT_MIN_BYTES, never);
    assert.ok(hint?.includes(`echo within_size | sudo tee ${never}`), hint);
    assert.equal(hugePageHint(false, 2 ** 33, never), undefined, 'a real GPU');
    assert.equal(hugePageHint(true, HINT_MIN_BYTES - 1, never), undefined, 'small weights');
    assert.equal(hugePageHint(true, 2 ** 33, file('always [within_size] advise never deny force\n')), undefined, 'already on');
    assert.equal(hugePageHint(true, 2 ** 33, path.join(dir, 'no-such-file')), undefined, 'no THP on this host');
  });
});
