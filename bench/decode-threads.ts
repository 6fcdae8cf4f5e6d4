/**
 * Where the CPU goes while a model decodes: per greedy autoregressive token, the CPU time of the
 * node main thread and of every other thread (lavapipe's shader threads and queue thread, Dawn's,
 * libuv's), the main thread's minor page faults, and the event-loop turns the GPU waits took.
 *
 *   node dist/bench/decode-threads.js DIR [--tokens 32] [--repeat 3] [--prompt TEXT]
 *
 * Linux only (reads /proc/self/task/<tid>/stat). Each repeat is one prompt: prefill, then decode;
 * figures cover the decode only. The first repeat includes the driver's first runs of each shape.
 */
import fs from 'node:fs';
import { LscModel } from '../runtime/model.js';

interface ThreadTimes { ms: number; faults: number }

const TICK_MS = 10; // USER_HZ = 100 on Linux

/** CPU time (user + system) and minor faults of each thread of this process, by thread id. */
function threadTimes(): Map<string, ThreadTimes> {
  const out = new Map<string, ThreadTimes>();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(tid, { ms: (Number(f[11]) + Number(f[12])) * TICK_MS, faults: Number(f[7]) });
  }
  return out;
}

function flag(argv: string[], name: string, dflt: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const dir = argv[0];
  if (!dir || dir.startsWith('--')) throw new Error('usage: node dist/bench/decode-threads.js DIR [--tokens 32] [--repeat 3] [--prompt TEXT]');
  const tokens = Number(flag(argv, '--tokens', '32'));
  const repeat = Number(flag(argv, '--repeat', '3'));
  const prompt = flag(argv, '--prompt', 'def f(x):');
  if (!Number.isInteger(tokens) || tokens < 2) throw new Error(`--tokens must be an integer ≥ 2, got ${flag(argv, '--tokens', '')}`);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a positive integer, got ${flag(argv, '--repeat', '')}`);
  const model = await LscModel.load(dir);
  const main = String(process.pid);
  const waiter = model.executor.waiter;
  try {
    console.log('repeat  ms/token  main CPU ms/token  other threads CPU ms/token  main faults/token  wait turns/token  submissions');
    for (let r = 0; r < repeat; r++) {
      let before = threadTimes();
      let turns0 = waiter.turns;
      // the decode starts after the first token: sample the threads when it arrives
      const run = model.generate(prompt, { strategy: 'autoregressive', maxNewTokens: tokens, temperature: 0, stopAtEos: false });
      let first = true;
      for await (const ev of run) {
        if (first && ev.tokens.length) {
          first = false;
          before = threadTimes();
          turns0 = waiter.turns;
        }
      }
      const { stats } = await run.result;
      const after = threadTimes();
      const n = stats.generatedTokens - 1;
      let mainMs = 0;
      let otherMs = 0;
      let faults = 0;
      for (const [tid, t] of after) {
        const d = t.ms - (before.get(tid)?.ms ?? 0);
        if (tid === main) {
          mainMs = d;
          faults = t.faults - (before.get(tid)?.faults ?? 0);
        } else otherMs += d;
      }
      console.log([r, (stats.decodeMs / n).toFixed(1), (mainMs / n).toFixed(1), (otherMs / n).toFixed(1), (faults / n).toFixed(0),
        ((waiter.turns - turns0) / n).toFixed(1), stats.submissions].join('  '));
    }
  } finally {
    model.dispose();
  }
}

main().catch((e) => {
  console.error(`decode-threads: ${(e as Error).message}`);
  process.exit(1);
});
