import type { TensorEntry } from './safetensors-header.js';

/**
 * Where uploadWeights and the checkpoint checks read a checkpoint from: the Node reader of local
 * files (SafetensorsCheckpoint) or the browser's HTTP reader (web/src/http-checkpoint.ts).
 */
export interface WeightSource {
  /** The directory or base URL, for messages. */
  readonly dir: string;
  /** Its .safetensors files (paths or URLs). */
  readonly files: readonly string[];
  readonly tensors: ReadonlyMap<string, TensorEntry>;
  get(name: string): TensorEntry | undefined;
  /**
   * Rows [rowStart, rowStart+rowCount) of a tensor converted to `target`, handed to onChunk in
   * pieces (whose views are valid only during the call); elementOffset is data[0]'s offset from the
   * first requested element. Synchronous for local files, a promise for fetched ones.
   */
  readRows(name: string, target: 'f16' | 'f32', rowStart: number, rowCount: number,
    onChunk: (data: Uint16Array | Float32Array, elementOffset: number) => void): void | Promise<void>;
  /**
   * Rows [rowStart, rowStart+rowCount) as stored, unconverted and unchecked (uploadWeights converts
   * BF16 on the GPU and checks the result there), in pieces; byteOffset is data[0]'s offset from the
   * first requested byte. Optional: sources without it are read through readRows.
   */
  readRawRows?(name: string, rowStart: number, rowCount: number,
    onChunk: (data: Uint8Array, byteOffset: number) => void): void | Promise<void>;
}
