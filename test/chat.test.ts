import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChatTemplate, type ChatMessage } from '../runtime/chat-template.js';
import { LscModel } from '../runtime/model.js';
import { LscError } from '../compiler/errors.js';
import { testGpu } from './helpers/gpu.js';
import { ROOT, assertUserError, runLsc } from './helpers/run-cli.js';
import { runInProcess } from './helpers/run-in-process.js';

/**
 * Chat templates (runtime/chat-template.ts), `lsc chat` and LscModel.chat(). The bundled models
 * have no chat template; a copy of tiny-code gets a small Zephyr-like one.
 */
const TINY = path.join(ROOT, 'examples/models/tiny-code');
const TEMPLATE = "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' and not loop.first %}{{ raise_exception('the system message must come first') }}{% endif %}"
  + '<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}';

const SYSTEM = 'You write Python.';
const Q1 = 'def add(a, b):';
const Q2 = 'and subtract?';
/** What TEMPLATE renders for [system, user Q1] with add_generation_prompt, by hand. */
const RENDERED_1 = `<s><|system|>\n${SYSTEM}</s>\n<|user|>\n${Q1}</s>\n<|assistant|>\n`;

interface Reply { role: string; content: string; prompt: string; promptTokens: number[]; tokens: number[]; stats: { strategy: string } }
const replies = (stdout: string): Reply[] => stdout.trim().split('\n').map((l) => JSON.parse(l) as Reply);

