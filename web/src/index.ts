/**
 * lsc in the browser: load a model (weights over HTTP, cached), generate with any strategy.
 * Bundled by web/build.mjs as lsc.js (ESM). See examples/browser/.
 */
export { WebModel, type WebLoadOptions, type LoadProgress } from './web-model.js';
export { installLscGlobal, errorLine, type LscPageApi } from './global-api.js';
export { GenerationRun } from '../../runtime/generation-run.js';
export type { GenerateOptions, GenerateResult, GenerateStats, Strategy } from '../../runtime/generate.js';
export { LscError } from '../../compiler/errors.js';
