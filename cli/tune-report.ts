import cliProgress from 'cli-progress';
import type { TuneEvent, TuneResult } from '../runtime/tuner.js';
import { plural } from '../compiler/plural.js';
import { FAMILIES } from '../codegen/registry.js';

/**
 * What `lsc tune` shows while it runs and when it ends: a progress bar on a TTY, log lines
 * otherwise (never silent for more than LOG_EVERY_MS while measuring, even inside one slow
 * measurement), then a summary table.
 */
const LOG_EVERY_MS = 5000;

/** A short name for a kernel shape key ("attention:4x4x32" -> "attention 4x4x32"; families may name their keys, see codegen/family.ts). */
export function shapeLabel(key: string): string {
  const at = key.indexOf(':');
  const family = FAMILIES.find((f) => f.name === key.slice(0, at));
  return family?.describeKey?.(key) ?? `${key.slice(0, at)} ${key.slice(at + 1)}`;
}

const cfgText = (c: Record<string, number>): string => Object.entries(c).map(([k, v]) => `${k}=${v}`).join(' ');

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export interface TuneReporter {
  status(line: string): void;
  event(e: TuneEvent): void;
  /** Ends the bar (cursor restored); safe to call twice. */
  stop(): void;
}

export function tuneReporter(tty: boolean, write: (s: string) => void = (s) => process.stderr.write(s)): TuneReporter {
  let bar: cliProgress.SingleBar | undefined;
  let started = 0;
  let lastLog = 0;
  let current = ''; // what is in flight ("loading X", "measuring shape config"), for the heartbeat
  let since = 0;
  // loading, or a first compile of a kernel (tens of seconds on a CPU driver): say so rather than go quiet
  const heartbeat = setInterval(() => {
    if (!bar && current && Date.now() - lastLog >= LOG_EVERY_MS) log(`still ${current} (${duration(Date.now() - since)})`);
  }, 1000);
  heartbeat.unref();
  const doing = (what: string): void => { current = what; since = Date.now(); };
  const log = (line: string): void => { lastLog = Date.now(); write(`lsc: ${line}\n`); };
  const eta = (done: number, total: number): string => (done ? duration(((Date.now() - started) / done) * (total - done)) : '?');
  return {
    status: (line) => { log(line); doing(line); },
    event(e) {
      if (e.type === 'plan') {
        started = Date.now();
        current = '';
        log(`tuning ${plural(e.total, 'configuration')} of ${plural(e.shapes, 'kernel shape')}`
          + (e.skipped ? `; ${e.skipped} already in the database, skipped` : ''));
        if (tty && e.total) {
          bar = new cliProgress.SingleBar({
            stream: process.stderr, hideCursor: true, clearOnComplete: true,
            format: 'tuning [{bar}] {value}/{total} ETA {left}  {shape}  {config}',
          }, cliProgress.Presets.shades_classic);
          bar.start(e.total, 0, { shape: '', config: '', left: '?' });
        }
      } else if (e.type === 'measure') {
        doing(`measuring ${shapeLabel(e.key)}  ${cfgText(e.config)}`);
        bar?.update(e.done, { shape: shapeLabel(e.key), config: cfgText(e.config), left: eta(e.done, e.total) });
      } else if (e.type === 'measured') {
        current = '';
        if (bar) bar.update(e.done, { left: eta(e.done, e.total) });
        else if (Date.now() - lastLog >= LOG_EVERY_MS) {
          log(`[${e.done}/${e.total}] ${shapeLabel(e.key)}  ${cfgText(e.config)}: ${Number.isFinite(e.ms) ? e.ms.toFixed(3) + ' ms' : 'failed'}  (ETA ${eta(e.done, e.total)})`);
        }
      } else {
        current = '';
        if (bar) return;
        const r = e.result;
        log(`done ${shapeLabel(r.key)}: ${ms(r.defaultMs)} → ${ms(r.bestMs)} ms (${r.tried} tried, ${r.skipped} skipped${r.untried ? `, ${r.untried} left by the budget` : ''})`);
      }
    },
    stop() { bar?.stop(); bar = undefined; clearInterval(heartbeat); },
  };
}

const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '-');

/** Per kernel shape: default → best time (ms), speedup, best configuration, counts. */
export function summaryTable(results: TuneResult[]): string {
  const head = ['kernel shape', 'default ms', 'best ms', 'speedup', 'tried', 'skipped', 'untried', 'best config'];
  const rows = results.map((r) => [
    shapeLabel(r.key), ms(r.defaultMs), ms(r.bestMs),
    Number.isFinite(r.defaultMs) && Number.isFinite(r.bestMs) ? `×${(r.defaultMs / r.bestMs).toFixed(2)}` : '-',
    String(r.tried), String(r.skipped), String(r.untried), Number.isFinite(r.bestMs) ? cfgText(r.best) : '-',
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const numeric = new Set([1, 2, 3, 4, 5, 6]);
  const line = (cells: string[]): string => cells.map((c, i) => (numeric.has(i) ? c.padStart(width[i]) : c.padEnd(width[i]))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
