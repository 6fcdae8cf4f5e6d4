import '../gpu-globals.js';
import { SEQ_ROW_BYTES } from '../../codegen/kernel.js';
import type { Executor } from '../executor.js';

/** One activation row of a batched step: the sequence's KV slot and the row's position. */
export interface SeqRow {
  row: number;
  slot: number;
  pos: number;
}

const WORDS = SEQ_ROW_BYTES / 4;

/**
 * The runtime side of the kernels' SeqRows uniform (codegen/kernel.ts): which KV slot and
 * position each activation row has. Written before each submission of the batch engine; the
 * upload is skipped when the table is unchanged.
 */
export class SeqRowTable {
  private readonly words: Uint32Array;
  private uploaded = '';

  constructor(private readonly ex: Executor) {
    this.words = new Uint32Array(ex.plan.rows.max * WORDS);
  }

  /** Every row in `slot` at position posBase + row: the single-sequence layout, moved to a slot. */
  solo(slot: number): void {
    this.words.fill(0);
    for (let r = 0; r < this.ex.plan.rows.max; r++) this.words[r * WORDS + 1] = slot;
    this.upload(`solo:${slot}`);
  }

  /**
   * Rows of several sequences, each at its own position (stages run at posBase 0). Returns the
   * table's words (for the batched acceptance kernel's image of it, codegen/batch-accept.ts).
   */
  rows(rows: SeqRow[]): Uint32Array {
    this.words.fill(0);
    for (const r of rows) {
      this.words[r.row * WORDS] = (r.pos - r.row) >>> 0; // the kernels add posBase (0) + row
      this.words[r.row * WORDS + 1] = r.slot;
    }
    this.upload('');
    return this.words;
  }

  /** Back to all zeros (slot 0, posBase + row), what the single-sequence path expects. */
  reset(): void {
    this.words.fill(0);
    this.upload('solo:0');
  }

  private upload(key: string): void {
    if (key && key === this.uploaded) return;
    this.ex.device.queue.writeBuffer(this.ex.seqRows, 0, this.words);
    this.uploaded = key;
  }
}
