/**
 * JSON Schema of lsc.plan/1 (plan.json in an artifact). It checks the shape of a plan read back
 * from disk so the checks after it (compiler/plan-check.ts) never meet a missing array or a
 * string where a number belongs; whether the values are right is decided by recompiling.
 */
import { ENTRY_KINDS, STAGE_ROLES } from './ir/stages.js';
const count = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };
const positive = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER };
/** Rows and decode steps: the compiler sizes buffers by them; anything near this bound is a typo. */
const rows = { type: 'integer', minimum: 1, maximum: 1 << 20 };
const str = { type: 'string' };
const strings = { type: 'array', items: str };
const gridDim = {
  oneOf: [
    count,
    { type: 'object', additionalProperties: false, required: ['perRow'], properties: { perRow: count, rowsPerGroup: positive } },
  ],
};

const dispatch = {
  type: 'object', additionalProperties: false, required: ['kernel', 'buffers', 'params', 'nodes'],
  properties: { kernel: str, buffers: strings, params: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 0xffffffff } }, nodes: strings },
};

const kernel = {
  type: 'object', additionalProperties: false,
  required: ['id', 'family', 'name', 'file', 'workgroupSize', 'bindings', 'params', 'grid', 'config', 'features', 'fused'],
  properties: {
    id: str, family: str, name: str, file: str, workgroupSize: positive,
    bindings: {
      type: 'array',
      items: { type: 'object', additionalProperties: false, required: ['name', 'type'], properties: { name: str, type: { enum: ['range', 'params', 'seq', 'read', 'rw', 'ranges'] } } },
    },
    params: strings,
    grid: { type: 'array', minItems: 3, maxItems: 3, items: gridDim },
    // tuning choices: small counts (threads, rows, flags)
    config: { type: 'object', additionalProperties: { type: 'integer', minimum: 0, maximum: 65536 } },
    features: strings,
    fused: strings,
  },
};

const entry = {
  type: 'object', additionalProperties: false, required: ['name', 'kind', 'stepped', 'kvLayers', 'stages'],
  properties: {
    name: str, kind: { enum: [...ENTRY_KINDS] }, exitLayer: positive, stepped: { type: 'boolean' },
    kvLayers: { type: 'array', minItems: 2, maxItems: 2, items: count },
    stages: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['name', 'role', 'range', 'dispatches'],
        properties: {
          name: str, role: { enum: [...STAGE_ROLES] },
          range: { type: 'object', additionalProperties: false, required: ['rowStart', 'rowCount', 'posBase'], properties: { rowStart: str, rowCount: str, posBase: str } },
          dispatches: { type: 'array', items: dispatch },
        },
      },
    },
  },
};

const limit = positive;

export const planSchema = {
  $id: 'https://lsc.dev/schema/plan-1.json',
  type: 'object',
  additionalProperties: false,
  required: ['format', 'graph', 'dims', 'dtypes', 'rope', 'tokens', 'limits', 'features', 'rows', 'tokenSlots', 'io', 'exits',
    'weights', 'buffers', 'kvBuffers', 'kernels', 'entries', 'accept', 'fusion'],
  properties: {
    format: { const: 'lsc.plan/1' },
    graph: { type: 'object', additionalProperties: false, required: ['name', 'hash'], properties: { name: str, hash: { type: 'string', pattern: '^[0-9a-f]{16}$' } } },
    dims: { type: 'object', additionalProperties: positive },
    dtypes: { type: 'object' },
    rope: { type: 'object' },
    tokens: { type: 'object' },
    limits: {
      type: 'object', additionalProperties: false,
      required: ['maxStorageBufferBindingSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxBufferSize'],
      properties: {
        maxStorageBufferBindingSize: limit, maxStorageBuffersPerShaderStage: limit, maxComputeWorkgroupStorageSize: limit,
        maxComputeInvocationsPerWorkgroup: limit, maxBufferSize: limit,
      },
    },
    features: strings,
    rows: {
      type: 'object', additionalProperties: false, required: ['max', 'prefillChunk', 'decodeSteps', 'kMax', 'rangeSlots'],
      properties: { max: positive, prefillChunk: rows, decodeSteps: rows, kMax: positive, rangeSlots: positive, sequences: positive },
    },
    tokenSlots: { type: 'object', additionalProperties: false, required: ['verifyBase', 'length'], properties: { verifyBase: count, length: positive } },
    io: {
      type: 'object', additionalProperties: false, required: ['tokens', 'logits', 'trunk', 'rope', 'acceptState'],
      properties: { tokens: str, logits: str, trunk: str, rope: str, acceptState: str },
    },
    accept: { type: 'object', additionalProperties: false, required: ['kernel', 'buffers'], properties: { kernel: str, buffers: strings } },
    batchAccept: { type: 'object', additionalProperties: false, required: ['kernel', 'buffers'], properties: { kernel: str, buffers: strings } },
    draftStop: {
      type: 'object', additionalProperties: false, required: ['gate', 'accept', 'state'],
      properties: {
        gate: { type: 'object', additionalProperties: false, required: ['kernel', 'buffers'], properties: { kernel: str, buffers: strings } },
        accept: { type: 'object', additionalProperties: false, required: ['kernel', 'buffers'], properties: { kernel: str, buffers: strings } },
        state: str,
      },
    },
    exits: {
      type: 'object', additionalProperties: false, required: ['candidates', 'defaultExitLayer', 'defaultNumSpeculations'],
      properties: { candidates: { type: 'array', items: positive }, defaultExitLayer: positive, defaultNumSpeculations: positive },
    },
    weights: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['id', 'hf', 'shape', 'gpuDtype', 'chunks'],
        properties: {
          id: str, hf: str, shape: { type: 'array', items: positive }, gpuDtype: { enum: ['f16', 'f32', 'q8_0', 'q4_0'] }, tiedTo: str,
          chunks: {
            type: 'array',
            items: { type: 'object', additionalProperties: false, required: ['buffer', 'rowStart', 'rowCount'], properties: { buffer: str, rowStart: count, rowCount: positive } },
          },
        },
      },
    },
    buffers: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['id', 'kind', 'bytes', 'doc'],
        properties: { id: str, kind: { enum: ['weight', 'kv', 'activation', 'io', 'constant'] }, bytes: positive, doc: str },
      },
    },
    kvBuffers: strings,
    kernels: { type: 'array', minItems: 1, items: kernel },
    entries: { type: 'array', minItems: 1, items: entry },
    fusion: { type: 'object', additionalProperties: count },
  },
} as const;
