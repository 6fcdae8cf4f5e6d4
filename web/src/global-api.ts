/**
 * globalThis.lsc, the page's API for tests and embedders:
 *   lsc.ready: Promise<void>   (rejects with a one-line message when the model cannot load)
 *   lsc.generate(prompt, { maxNewTokens, temperature, strategy, exitLayer, numSpeculations, seed })
 *     : Promise<{ text, tokens, stats }>
 * Generations run one after another (one model, one KV cache).
 */
import { isLscError } from '../../compiler/errors.js';
import type { GenerateOptions, GenerateResult, GenerateStats } from '../../runtime/generate.js';
import { WebModel, type WebLoadOptions } from './web-model.js';

export interface LscPageApi {
  ready: Promise<void>;
  generate(prompt: string, opts?: GenerateOptions): Promise<{ text: string; tokens: number[]; stats: GenerateStats }>;
  /** The loaded model (after ready): for streaming with model.generate(). */
  model?: WebModel;
}

/** An error as one line: an LscError's message with where and how to fix it. */
export function errorLine(e: unknown): string {
  return isLscError(e) ? e.format() : e instanceof Error ? e.message : String(e);
}

export function installLscGlobal(opts: WebLoadOptions): LscPageApi {
  const loading = WebModel.load(opts);
  const api: LscPageApi = {
    ready: loading.then((m) => { api.model = m; }, (e) => { throw new Error(errorLine(e)); }),
    // calls take turns in the model's own queue (WebModel.queue)
    async generate(prompt, o = {}) {
      await api.ready;
      try {
        const r: GenerateResult = await api.model!.complete(prompt, o);
        return { text: r.text, tokens: r.tokens, stats: r.stats };
      } catch (e) {
        throw new Error(errorLine(e));
      }
    },
  };
  (globalThis as { lsc?: LscPageApi }).lsc = api;
  return api;
}