describe('chat: templates, lsc chat, LscModel.chat', function () {
  this.timeout(180_000);
  let tmp: string;
  let chatModel: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lsc-chat-'));
    chatModel = path.join(tmp, 'tiny-chat');
    fs.mkdirSync(chatModel);
    for (const f of fs.readdirSync(TINY)) fs.copyFileSync(path.join(TINY, f), path.join(chatModel, f));
    const tc = JSON.parse(fs.readFileSync(path.join(TINY, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(tc.chat_template, undefined, 'the bundled model has no chat template');
    fs.writeFileSync(path.join(chatModel, 'tokenizer_config.json'), JSON.stringify({ ...tc, chat_template: TEMPLATE }));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('ChatTemplate', () => {
    it("renders messages with tokenizer_config.json's special tokens and add_generation_prompt, exactly", () => {
      const t = ChatTemplate.load(chatModel);
      const msgs: ChatMessage[] = [{ role: 'system', content: SYSTEM }, { role: 'user', content: Q1 }];
      assert.equal(t.render(msgs), RENDERED_1);
      assert.equal(t.render(msgs, { addGenerationPrompt: false }), RENDERED_1.slice(0, -'<|assistant|>\n'.length));
      assert.deepEqual([t.specialTokens.bos_token, t.specialTokens.eos_token, t.specialTokens.unk_token], ['<s>', '</s>', '<unk>']);
    });

    it("a list of named templates uses 'default'; a model without a template, a template that does not parse, bad messages and raise_exception are LscErrors", () => {
      const named = ChatTemplate.fromConfig({ bos_token: 'B', chat_template: [{ name: 'tool_use', template: 'x' }, { name: 'default', template: '{{ bos_token }}{{ messages[0].content }}' }] });
      assert.equal(named.render([{ role: 'user', content: 'hi' }]), 'Bhi');
      const fails = (f: () => unknown, re: RegExp): void => { assert.throws(f, (e: unknown) => e instanceof LscError && re.test(e.format())); };
      fails(() => ChatTemplate.load(TINY), /no chat template \(no chat_template in tokenizer_config\.json\).*Fix: use lsc generate/);
      fails(() => ChatTemplate.fromConfig({ chat_template: '{% for %}' }), /the chat template does not parse.*#\/chat_template/);
      fails(() => ChatTemplate.fromConfig({ chat_template: [{ name: 'tool_use', template: 'x' }] }), /none named 'default'/);
      const t = ChatTemplate.load(chatModel);
      fails(() => t.render([]), /messages must be a non-empty list/);
      fails(() => t.render([{ role: 'user' } as ChatMessage]), /messages\[0\] must be \{"role": string, "content": string\}/);
      fails(() => t.render([{ role: 'user', content: 'a' }, { role: 'system', content: 'b' }]), /the chat template refused the conversation: the system message must come first/);
    });
  });

  describe('lsc chat', () => {
    it('a model without a chat template: exit 2, one line, before the weights load', async () => {
      assertUserError(await runInProcess(['chat', TINY, '--message', 'hi']), /this model has no chat template.*tokenizer_config\.json/, 'no template');
      assertUserError(await runInProcess(['chat', chatModel, '--message', 'hi', '--top-k', '3']), /--top-k applies only to sampling/, 'the not-applicable rule');
    });

    it('--message twice: replies in order, the conversation kept; JSON lines on stdin give the same; generate on the rendered prompt gives the same tokens', async () => {
      const common = ['--max-new-tokens', '12', '--json'];
      const lines = [{ role: 'system', content: SYSTEM }, { role: 'user', content: Q1 }, { role: 'user', content: Q2 }].map((m) => JSON.stringify(m)).join('\n') + '\n';
      const [byFlags, byStdin] = await Promise.all([
        runLsc(['chat', chatModel, '--system', SYSTEM, '--message', Q1, '--message', Q2, ...common]),
        runLsc(['chat', '--model', chatModel, ...common], {}, { input: lines }),
      ]);
      assert.equal(byFlags.code, 0, byFlags.stderr);
      assert.equal(byStdin.code, 0, byStdin.stderr);
      const [r1, r2] = replies(byFlags.stdout);
      assert.equal(replies(byFlags.stdout).length, 2);
      assert.equal(r1.prompt, RENDERED_1, 'the first prompt is the rendered template');
      assert.equal(r1.promptTokens[0], 1, 'BOS from the template, not doubled');
      assert.notEqual(r1.promptTokens[1], 1);
      assert.equal(r2.prompt, `${RENDERED_1}${r1.content}</s>\n<|user|>\n${Q2}</s>\n<|assistant|>\n`, 'the second prompt holds the first reply');
      assert.equal(r1.stats.strategy, 'self-speculative', 'chat decodes like generate: self-speculative by default');
      const strip = (rs: Reply[]): unknown[] => rs.map(({ prompt, content, tokens }) => ({ prompt, content, tokens }));
      assert.deepEqual(strip(replies(byStdin.stdout)), strip(replies(byFlags.stdout)), 'stdin JSON lines: the same prompts and replies');

      const file = path.join(tmp, 'rendered.txt');
      fs.writeFileSync(file, r2.prompt);
      const g = await runLsc(['generate', chatModel, '--prompt-file', file, ...common]);
      assert.equal(g.code, 0, g.stderr);
      const gj = JSON.parse(g.stdout) as { promptTokens: number[]; tokens: number[]; text: string };
      assert.deepEqual([gj.promptTokens, gj.tokens, gj.text], [r2.promptTokens, r2.tokens, r2.content]);
    });

    it('empty stdin and a bad JSON line are one-line errors', async () => {
      const [empty, bad] = await Promise.all([
        runLsc(['chat', chatModel], {}, { input: '' }),
        runLsc(['chat', chatModel], {}, { input: '{"role": "user", "content": "hi"}\nnot json\n' }),
      ]);
      assertUserError(empty, /no messages on stdin/, 'empty stdin');
      // the first line is replied to before the second is read
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /^lsc: error: stdin line 2 is not JSON/m);
    });
  });

  it('LscModel.chat(messages) gives the GenerationRun of generate() on the rendered prompt', async () => {
    const model = await LscModel.load(chatModel, { gpu: await testGpu() });
    try {
      const msgs: ChatMessage[] = [{ role: 'system', content: SYSTEM }, { role: 'user', content: Q1 }];
      assert.equal(model.chatTemplate.render(msgs), RENDERED_1);
      const run = model.chat(msgs, { maxNewTokens: 12 });
      let streamed = '';
      for await (const c of run) streamed += c.text;
      const r = await run.result;
      const g = await model.complete(RENDERED_1, { maxNewTokens: 12 });
      assert.deepEqual([r.promptTokens, r.tokens, r.text], [g.promptTokens, g.tokens, g.text]);
      assert.equal(streamed, r.text);
      await assert.rejects(model.chat([]).result, /messages must be a non-empty list/);
    } finally {
      model.dispose();
    }
  });
});
