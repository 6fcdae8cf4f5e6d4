/** JSON Schema (draft 2020-12 subset understood by ajv) of lsc.graph/1. */
const dimExpr = { oneOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: '^[A-Za-z0-9_+*\\- ]+$' }] };
const shape = { type: 'array', items: dimExpr };
const id = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' };
const ops = ['embed', 'rms_norm', 'matmul', 'rope', 'attention', 'add', 'mul', 'silu', 'argmax', 'repeat'];

const node = {
  type: 'object',
  required: ['id', 'op', 'in'],
  additionalProperties: false,
  properties: {
    id,
    op: { enum: ops },
    in: { type: 'array', items: { type: 'string', minLength: 1 } },
    attrs: { type: 'object' },
    block: { type: 'string' },
    layers: { type: 'array', items: dimExpr, minItems: 2, maxItems: 2 },
    doc: { type: 'string' },
  },
};

export const graphSchema = {
  $id: 'https://lsc.dev/schema/graph-1.json',
  type: 'object',
  additionalProperties: false,
  required: ['format', 'name', 'dims', 'dtypes', 'rope', 'tokens', 'inputs', 'weights', 'blocks', 'body', 'outputs', 'exit', 'verify', 'defaults'],
  properties: {
    $schema: { type: 'string' },
    format: { const: 'lsc.graph/1' },
    name: { type: 'string', minLength: 1 },
    doc: { type: 'string' },
    source: { type: 'object' },
    dims: {
      type: 'object',
      additionalProperties: {
        oneOf: [
          dimExpr,
          { type: 'object', required: ['max'], additionalProperties: false, properties: { max: dimExpr, doc: { type: 'string' } } },
        ],
      },
    },
    dtypes: {
      type: 'object',
      additionalProperties: false,
      required: ['weights', 'activations', 'kv', 'accumulate'],
      properties: {
        weights: { enum: ['f16', 'q8_0', 'q4_0'] },
        activations: { const: 'f32' },
        kv: { enum: ['f16', 'f32'] },
        accumulate: { const: 'f32' },
      },
    },
    rope: {
      type: 'object',
      additionalProperties: false,
      required: ['theta', 'style'],
      properties: {
        theta: { type: 'number', exclusiveMinimum: 0 },
        style: { const: 'rotate_half' },
        scaling: {
          oneOf: [
            {
              type: 'object', additionalProperties: false,
              required: ['type', 'factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositionEmbeddings'],
              properties: {
                type: { const: 'llama3' }, factor: { type: 'number', exclusiveMinimum: 0 },
                lowFreqFactor: { type: 'number', exclusiveMinimum: 0 }, highFreqFactor: { type: 'number', exclusiveMinimum: 0 },
                originalMaxPositionEmbeddings: { type: 'number', exclusiveMinimum: 0 },
              },
            },
            {
              type: 'object', additionalProperties: false, required: ['type', 'factor'],
              properties: { type: { const: 'linear' }, factor: { type: 'number', exclusiveMinimum: 0 } },
            },
          ],
        },
      },
    },
    tokens: {
      type: 'object',
      additionalProperties: false,
      required: ['eos'],
      properties: { bos: { type: 'integer', minimum: 0 }, eos: { type: 'array', items: { type: 'integer', minimum: 0 } } },
    },
    inputs: {
      type: 'object',
      additionalProperties: {
        type: 'object', additionalProperties: false, required: ['shape', 'dtype'],
        properties: { shape, dtype: { enum: ['f32', 'f16', 'i32'] } },
      },
    },
    weights: {
      type: 'object',
      additionalProperties: {
        type: 'object', additionalProperties: false, required: ['hf', 'shape'],
        properties: {
          hf: { type: 'string', minLength: 1 }, shape: { ...shape, minItems: 1, maxItems: 2 },
          perLayer: { type: 'boolean' }, tiedTo: { type: 'string' }, format: { enum: ['f16', 'q8_0', 'q4_0'] },
        },
      },
    },
    blocks: {
      type: 'object',
      additionalProperties: {
        type: 'object', additionalProperties: false, required: ['in', 'nodes', 'out'],
        properties: {
          in: { type: 'object', minProperties: 1, additionalProperties: shape },
          nodes: { type: 'array', minItems: 1, items: node },
          out: { type: 'string' },
        },
      },
    },
    body: { type: 'array', minItems: 1, items: node },
    outputs: { type: 'array', items: { type: 'string' } },
    exit: {
      type: 'object', additionalProperties: false, required: ['op', 'trunk', 'candidates', 'head'],
      properties: {
        op: { const: 'exit_point' }, trunk: { type: 'string' },
        candidates: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'integer', minimum: 1 } },
        head: { type: 'array', minItems: 1, items: { type: 'string' } },
      },
    },
    verify: {
      type: 'object', additionalProperties: false, required: ['op', 'trunk', 'layers', 'positions', 'from', 'head'],
      properties: {
        op: { const: 'verify_subgraph' }, trunk: { type: 'string' },
        layers: { type: 'array', items: dimExpr, minItems: 2, maxItems: 2 },
        positions: { type: 'string' }, from: { enum: ['exit_query_cache', 'embedding'] },
        head: { type: 'array', minItems: 1, items: { type: 'string' } },
      },
    },
    defaults: {
      type: 'object', additionalProperties: false, required: ['exitLayer', 'numSpeculations'],
      properties: {
        exitLayer: { type: 'integer', minimum: 1 },
        numSpeculations: { type: 'integer', minimum: 1 },
        prefillChunk: { type: 'integer', minimum: 1 },
      },
    },
  },
} as const;
