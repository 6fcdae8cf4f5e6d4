/** The compiler as a library: graphs from Hugging Face configs, validation, plans. */
export { compileGraph, type CompileOptions, type CompiledPlan } from './compile.js';
export { validateGraph } from './ir/validate.js';
export { parseLlamaConfig } from './builder/hf-config.js';
export { buildLlamaGraph, type BuildOptions } from './builder/llama.js';
export { writeArtifact, readArtifact } from './artifact.js';
export type { Graph } from './ir/graph.js';
export type { Plan } from './plan.js';
export { LscError } from './errors.js';
export { ENTRY_KINDS, STAGE_ROLES, entryOf, stageOf, type EntryKind, type StageRole } from './ir/stages.js';
