import './gpu-globals.js';
import { RANGE_BYTES, RANGE_FIELDS, RANGE_SLOT_BYTES, RANGE_SLOT_WORDS } from '../codegen/kernel.js';

export interface StageRange {
  rowStart: number;
  rowCount: number;
  posBase: number;
}

const FIELD = { rowStart: RANGE_FIELDS.indexOf('rowStart'), rowCount: RANGE_FIELDS.indexOf('rowCount'), posBase: RANGE_FIELDS.indexOf('posBase') };

/**
 * The row ranges of one submission: a slot per encoded stage (layout in compiler/plan.ts),
 * written on the CPU and uploaded once per submission. The buffer is STORAGE too: chained
 * speculation rounds write the next round's positions on the GPU (codegen/accept.ts).
 */
export class RangeTable {
  readonly buffer: GPUBuffer;
  private readonly words: Uint32Array<ArrayBuffer>;

  constructor(private readonly device: GPUDevice, readonly slots: number) {
    this.buffer = device.createBuffer({ size: slots * RANGE_SLOT_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: 'ranges' });
    this.words = new Uint32Array(slots * RANGE_SLOT_WORDS);
  }

  get bytes(): number {
    return this.buffer.size;
  }

  /** Slot `slot` bound as a kernel's range uniform. */
  binding(slot: number): GPUBufferBinding {
    return { buffer: this.buffer, offset: slot * RANGE_SLOT_BYTES, size: RANGE_BYTES };
  }

  set(slot: number, r: StageRange): void {
    const at = slot * RANGE_SLOT_WORDS;
    this.words[at + FIELD.rowStart] = r.rowStart;
    this.words[at + FIELD.rowCount] = r.rowCount;
    this.words[at + FIELD.posBase] = r.posBase;
  }

  /** Uploads slots [0, count). */
  flush(count: number): void {
    if (count) this.device.queue.writeBuffer(this.buffer, 0, this.words, 0, count * RANGE_SLOT_WORDS);
  }

  /** Writes one slot to the GPU now (kernel timing, outside a submission). */
  writeNow(slot: number, r: StageRange): void {
    this.set(slot, r);
    this.device.queue.writeBuffer(this.buffer, slot * RANGE_SLOT_BYTES, this.words, slot * RANGE_SLOT_WORDS, RANGE_SLOT_WORDS);
  }

  destroy(): void {
    this.buffer.destroy();
  }
}
