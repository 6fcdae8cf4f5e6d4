import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { formatBytes } from '../../compiler/summary.js';
import { downloadModel, type DownloadResult } from '../../runtime/hf-download.js';
import { plural } from '../../compiler/plural.js';

interface Opts { revision?: string; json?: boolean }

const rate = (bytes: number, ms: number): string => `${formatBytes(ms > 0 ? (bytes * 1000) / ms : 0, false)}/s`;

function summary(r: DownloadResult): string {
  const cached = r.files.filter((f) => f.cached).length;
  const resumed = r.files.filter((f) => f.resumedFrom > 0).length;
  const total = r.files.reduce((a, f) => a + f.bytes, 0);
  const notes = [cached ? `${cached} already cached` : '', resumed ? `${resumed} resumed` : ''].filter(Boolean).join(', ');
  return `lsc: ${r.repo}@${r.revision} (commit ${r.commit.slice(0, 12)}): ${plural(r.files.length, 'file')}, ${formatBytes(total, false)}` +
    `${notes ? ` (${notes})` : ''}; fetched ${formatBytes(r.fetchedBytes, false)} in ${(r.ms / 1000).toFixed(1)} s (${rate(r.fetchedBytes, r.ms)})\n`;
}

export function registerDownload(program: Command): void {
  program.command('download')
    .argument('<model>', 'Hugging Face model id: org/name or org/name@revision')
    .description('download the files lsc needs from the Hugging Face hub into its cache ($HF_HOME/hub); then use the id as --model')
    .option('--revision <rev>', 'branch, tag or commit (default: main)')
    .option('--json', 'print {repo, revision, commit, dir, files, fetchedBytes, ms} as JSON')
    .addHelpText('after', '\nEnvironment: HF_TOKEN (gated or private repositories), HF_ENDPOINT (default: https://huggingface.co),\n' +
      'HF_HUB_CACHE / HF_HOME (the cache). An interrupted download resumes when run again. Prints the snapshot directory.')
    .action(async (model: string, o: Opts) => {
      let bar: cliProgress.SingleBar | undefined;
      let fetchedFrom = 0;
      let t0 = performance.now();
      const tty = !o.json && process.stderr.isTTY === true;
      try {
        const r = await downloadModel(model, {
          revision: o.revision,
          onStart: tty ? (files, total, present) => {
            fetchedFrom = present;
            t0 = performance.now();
            bar = new cliProgress.SingleBar({
              stream: process.stderr, clearOnComplete: true, hideCursor: true, etaBuffer: 50, fps: 5,
              format: 'downloading [{bar}] {percentage}% {done} of {size} · {rate} · ETA {eta_formatted} · {file}',
            }, cliProgress.Presets.shades_classic);
            bar.start(total, present, { done: formatBytes(present, false), size: formatBytes(total, false), rate: rate(0, 0), file: files[0]?.name ?? '' });
          } : undefined,
          onProgress: tty ? (done, file) => {
            bar?.update(done, { done: formatBytes(done, false), rate: rate(Math.max(0, done - fetchedFrom), performance.now() - t0), file });
          } : undefined,
        });
        bar?.stop();
        bar = undefined;
        if (o.json) {
          process.stdout.write(JSON.stringify(r, null, 2) + '\n');
          return;
        }
        process.stderr.write(summary(r));
        process.stdout.write(`${r.dir}\n`);
      } finally {
        bar?.stop();
      }
    });
}
