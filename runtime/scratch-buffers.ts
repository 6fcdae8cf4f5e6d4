/**
 * Read buffers a checkpoint reader reuses from call to call. Loading reads gigabytes in pieces of
 * a few MiB; a fresh ArrayBuffer per piece is fresh memory, and first touch of fresh memory costs
 * a page fault per 4 KiB page (on a VM ~15 µs each: more than reading the bytes from the page
 * cache, BENCHMARKS.md "Loading speed"). Reused buffers fault once.
 */
export class ScratchBuffers {
  private readonly slots: ArrayBuffer[] = [];
  private leased = false;

  /**
   * The buffers for one read call, until release(). A call made while another holds them (a
   * reader called again from inside its own callback) gets fresh buffers that are not kept.
   */
  lease(): ScratchLease {
    if (this.leased) return new ScratchLease(undefined);
    this.leased = true;
    return new ScratchLease(this);
  }

  /** Drops the kept buffers (their memory goes back when collected). */
  clear(): void {
    this.slots.length = 0;
  }

  /** @internal A buffer of at least `bytes` in slot `slot`, grown (replaced) when too small. */
  take(slot: number, bytes: number): ArrayBuffer {
    const have = this.slots[slot];
    if (have && have.byteLength >= bytes) return have;
    const buf = new ArrayBuffer(bytes);
    this.slots[slot] = buf;
    return buf;
  }

  /** @internal */
  giveBack(): void {
    this.leased = false;
  }
}

export class ScratchLease {
  constructor(private readonly pool: ScratchBuffers | undefined) {}

  /** An ArrayBuffer of at least `bytes` (slot: which of the caller's buffers, 0, 1, ...). */
  get(slot: number, bytes: number): ArrayBuffer {
    return this.pool ? this.pool.take(slot, bytes) : new ArrayBuffer(bytes);
  }

  release(): void {
    this.pool?.giveBack();
  }
}
