import crypto from 'node:crypto';
import type { GenerateResult, GenerateStats } from '../runtime/generate.js';

/** Response objects in OpenAI's shapes, plus `speculation` beside `usage`. */
export type Kind = 'completion' | 'chat';

export interface Usage { prompt_tokens: number; completion_tokens: number; total_tokens: number }

export interface Speculation {
  strategy: string;
  exit_layer: number | null;
  num_speculations: number | null;
  acceptance_rate: number | null;
  drafted_tokens: number;
  accepted_tokens: number;
  rounds: number;
  /** Speculation rounds by exit layer and by drafts per round (adaptive moves both). */
  rounds_by_exit: Record<string, number> | null;
  rounds_by_k: Record<string, number> | null;
  /** Rounds whose drafting stopped early at a draft below the draft-stop probability (adaptive). */
  draft_stops: number | null;
  /** Tokens decoded without speculating because the batch was fuller than the model's speculationMaxBatch. */
  plain_tokens: number | null;
}

export const usageOf = (s: GenerateStats): Usage =>
  ({ prompt_tokens: s.promptTokens, completion_tokens: s.generatedTokens, total_tokens: s.promptTokens + s.generatedTokens });

export const speculationOf = (s: GenerateStats): Speculation => ({
  strategy: s.strategy, exit_layer: s.exitLayer, num_speculations: s.numSpeculations, acceptance_rate: s.acceptanceRate,
  drafted_tokens: s.draftedTokens, accepted_tokens: s.acceptedTokens, rounds: s.rounds,
  rounds_by_exit: s.roundsByExit, rounds_by_k: s.roundsByK, draft_stops: s.draftStops, plain_tokens: s.plainTokens,
});

/** OpenAI's finish_reason: 'length' where a token budget (max_tokens or the context) ended it. */
export function finishReason(s: GenerateStats): 'stop' | 'length' {
  return s.stopReason === 'max-tokens' || s.stopReason === 'context' ? 'length' : 'stop';
}

/** One response's id, creation time and model, shared by all its chunks. */
export class ResponseHead {
  readonly id: string;
  readonly created = Math.floor(Date.now() / 1000);
  constructor(readonly kind: Kind, readonly model: string) {
    this.id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${crypto.randomUUID()}`;
  }

  private get object(): string {
    return this.kind === 'chat' ? 'chat.completion' : 'text_completion';
  }

  /** The whole response of a non-streaming request. */
  full(r: GenerateResult): object {
    const reason = finishReason(r.stats);
    const choice = this.kind === 'chat'
      ? { index: 0, message: { role: 'assistant', content: r.text }, finish_reason: reason, logprobs: null }
      : { index: 0, text: r.text, finish_reason: reason, logprobs: null };
    return {
      id: this.id, object: this.object, created: this.created, model: this.model,
      choices: [choice], usage: usageOf(r.stats), speculation: speculationOf(r.stats),
    };
  }

  /** A streamed chunk: text (chat: a delta, the first one with the role), or the finish. */
  chunk(text: string, opts: { first?: boolean; finish?: 'stop' | 'length' } = {}): object {
    const finish = opts.finish ?? null;
    const choice = this.kind === 'chat'
      ? { index: 0, delta: opts.finish ? {} : { ...(opts.first ? { role: 'assistant' } : {}), content: text }, finish_reason: finish, logprobs: null }
      : { index: 0, text, finish_reason: finish, logprobs: null };
    return { id: this.id, object: this.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: this.created, model: this.model, choices: [choice] };
  }

  /** The last chunk of stream_options.include_usage: no choices, the usage (and speculation). */
  usageChunk(s: GenerateStats): object {
    return {
      id: this.id, object: this.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', created: this.created, model: this.model,
      choices: [], usage: usageOf(s), speculation: speculationOf(s),
    };
  }
}
