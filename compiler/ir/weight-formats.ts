/**
 * Weight formats on the GPU, one per weight tensor (PlanWeight.gpuDtype): f32 norm vectors, f16
 * matrices, or GGUF's block formats Q8_0 and Q4_0 (32 weights per block, one f16 scale each:
 * Q8_0 34 bytes per block, Q4_0 18). This module owns the byte layout the kernels read
 * (codegen/quant-load.ts) and the loader writes (runtime/quant/*); it imports nothing.
 *
 * A quantized matrix (or row slice of one) is bound as one buffer in a planar layout: every
 * block's quants first (row-major, blocks in order: Q8_0 one byte per weight, Q4_0 GGUF's 16
 * bytes per block, byte j holding weight j in its low nibble and weight j + 16 in its high one),
 * then every block's f16 scale in the same order. Same bytes as GGUF's interleaved blocks, but
 * every quant word is 4-byte aligned, so a kernel reads four weights with one u32 load.
 */

export type QuantFormat = 'q8_0' | 'q4_0';
export type MatrixFormat = 'f16' | QuantFormat;
export type WeightFormat = 'f32' | MatrixFormat;

/** Weights per block (GGUF's QK8_0 = QK4_0 = 32). */
export const QBLOCK = 32;

/** The `--weights` choices and the matrix format each selects. */
export const WEIGHT_CHOICES: Record<string, MatrixFormat> = { f16: 'f16', q8: 'q8_0', q4: 'q4_0' };

export const isQuant = (f: WeightFormat): f is QuantFormat => f === 'q8_0' || f === 'q4_0';

/** Bytes of one block's quants (Q8_0: 32 × int8; Q4_0: 32 nibbles). */
export function quantBytesPerBlock(f: QuantFormat): number {
  return f === 'q8_0' ? QBLOCK : QBLOCK / 2;
}

/** GGUF block size in bytes: quants + one f16 scale. */
export function blockBytes(f: QuantFormat): number {
  return quantBytesPerBlock(f) + 2;
}

/** Where the parts of a planar quantized matrix of `rows` × `cols` lie, in bytes. */
export interface PlanarLayout {
  /** Bytes of quants per row. */
  rowQuantBytes: number;
  blocksPerRow: number;
  /** Byte offset of the scales (= the bytes of all quants). */
  scaleOffset: number;
  /** Bytes of the matrix (quants + scales), before padding to 4. */
  bytes: number;
}

export function planarLayout(f: QuantFormat, rows: number, cols: number): PlanarLayout {
  if (cols % QBLOCK !== 0) throw new Error(`internal: a ${f} row of ${cols} weights is not whole blocks of ${QBLOCK}`);
  const blocksPerRow = cols / QBLOCK;
  const rowQuantBytes = blocksPerRow * quantBytesPerBlock(f);
  const scaleOffset = rows * rowQuantBytes;
  return { rowQuantBytes, blocksPerRow, scaleOffset, bytes: scaleOffset + rows * blocksPerRow * 2 };
}

/** Bytes per element of a plain format. */
export function elementBytes(f: 'f16' | 'f32'): number {
  return f === 'f16' ? 2 : 4;
}

/** GPU bytes of `rows` rows of `cols` weights in format f (before padding to 4). */
export function matrixBytes(f: WeightFormat, rows: number, cols: number): number {
  return isQuant(f) ? planarLayout(f, rows, cols).bytes : rows * cols * elementBytes(f);
}

/**
 * The LM head's format when its declaration names none, per `dtypes.weights`. q4_0 keeps the head
 * at q8_0: on tiny-code it takes the held-out perplexity from 17.047 (all q4_0) to 16.826 (f16
 * 16.651; an f16 head gives no more, 16.831) for 8 % more weight bytes, and at Llama-2-7B it costs
 * 1.6 % (3.98 -> 4.05 GB); llama.cpp likewise keeps its output matrix wider (BENCHMARKS.md,
 * "Per-tensor formats"). `--weights q4:head=q4` overrides.
 */
export const HEAD_FORMAT: Record<MatrixFormat, MatrixFormat> = { f16: 'f16', q8_0: 'q8_0', q4_0: 'q8_0' };
