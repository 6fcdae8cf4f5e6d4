import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TuningChoices } from '../compiler/passes/schedule.js';
import { TUNABLE_FAMILIES } from '../codegen/registry.js';
import type { GpuContext } from './device.js';

/**
 * Tuning records, Triton-style: every configuration tried is stored with its time (failed ones
 * as null), as JSON lines keyed by adapter and kernel shape. Decisions are the fastest record
 * per key. The user's database (~/.cache/lsc/tuning.jsonl, or $LSC_TUNING_DB) is read first;
 * records shipped in the repository's tuning/ directory fill in for adapters tuned by us.
 */
export interface TuningRecord {
  adapter: string;
  key: string;
  /** Kernel family (codegen/registry.ts). */
  family: string;
  config: Record<string, number>;
  /** Score: milliseconds per dispatch summed over the tuned row counts; null when it failed. */
  ms: number | null;
  rows: number[];
  date: string;
}

export function userDbPath(): string {
  return process.env.LSC_TUNING_DB ?? path.join(os.homedir(), '.cache', 'lsc', 'tuning.jsonl');
}

const shippedDir = fileURLToPath(new URL('../../tuning/', import.meta.url));

/** Identifies an adapter and driver: records from one never apply to another. */
export function adapterKey(gpu: Pick<GpuContext, 'adapterInfo'>): string {
  const i = gpu.adapterInfo;
  return [i.vendor, i.architecture, i.device, i.description].map((s) => s || '-').join('|');
}

/** A configuration as a string that does not depend on key order. */
export function configId(config: Record<string, number>): string {
  return JSON.stringify(Object.keys(config).sort().map((k) => [k, config[k]]));
}

/** What a measurement is of: records with the same id (on one adapter) need not be measured again. */
export function recordId(key: string, config: Record<string, number>, rows: number[]): string {
  return `${key}\n${configId(config)}\n${rows.join(',')}`;
}

/** Records of one adapter in one database, by recordId (the later wins): what a rerun resumes from. */
export function recordedFor(adapter: string, file: string): Map<string, TuningRecord> {
  const out = new Map<string, TuningRecord>();
  for (const r of readRecords(file)) if (r.adapter === adapter && Array.isArray(r.rows)) out.set(recordId(r.key, r.config, r.rows), r);
  return out;
}

function readRecords(file: string): TuningRecord[] {
  if (!fs.existsSync(file)) return [];
  const out: TuningRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as TuningRecord;
      if (r && typeof r.key === 'string' && typeof r.adapter === 'string' && r.config) out.push(r);
    } catch {
      // a torn line from an interrupted run: skip it
    }
  }
  return out;
}

export function allRecords(): TuningRecord[] {
  const shipped = fs.existsSync(shippedDir)
    ? fs.readdirSync(shippedDir).filter((f) => f.endsWith('.jsonl')).flatMap((f) => readRecords(path.join(shippedDir, f)))
    : [];
  return [...readRecords(userDbPath()), ...shipped];
}

function endsMidLine(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    if (!size) return false;
    const last = Buffer.alloc(1);
    fs.readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } catch {
    return false; // no file yet
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Appends records, one JSON line each, in one write: a run killed between writes keeps whole lines. */
export function appendRecords(records: TuningRecord[], file = userDbPath()): void {
  if (!records.length) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // a line torn by a kill mid-write stays alone on its line (readers skip it) rather than spoiling this one
  const lead = endsMidLine(file) ? '\n' : '';
  fs.appendFileSync(file, lead + records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** The driver family of an adapter key ("mesa|llvmpipe"): shipped records apply across its versions. */
export function adapterFamily(adapter: string): string {
  const [vendor, arch] = adapter.split('|');
  return [vendor, (arch ?? '').split('-')[0]].join('|');
}

/**
 * Fastest configuration per kernel key: records of this exact adapter first, then records of
 * the same driver family (e.g. the lavapipe decisions shipped in tuning/, whatever the Mesa or LLVM version).
 */
export function decisions(adapter: string, records = allRecords()): Map<string, TuningRecord> {
  const pickBest = (match: (r: TuningRecord) => boolean): Map<string, TuningRecord> => {
    const best = new Map<string, TuningRecord>();
    for (const r of records) {
      if (!match(r) || r.ms === null) continue;
      const b = best.get(r.key);
      if (!b || r.ms < (b.ms ?? Infinity)) best.set(r.key, r);
    }
    return best;
  };
  const family = adapterFamily(adapter);
  const exact = pickBest((r) => r.adapter === adapter);
  for (const [key, r] of pickBest((r) => adapterFamily(r.adapter) === family)) if (!exact.has(key)) exact.set(key, r);
  return exact;
}

/** Tuned kernel decisions for this adapter; kernels never tuned keep the compiler's defaults. */
export function loadTuning(gpu: GpuContext): Partial<TuningChoices> | undefined {
  const best = decisions(adapterKey(gpu));
  if (!best.size) return undefined;
  const pick = (_k: unknown, key: string): Record<string, number> | undefined => best.get(key)?.config;
  return Object.fromEntries(TUNABLE_FAMILIES.map((f) => [f, pick]));
}
