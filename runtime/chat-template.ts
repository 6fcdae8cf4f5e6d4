/**
 * Chat templates: a conversation → the prompt text the model was fine-tuned on, rendered from the
 * Jinja `chat_template` of tokenizer_config.json with @huggingface/jinja (the engine
 * transformers.js uses), with the special tokens of that file and `add_generation_prompt`.
 * `lsc chat` and LscModel.chat() use it; a server would too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { LscError } from '../compiler/errors.js';

export interface ChatMessage {
  /** 'system', 'user' or 'assistant' (a template may accept others, e.g. 'tool'). */
  role: string;
  content: string;
}

export interface RenderOptions {
  /** End with the opening of an assistant turn, for the model to reply (default true). */
  addGenerationPrompt?: boolean;
}

const CONFIG = 'tokenizer_config.json';
type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A special token of tokenizer_config.json: a string or an AddedToken-like { content }. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

/** The messages a caller passed, checked: a non-empty list of { role, content } strings. */
export function checkMessages(messages: unknown, where = 'messages'): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new LscError(`${where} must be a non-empty list of {role, content}, got ${JSON.stringify(messages) ?? String(messages)}`);
  }
  messages.forEach((m, i) => {
    if (!isObject(m) || typeof m.role !== 'string' || !m.role || typeof m.content !== 'string') {
      throw new LscError(`${where}[${i}] must be {"role": string, "content": string}, got ${JSON.stringify(m) ?? String(m)}`);
    }
  });
  return messages.map((m) => ({ role: (m as ChatMessage).role, content: (m as ChatMessage).content }));
}

export class ChatTemplate {
  private constructor(
    private readonly template: Template,
    /** bos_token, eos_token, ... as the template sees them. */
    readonly specialTokens: Record<string, string>,
    private readonly file: string,
  ) {}

  /** The template of `dir`/tokenizer_config.json; a model without one is a one-line error. */
  static load(dir: string): ChatTemplate {
    const file = path.join(dir, CONFIG);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new LscError(`this model has no ${CONFIG}, so no chat template`, { file }, 'use lsc generate with a prompt you format yourself');
      }
      throw new LscError(`cannot read ${CONFIG}: ${(e as Error).message}`, { file });
    }
    let config: unknown;
    try {
      config = JSON.parse(text);
    } catch (e) {
      throw new LscError(`${CONFIG} is not valid JSON: ${(e as Error).message}`, { file });
    }
    return ChatTemplate.fromConfig(config, file);
  }

  /** From a parsed tokenizer_config.json (`file` names it in errors). */
  static fromConfig(config: unknown, file = CONFIG): ChatTemplate {
    if (!isObject(config)) throw new LscError(`${CONFIG} must hold a JSON object`, { file });
    const source = pickTemplate(config.chat_template, file);
    let template: Template;
    try {
      template = new Template(source);
    } catch (e) {
      throw new LscError(`the chat template does not parse: ${(e as Error).message}`, { file, pointer: '/chat_template' },
        'fix the Jinja syntax of chat_template');
    }
    const specialTokens: Record<string, string> = {};
    for (const [k, v] of Object.entries(config)) {
      const t = k.endsWith('_token') ? tokenText(v) : undefined;
      if (t !== undefined) specialTokens[k] = t;
    }
    return new ChatTemplate(template, specialTokens, file);
  }

  /** The prompt text for `messages`, as transformers' apply_chat_template(tokenize=False) renders it. */
  render(messages: ChatMessage[], opts: RenderOptions = {}): string {
    const checked = checkMessages(messages);
    try {
      return this.template.render({
        ...this.specialTokens,
        messages: checked,
        add_generation_prompt: opts.addGenerationPrompt ?? true,
      });
    } catch (e) {
      // raise_exception('...') in a template: the conversation is not one it accepts
      throw new LscError(`the chat template refused the conversation: ${(e as Error).message}`, { file: this.file, pointer: '/chat_template' },
        'check the roles and their order (many templates need user/assistant turns in alternation)');
    }
  }
}

/** chat_template is a string, or a list of { name, template } where 'default' is the chat one. */
function pickTemplate(v: unknown, file: string): string {
  if (typeof v === 'string' && v.trim()) return v;
  if (Array.isArray(v)) {
    const named = v.find((t) => isObject(t) && t.name === 'default' && typeof t.template === 'string');
    if (named) return (named as { template: string }).template;
    throw new LscError(`chat_template lists templates (${v.map((t) => (isObject(t) ? String(t.name) : '?')).join(', ')}) but none named 'default'`,
      { file, pointer: '/chat_template' }, "name the chat template 'default'");
  }
  if (v === undefined) {
    throw new LscError(`this model has no chat template (no chat_template in ${CONFIG})`, { file },
      'use lsc generate with a prompt you format yourself, or add a chat_template to tokenizer_config.json');
  }
  throw new LscError(`chat_template must be a non-empty string, got ${JSON.stringify(v)}`, { file, pointer: '/chat_template' });
}
