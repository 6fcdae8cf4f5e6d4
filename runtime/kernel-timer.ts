import './gpu-globals.js';
import type { PlanDispatch, PlanEntry } from '../compiler/plan.js';
import { compileDimExpr } from '../compiler/ir/dims.js';
import { gridSize, type GridDim, type KernelSource } from '../compiler/ir/kernel.js';
import { bindGroupLayout } from './bind-layout.js';
import type { Executor, RangeSymbols } from './executor.js';

/**
 * Times `src` run with the bindings of the plan dispatch `disp` over `rows` rows (the tuner's
 * measurement): median milliseconds per dispatch over `reps` submissions of `batch` dispatches.
 * Infinity when it fails to compile. Uses the executor's last range slot.
 */
export async function timeKernel(ex: Executor, src: KernelSource, disp: PlanDispatch, rows: number,
  opts: { batch?: number; reps?: number; posBase?: number } = {}): Promise<number> {
  const d = ex.device;
  const batch = opts.batch ?? 20;
  const reps = opts.reps ?? 5;
  d.pushErrorScope('validation');
  const module = d.createShaderModule({ code: src.wgsl });
  const info = await module.getCompilationInfo();
  if (info.messages.some((m) => m.type === 'error')) { await d.popErrorScope(); return Infinity; }
  const layout = bindGroupLayout(d, src.bindings);
  const pipeline = await d.createComputePipelineAsync({ layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }), compute: { module, entryPoint: 'main' } })
    .catch(() => undefined);
  const slot = ex.rangeSlots - 1;
  const bindings = ex.dispatchBindings;
  const bg = pipeline && d.createBindGroup({ layout, entries: bindings.entries(bindings.get(disp), slot) });
  if (await d.popErrorScope() || !pipeline || !bg) return Infinity;
  ex.ranges.writeNow(slot, { rowStart: 0, rowCount: rows, posBase: opts.posBase ?? 0 });
  const g = (x: GridDim): number => gridSize(x, rows);
  const run = async (): Promise<number> => {
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bg);
    for (let i = 0; i < batch; i++) pass.dispatchWorkgroups(g(src.grid[0]), g(src.grid[1]), g(src.grid[2]));
    pass.end();
    const t0 = performance.now();
    d.queue.submit([enc.finish()]);
    await d.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / batch;
  };
  await run(); // first use compiles on some drivers
  const times: number[] = [];
  for (let r = 0; r < reps; r++) times.push(await run());
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

/**
 * Profiling (`lsc bench --profile`): runs an entry point once with each dispatch in its own
 * timestamped compute pass and returns its dispatches with their GPU milliseconds (needs
 * timestamp-query: see executor.profiler.enabled).
 */
export async function timeDispatches(ex: Executor, entry: PlanEntry, sym: RangeSymbols): Promise<{ dispatch: PlanDispatch; ms: number }[]> {
  const d = ex.device;
  const look = (n: string): number => sym[n as keyof RangeSymbols] ?? NaN;
  const runs: { dispatch: PlanDispatch; slot: number; rows: number }[] = [];
  entry.stages.forEach((st, slot) => {
    const [rowStart, rowCount, posBase] = [st.range.rowStart, st.range.rowCount, st.range.posBase].map((x) => compileDimExpr(x)(look));
    ex.ranges.set(slot, { rowStart, rowCount, posBase });
    if (rowCount > 0) for (const dispatch of st.dispatches) runs.push({ dispatch, slot, rows: rowCount });
  });
  ex.ranges.flush(entry.stages.length);
  const set = d.createQuerySet({ type: 'timestamp', count: 2 * runs.length });
  const resolve = d.createBuffer({ size: 16 * runs.length, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const staging = d.createBuffer({ size: 16 * runs.length, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const enc = d.createCommandEncoder();
    const bindings = ex.dispatchBindings;
    runs.forEach((r, j) => {
      const b = bindings.get(r.dispatch);
      const pass = enc.beginComputePass({ timestampWrites: { querySet: set, beginningOfPassWriteIndex: 2 * j, endOfPassWriteIndex: 2 * j + 1 } });
      pass.setPipeline(b.pipeline);
      pass.setBindGroup(0, bindings.group(b, r.slot));
      pass.dispatchWorkgroups(gridSize(b.grid[0], r.rows), gridSize(b.grid[1], r.rows), gridSize(b.grid[2], r.rows));
      pass.end();
    });
    enc.resolveQuerySet(set, 0, 2 * runs.length, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, staging, 0, 16 * runs.length);
    d.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const ts = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    return runs.map((r, j) => ({ dispatch: r.dispatch, ms: Number(ts[2 * j + 1] - ts[2 * j]) / 1e6 }));
  } finally {
    set.destroy();
    resolve.destroy();
    staging.destroy();
  }
}
