/**
 * The hint `lsc` prints after loading a large model on a CPU adapter while shmem huge pages are
 * off. lavapipe keeps "GPU" buffers in shmem (memfd), so writing the weights first-touches every
 * 4 KiB page of them, and on a VM each fault is costly: with
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled at `within_size` (2 MiB pages) the upload
 * runs ~1.5-2x faster (BENCHMARKS.md "Loading speed"). It is a machine-wide setting (no
 * per-process or per-mapping way: the driver owns the mappings), so lsc only says so;
 * scripts/setup.sh sets it where it may.
 */
import fs from 'node:fs';

export const SHMEM_ENABLED_FILE = '/sys/kernel/mm/transparent_hugepage/shmem_enabled';

/** Below this many bytes of weights the faults cost well under a second: no hint. */
export const HINT_MIN_BYTES = 256 << 20;

/** The selected value of a shmem_enabled file ("always within_size advise [never] deny force" → "never"), or undefined. */
export function selectedShmemSetting(text: string): string | undefined {
  return /\[([a-z_]+)\]/.exec(text)?.[1];
}

/**
 * The one-line hint, or undefined when it does not apply: a real GPU, small weights, huge pages
 * already allowed, or no such file (not Linux, no THP).
 */
export function hugePageHint(isCpu: boolean, weightBytes: number, file: string = SHMEM_ENABLED_FILE): string | undefined {
  if (!isCpu || weightBytes < HINT_MIN_BYTES) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  if (selectedShmemSetting(text) !== 'never') return undefined;
  return `hint: the CPU driver's buffers are shmem and ${file} is 'never' (4 KiB pages): `
    + `\`echo within_size | sudo tee ${file}\` (or scripts/setup.sh) made loading ~1.5-2x faster on the machine lsc was measured on`;
}
