/**
 * Where weight loading spends its time, from the page cache.
 *
 *   node dist/bench/load-profile.js DIR [--ctx 128] [--gpu-convert] [--reads-only]
 *
 * --reads-only: stop after the reads (no adapter opened).
 * --gpu-convert: convert BF16 on the GPU even on a CPU adapter (the default only on real GPUs).
 * DIR: a checkpoint (e.g. one kept by `node dist/bench/load-memory.js --keep DIR`). Reads every
 * file once to warm the page cache, then times: plain positioned reads of the tensor data in
 * 16 MiB pieces (the disk/page-cache bound); readRows to f16 (read + convert + finite check) into
 * nothing; and uploadWeights on the real adapter, its time split into readRows callbacks' writeBuffer
 * calls, queue waits (onSubmittedWorkDone) and the rest (read, convert, check).
 */
import fs from 'node:fs';
import { SafetensorsCheckpoint } from '../runtime/safetensors.js';
import { uploadWeights, weightBytes } from '../runtime/weights.js';
import { compileGraph } from '../compiler/compile.js';
import { modelGraph } from '../runtime/model-dir.js';
import { openDevice } from '../runtime/device.js';

const PIECE = 16 << 20;

function gbps(bytes: number, ms: number): string {
  return `${(ms / 1000).toFixed(2)} s, ${(bytes / 1e9 / (ms / 1000)).toFixed(2)} GB/s`;
}

function cpuText(cpu: NodeJS.CpuUsage): string {
  return `process CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (user ${(cpu.user / 1e6).toFixed(2)}, system ${(cpu.system / 1e6).toFixed(2)})`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const dir = argv[0];
  if (!dir) throw new Error('usage: node dist/bench/load-profile.js DIR [--ctx 128] [--gpu-convert] [--reads-only]');
  const ctx = argv.includes('--ctx') ? Number(argv[argv.indexOf('--ctx') + 1]) : 128;
  const ckpt = SafetensorsCheckpoint.open(dir);
  const buf = new Uint8Array(PIECE);
  const readAll = (): number => {
    let n = 0;
    for (const t of ckpt.tensors.values()) {
      const fd = fs.openSync(t.file, 'r');
      for (let off = 0; off < t.byteLength; off += PIECE) {
        const len = Math.min(PIECE, t.byteLength - off);
        n += fs.readSync(fd, buf, 0, len, t.dataStart + off);
      }
      fs.closeSync(fd);
    }
    return n;
  };
  readAll(); // warm the page cache
  let t0 = performance.now();
  const bytes = readAll();
  console.log(`plain reads (16 MiB)          ${gbps(bytes, performance.now() - t0)}  (${bytes} bytes)`);

  let cpu0 = process.cpuUsage();
  t0 = performance.now();
  let out = 0;
  for (const t of ckpt.tensors.values()) {
    ckpt.readRows(t.name, 'f16', 0, t.shape.length === 0 ? 1 : t.shape[0], (d) => { out += d.byteLength; });
  }
  console.log(`readRows to f16 (no upload)   ${gbps(out, performance.now() - t0)}; ${cpuText(process.cpuUsage(cpu0))}`);
  if (argv.includes('--reads-only')) return;

  const gpu = await openDevice();
  const { graph } = modelGraph(dir);
  const { plan } = compileGraph(graph, { ctx, prefillChunk: 16, limits: gpu.limits });
  const q = gpu.device.queue;
  const write = q.writeBuffer.bind(q);
  const done = q.onSubmittedWorkDone.bind(q);
  let writeMs = 0;
  let waitMs = 0;
  let waits = 0;
  (q as { writeBuffer: unknown }).writeBuffer = (...a: Parameters<GPUQueue['writeBuffer']>) => {
    const s = performance.now();
    write(...a);
    writeMs += performance.now() - s;
  };
  (q as { onSubmittedWorkDone: unknown }).onSubmittedWorkDone = async () => {
    const s = performance.now();
    await done();
    waitMs += performance.now() - s;
    waits++;
  };
  cpu0 = process.cpuUsage();
  t0 = performance.now();
  const bufs = await uploadWeights(gpu.device, plan, ckpt, undefined, { adapterInfo: gpu.adapterInfo, isCpu: gpu.isCpu, gpuConvert: argv.includes('--gpu-convert') ? true : undefined });
  const total = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const wb = weightBytes(plan);
  console.log(`uploadWeights (${gpu.adapterInfo.description || gpu.adapterInfo.device})`);
  console.log(`  total                       ${gbps(wb, total)}; ${cpuText(cpu)}`);
  console.log(`  writeBuffer calls           ${(writeMs / 1000).toFixed(2)} s (${(100 * writeMs / total).toFixed(0)}%)`);
  console.log(`  queue waits (${String(waits).padStart(2)})             ${(waitMs / 1000).toFixed(2)} s (${(100 * waitMs / total).toFixed(0)}%)`);
  console.log(`  rest (read, convert, check) ${((total - writeMs - waitMs) / 1000).toFixed(2)} s (${(100 * (total - writeMs - waitMs) / total).toFixed(0)}%)`);
  for (const b of bufs.values()) b.destroy();
  ckpt.close();
  gpu.device.destroy();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
