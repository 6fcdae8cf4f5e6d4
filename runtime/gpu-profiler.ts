import './gpu-globals.js';

/** Most timestamped sections one submission can hold (two timestamps each). */
export const MAX_SECTIONS = 16;

/** GPU time per named section, from timestamp queries (profiling submissions only). */
export class GpuProfiler {
  readonly sections = new Map<string, { count: number; ms: number }>();
  private querySet?: GPUQuerySet;
  private resolveBuffer?: GPUBuffer;

  constructor(private readonly device: GPUDevice, features: Set<string>) {
    this.enabled = features.has('timestamp-query');
  }

  /** Whether GPU timestamps can be taken (the adapter has timestamp-query). */
  readonly enabled: boolean;

  /** The query set and its resolve buffer, made on first use. */
  queries(): { set: GPUQuerySet; resolve: GPUBuffer } {
    this.querySet ??= this.device.createQuerySet({ type: 'timestamp', count: 2 * MAX_SECTIONS });
    this.resolveBuffer ??= this.device.createBuffer({ size: 2 * MAX_SECTIONS * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    return { set: this.querySet, resolve: this.resolveBuffer };
  }

  /** Adds the resolved begin/end timestamps of `names` (in order) to their sections. */
  record(names: string[], ts: BigUint64Array): void {
    names.forEach((name, i) => {
      const e = this.sections.get(name) ?? { count: 0, ms: 0 };
      e.count++;
      e.ms += Number(ts[2 * i + 1] - ts[2 * i]) / 1e6;
      this.sections.set(name, e);
    });
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuffer?.destroy();
  }
}
