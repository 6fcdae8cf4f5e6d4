import './gpu-globals.js';
import type { PlanDispatch } from '../compiler/plan.js';
import { gridSize, type GridDim, type KernelSource } from '../codegen/kernel.js';
import { bindGroupLayout } from './bind-layout.js';
import type { Executor } from './executor.js';

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
