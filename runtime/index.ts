/// <reference types="@webgpu/types" preserve="true" />
// preserve="true": TypeScript ≥ 5.5 keeps the directive in index.d.ts only when asked; the declarations
// use GPUDevice, GPUBuffer & co., which consumers then get from the @webgpu/types dependency.
/**
 * lsc as a library: load a Hugging Face Llama checkpoint, generate with any strategy, read stats,
 * dispose. See examples/embed.ts.
 */
export { LscModel, type LoadOptions, type GpuBytes } from './model.js';
export { GenerationRun } from './generation-run.js';
export type { GenerateOptions, GenerateEvent, GenerateResult, GenerateStats, Strategy } from './generate.js';
export { openDevice, type GpuContext, type DeviceOptions } from './device.js';
export { LscTokenizer } from './tokenizer.js';
export { ChatTemplate, type ChatMessage, type RenderOptions } from './chat-template.js';
export { runBench, sweepGrid, type BenchOptions, type BenchReport } from './bench.js';
export { LscError } from '../compiler/errors.js';
export { QueueFullError, CancelledError } from './batch/errors.js';
