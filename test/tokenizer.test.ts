import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LscTokenizer } from '../runtime/tokenizer.js';
import { LscError } from '../compiler/errors.js';

const modelDir = fileURLToPath(new URL('../../examples/models/tiny-code/', import.meta.url));
const readJson = (name: string) => JSON.parse(fs.readFileSync(path.join(modelDir, name), 'utf8'));

interface RefPrompt { text: string; tokens: number[]; greedy: number[]; greedyText: string }
const reference = readJson('reference.json') as { prompts: RefPrompt[] };

const made: string[] = [];
after(() => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }); });

function tmpDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-tok-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

function expectLscError(fn: () => unknown, message: RegExp, file: RegExp): LscError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof LscError, `expected LscError, got ${String(err)}`);
  assert.match(err.message, message);
  assert.match(err.where.file ?? '', file);
  return err;
}

describe('LscTokenizer (tiny-code)', () => {
  const tok = LscTokenizer.load(modelDir);

  it('reads vocab size and special ids', () => {
    assert.equal(tok.vocabSize, 2048);
    assert.equal(tok.bosId, 1);
    assert.deepEqual(tok.eosIds, [2]);
    assert.equal(tok.tokenText(1), '<s>');
    assert.equal(tok.tokenText(13), '<0x0A>');
    assert.equal(tok.tokenText(99999), '');
  });

  it('encodes every reference prompt to its reference tokens (BOS first)', () => {
    for (const p of reference.prompts) {
      assert.deepEqual(tok.encode(p.text), p.tokens);
      assert.equal(tok.decode(p.tokens), p.text);
    }
  });

  it('decodes the greedy continuation alone like the reference (first space dropped)', () => {
    for (const p of reference.prompts) assert.equal(tok.decode(p.greedy), p.greedyText);
  });

  it('keeps special tokens on request and decodes [] to ""', () => {
    assert.match(tok.decode([1, 560, 361], { skipSpecialTokens: false }), /^<s>/);
    assert.equal(tok.decode([]), '');
  });

  it('round-trips text that needs byte fallback', () => {
    const text = 'héllo 中文 🙂 x\n\tÿ';
    const ids = tok.encode(text);
    assert.ok(ids.some((id) => /^<0x[0-9A-F]{2}>$/.test(tok.tokenText(id))));
    assert.equal(tok.decode(ids), text);
  });

  it('does not add BOS twice when the text starts with <s>', () => {
    const ids = tok.encode('<s>def f');
    assert.deepEqual(ids.slice(0, 2).filter((id) => id === 1), [1]);
    assert.deepEqual(ids.slice(1), tok.encode('def f').slice(1));
  });
});

describe('LscTokenizer BOS/EOS rules', () => {
  const tj = readJson('tokenizer.json');
  const tc = readJson('tokenizer_config.json');
  const noTemplate = { ...tj, post_processor: null };
  const body = (ids: number[]) => ids.filter((id) => id !== 1 && id !== 2);
  const plain = body(LscTokenizer.fromObjects(tj, tc).encode('import os'));

  it('Llama 2: add_bos_token true with the TemplateProcessing template adds one BOS', () => {
    assert.deepEqual(LscTokenizer.fromObjects(tj, tc).encode('import os'), [1, ...plain]);
  });

  it('Llama 2: add_bos_token true without a post-processor still adds BOS', () => {
    assert.deepEqual(LscTokenizer.fromObjects(noTemplate, tc).encode('import os'), [1, ...plain]);
  });

  it('Llama 2: add_bos_token false overrides the template', () => {
    const t = LscTokenizer.fromObjects(tj, { ...tc, add_bos_token: false });
    assert.deepEqual(t.encode('import os'), plain);
    assert.equal(t.bosId, 1);
  });

  it('add_eos_token appends EOS', () => {
    assert.deepEqual(LscTokenizer.fromObjects(tj, { ...tc, add_eos_token: true }).encode('import os'), [1, ...plain, 2]);
  });

  it('without add_bos_token the tokenizer.json template decides', () => {
    assert.deepEqual(LscTokenizer.fromObjects(tj).encode('import os'), [1, ...plain]);
    assert.deepEqual(LscTokenizer.fromObjects(tj).encode('<s>import os'), [1, ...plain]);
    assert.deepEqual(LscTokenizer.fromObjects(noTemplate).encode('import os'), plain);
  });

  it('finds BOS/EOS in config.json and generation_config.json; EOS is the union', () => {
    const t = LscTokenizer.fromObjects(noTemplate, undefined, { bos_token_id: 1, eos_token_id: [2, 5] }, { eos_token_id: [2, 7] });
    assert.equal(t.bosId, 1);
    assert.deepEqual(t.eosIds, [2, 5, 7]);
    const u = LscTokenizer.fromObjects(tj, { eos_token: { content: '</s>' } }, { eos_token_id: 9 }, { eos_token_id: 2 });
    assert.equal(u.bosId, 1); // from the template
    assert.deepEqual(u.eosIds, [2, 9]);
  });

  it('load() reads the optional config files', () => {
    const dir = tmpDir({
      'tokenizer.json': JSON.stringify(tj),
      'generation_config.json': JSON.stringify({ eos_token_id: [2, 3] }),
    });
    const t = LscTokenizer.load(dir);
    assert.deepEqual(t.eosIds, [2, 3]);
    assert.deepEqual(t.encode('import os'), [1, ...plain]);
  });
});

describe('LscTokenizer errors', () => {
  it('missing tokenizer.json', () => {
    const dir = tmpDir({});
    const e = expectLscError(() => LscTokenizer.load(dir), /tokenizer\.json not found/, /tokenizer\.json$/);
    assert.match(e.hint ?? '', /tokenizer\.json/);
  });

  it('invalid JSON, in tokenizer.json or an optional file', () => {
    expectLscError(() => LscTokenizer.load(tmpDir({ 'tokenizer.json': '{"model": ' })), /invalid JSON/, /tokenizer\.json$/);
    const tj = fs.readFileSync(path.join(modelDir, 'tokenizer.json'), 'utf8');
    expectLscError(() => LscTokenizer.load(tmpDir({ 'tokenizer.json': tj, 'config.json': '[1]' })), /invalid JSON/, /config\.json$/);
  });

  it('a tokenizer the library cannot build', () => {
    const dir = tmpDir({ 'tokenizer.json': JSON.stringify({ model: { type: 'NoSuchModel' } }) });
    expectLscError(() => LscTokenizer.load(dir), /cannot build the tokenizer: .*NoSuchModel/, /tokenizer\.json$/);
    expectLscError(() => LscTokenizer.fromObjects({ decoder: null }), /cannot build the tokenizer/, /tokenizer\.json/);
  });
});
