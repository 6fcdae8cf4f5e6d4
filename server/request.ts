import { checkMessages, type ChatMessage } from '../runtime/chat-template.js';
import type { GenerateOptions } from '../runtime/generate.js';
import { badRequest } from './api-error.js';

/** A completion or chat request, checked for types; the library checks values (ranges, exits, strategies). */
export interface GenerationRequest {
  model: string;
  /** Completions: the prompt text or token ids. */
  prompt?: string | number[];
  /** Chat: the conversation. */
  messages?: ChatMessage[];
  /** undefined: as many as the context allows. */
  maxTokens?: number;
  stream: boolean;
  includeUsage: boolean;
  options: GenerateOptions;
}

type Body = Record<string, unknown>;
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** A field that is absent or null (OpenAI clients send null for "default"), else one `check` accepts. */
function field<T>(body: Body, name: string, check: (v: unknown) => boolean, want: string): T | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!check(v)) throw badRequest(`${name} must be ${want}, got ${JSON.stringify(v)}`, name, 'invalid_type');
  return v as T;
}

/** Fields of the OpenAI API this server does not implement: refused when they ask for more than the default. */
function refuseUnsupported(body: Body): void {
  const n = field<number>(body, 'n', isInt, 'an integer');
  if (n !== undefined && n !== 1) throw badRequest(`n must be 1 (one choice per request), got ${n}`, 'n', 'unsupported_value');
  const bestOf = field<number>(body, 'best_of', isInt, 'an integer');
  if (bestOf !== undefined && bestOf !== 1) throw badRequest(`best_of must be 1, got ${bestOf}`, 'best_of', 'unsupported_value');
  for (const name of ['echo', 'logprobs', 'top_logprobs', 'suffix', 'tools', 'functions', 'logit_bias']) {
    const v = body[name];
    if (v !== undefined && v !== null && v !== false && !(Array.isArray(v) && v.length === 0)) {
      throw badRequest(`${name} is not supported by this server`, name, 'unsupported_parameter');
    }
  }
}

/** The fields completions and chat share: sampling, stops, streaming, and LayerSkip's extras. */
function common(body: Body, maxTokensField: string): Omit<GenerationRequest, 'prompt' | 'messages'> {
  refuseUnsupported(body);
  const model = field<string>(body, 'model', (v) => typeof v === 'string', 'a string');
  if (model === undefined) throw badRequest('model is required: the id GET /v1/models lists', 'model', 'missing_required_parameter');
  const num = (name: string, want = 'a number'): number | undefined => field<number>(body, name, (v) => typeof v === 'number', want);
  const maxTokens = field<number>(body, maxTokensField, (v) => isInt(v) && v >= 1, 'a positive integer');
  const stop = field<string | string[]>(body, 'stop', (v) => typeof v === 'string' || Array.isArray(v), 'a string or a list of strings');
  const stream = field<boolean>(body, 'stream', (v) => typeof v === 'boolean', 'true or false') ?? false;
  const so = field<Body>(body, 'stream_options', (v) => typeof v === 'object' && !Array.isArray(v), 'an object');
  const includeUsage = so === undefined ? false : field<boolean>(so, 'include_usage', (v) => typeof v === 'boolean', 'true or false') ?? false;
  if (so !== undefined && !stream) throw badRequest('stream_options applies only to stream: true', 'stream_options', 'invalid_value');
  const options: GenerateOptions = {
    temperature: num('temperature') ?? 0,
    topP: num('top_p'),
    topK: num('top_k'),
    seed: num('seed'),
    stop: typeof stop === 'string' ? [stop] : stop,
    // the library validates the strategy, so one it adds is served without a change here
    strategy: field<GenerateOptions['strategy']>(body, 'strategy', (v) => typeof v === 'string', 'a string'),
    exitLayer: num('exit_layer'),
    numSpeculations: num('num_speculations'),
  };
  // a greedy request ignores top_p/top_k/seed (clients send top_p: 1 by habit): not passed on
  if (options.temperature === 0) options.topP = options.topK = options.seed = undefined;
  return { model, maxTokens, stream, includeUsage, options };
}

/** POST /v1/completions. */
export function completionRequest(body: Body): GenerationRequest {
  const base = common(body, 'max_tokens');
  let prompt = body.prompt;
  // a list holding one prompt (string or token ids) is one prompt; more would be several choices
  if (Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0]))) prompt = prompt[0];
  if (Array.isArray(prompt) && prompt.some((p) => typeof p === 'string' || Array.isArray(p))) {
    throw badRequest(`one prompt per request, got ${prompt.length}`, 'prompt', 'unsupported_value');
  }
  if (!(typeof prompt === 'string' || (Array.isArray(prompt) && prompt.every(isInt)))) {
    throw badRequest(`prompt must be a string or a list of token ids, got ${JSON.stringify(prompt) ?? 'nothing'}`, 'prompt', 'invalid_type');
  }
  // OpenAI's default for completions is 16 tokens
  return { ...base, prompt, maxTokens: base.maxTokens ?? 16 };
}

/** POST /v1/chat/completions: content as a string or as a list of text parts. */
export function chatRequest(body: Body): GenerationRequest {
  const base = common(body, body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens');
  const raw = body.messages;
  const messages = Array.isArray(raw)
    ? raw.map((m) => {
      if (typeof m !== 'object' || m === null || !Array.isArray((m as Body).content)) return m;
      const parts = (m as Body).content as unknown[];
      if (!parts.every((p) => typeof p === 'object' && p !== null && (p as Body).type === 'text' && typeof (p as Body).text === 'string')) return m;
      return { ...m, content: parts.map((p) => (p as { text: string }).text).join('') };
    })
    : raw;
  try {
    return { ...base, messages: checkMessages(messages) };
  } catch (e) {
    throw badRequest((e as Error).message, 'messages', 'invalid_type');
  }
}
