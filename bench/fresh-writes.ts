/**
 * The floor under weight uploads on a CPU adapter: writing fresh GPU buffers (first touch of the
 * driver's memory) against writing one reused buffer, in the 16 MiB writeBuffer pieces the loader
 * uses, with the process's CPU time split into user and system.
 *
 *   node dist/bench/fresh-writes.js [--rounds 3]
 *
 * Each round creates 8 fresh 128 MiB buffers (1.07 GB), writes them, and destroys them; then the
 * same bytes go into one reused buffer. On lavapipe the buffers are shmem (memfd), so the fresh
 * rounds show the page-fault cost with /sys/kernel/mm/transparent_hugepage/shmem_enabled as it is.
 */
import { openDevice } from '../runtime/device.js';

const MiB = 1 << 20;
const PIECE = 16 * MiB;
const BUF = 128 * MiB;
const BUFS = 8;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const rounds = argv.includes('--rounds') ? Number(argv[argv.indexOf('--rounds') + 1]) : 3;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('usage: node dist/bench/fresh-writes.js [--rounds N]');
  const gpu = await openDevice();
  const d = gpu.device;
  const src = new Uint8Array(PIECE);
  for (let i = 0; i < PIECE; i++) src[i] = (i * 7) & 0xff;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const timed = async (name: string, body: () => Promise<void>): Promise<void> => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await body();
    await d.queue.onSubmittedWorkDone();
    const c = process.cpuUsage(c0);
    const s = (performance.now() - t0) / 1000;
    console.log(`${name.padEnd(24)} ${s.toFixed(2)} s, ${(BUFS * BUF / s / 1e9).toFixed(2)} GB/s; CPU user ${(c.user / 1e6).toFixed(2)} s, system ${(c.system / 1e6).toFixed(2)} s`);
  };
  const fill = async (target: (b: number) => GPUBuffer): Promise<void> => {
    for (let b = 0; b < BUFS; b++) {
      const buf = target(b);
      for (let o = 0; o < BUF; o += PIECE) d.queue.writeBuffer(buf, o, src);
      if (b % 2) await d.queue.onSubmittedWorkDone(); // as the loader drains every 256 MiB
    }
  };
  console.log(`adapter ${gpu.adapterInfo.description || gpu.adapterInfo.device}; ${(BUFS * BUF / 1e9).toFixed(2)} GB per round`);
  for (let r = 0; r < rounds; r++) {
    const made: GPUBuffer[] = [];
    await timed(`fresh buffers, round ${r + 1}`, () => fill(() => {
      const buf = d.createBuffer({ size: BUF, usage });
      made.push(buf);
      return buf;
    }));
    for (const b of made) b.destroy();
  }
  const reused = d.createBuffer({ size: BUF, usage });
  await fill(() => reused); // first touch, untimed
  await timed('one reused buffer', () => fill(() => reused));
  reused.destroy();
  gpu.dispose();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
