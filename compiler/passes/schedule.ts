import { createHash } from 'node:crypto';
import { kernelHeader } from '../../codegen/kernel.js';
import { familyOf } from '../../codegen/registry.js';
import { storageBuffers, type KernelConfig, type ScheduleEnv } from '../../codegen/family.js';
import type { FusedKernel, KernelSource } from '../ir/kernel.js';
import type { EntryKind } from '../ir/stages.js';
import type { PlanDispatch, PlanKernel, PlanWeight } from '../plan.js';

/** Picks a tuning choice for a fused kernel of a family, by structural key (undefined: the default). */
export type TuningChoice = (k: FusedKernel, key: string) => KernelConfig | undefined;
/** Tuning choices by family name (codegen/registry.ts TUNABLE_FAMILIES). */
export type TuningChoices = Record<string, TuningChoice>;

/** A kernel shape whose configuration the tuner can vary: re-emit it with another config. */
export interface Tunable {
  /** Structural key: the same for every layer and entry point that runs this shape. */
  key: string;
  family: string;
  config: KernelConfig;
  /** Kernel ids emitted for this key with `config`. */
  kernelIds: Set<string>;
  emit(cfg: KernelConfig): KernelSource;
}

export interface ScheduleContext {
  ctx: number;
  kvDim: number;
  kvF16: boolean;
  /** Rows of the SeqRows uniform (the plan's rows.max). */
  seqRows: number;
  weights: Map<string, PlanWeight>;
  valueBuffer: Map<string, string>;
  width: (value: string) => number;
  tokenOutBase: number;
  /** The configuration of a tunable kernel: tuned, else its family's default. */
  tuning: (k: FusedKernel, key: string) => KernelConfig;
  ropeBuffer: string;
  tokensBuffer: string;
  kvBuffer: (layer: number) => string;
  /** Storage buffers one kernel may bind (maxStorageBuffersPerShaderStage). */
  maxStorageBuffers: number;
  /** The draft-stop gate buffer the argmax binds (codegen/draft-gate.ts). */
  draftGateBuffer: string;
}

/** Turns fused kernels into dispatches through their families, emitting (and de-duplicating) WGSL as it goes. */
export class Scheduler {
  readonly kernels = new Map<string, PlanKernel & { wgsl: string }>();
  /** Emitted sources by structural key: layers share kernels, so each shape is emitted once. */
  private readonly emitted = new Map<string, { id: string; src: KernelSource }>();
  readonly tunables = new Map<string, Tunable>();

  constructor(private readonly c: ScheduleContext) {}

  private tunable(key: string, family: string, config: KernelConfig, id: string, emit: (cfg: KernelConfig) => KernelSource): void {
    let t = this.tunables.get(key);
    if (!t) this.tunables.set(key, (t = { key, family, config: { ...config }, kernelIds: new Set(), emit }));
    t.kernelIds.add(id);
  }

  private memo(key: string, fused: string[], emit: () => KernelSource): { id: string; src: KernelSource } {
    let e = this.emitted.get(key);
    if (!e) {
      const src = emit();
      e = { id: this.kernel(src, fused), src };
      this.emitted.set(key, e);
    }
    return e;
  }

  private kernel(emitted: KernelSource, fused: string[]): string {
    const src = { ...emitted, wgsl: kernelHeader(emitted, fused) + emitted.wgsl };
    const hash = createHash('sha256').update(src.wgsl).digest('hex').slice(0, 10);
    const id = `${src.name}_${hash}`;
    if (!this.kernels.has(id)) {
      this.kernels.set(id, {
        id, family: src.family, name: src.name, file: `kernels/${id}.wgsl`, workgroupSize: src.workgroupSize,
        bindings: src.bindings, params: src.params, grid: src.grid, config: src.config, features: src.features,
        fused, wgsl: src.wgsl,
      });
    }
    return id;
  }

  private env(k: FusedKernel, kind: EntryKind): ScheduleEnv {
    const c = this.c;
    return {
      ctx: c.ctx, kvDim: c.kvDim, kvF16: c.kvF16, seqRows: c.seqRows, ropeBuffer: c.ropeBuffer, tokensBuffer: c.tokensBuffer,
      tokenOutBase: c.tokenOutBase, maxStorageBuffers: c.maxStorageBuffers, verify: kind === 'verify', width: c.width, kvBuffer: c.kvBuffer,
      draft: kind === 'draft', draftGate: c.draftGateBuffer,
      buffer: (value) => {
        const b = c.valueBuffer.get(value);
        if (!b) throw new Error(`internal: no buffer for ${value}`);
        return b;
      },
      weight: (id) => {
        const w = c.weights.get(id);
        if (!w) throw new Error(`internal: no weight ${id}`);
        return { chunks: w.chunks, format: w.gpuDtype };
      },
      config: (key) => c.tuning(k, key),
    };
  }

  /** Dispatches for one fused kernel of an entry point of `kind` (verify routes argmax picks to the verify slots). */
  schedule(k: FusedKernel, kind: EntryKind): PlanDispatch[] {
    const family = familyOf(k);
    return family.schedule(k, this.env(k, kind)).map((l) => {
      const { id, src } = this.memo(`${l.source}:${JSON.stringify(l.config)}`, l.nodes, () => l.emit(l.config));
      if (l.tuningKey) this.tunable(l.tuningKey, family.name, l.config, id, l.emit);
      return { kernel: id, buffers: storageBuffers(src, l.buffers), params: l.params, nodes: l.nodes };
    });
  }
}
