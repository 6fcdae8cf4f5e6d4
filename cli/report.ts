import { CommanderError } from 'commander';
import { isLscError } from '../compiler/errors.js';

/**
 * Turns anything thrown by a command into output and an exit code: usage and user errors are one
 * line and exit 2; anything else is a bug in lsc and prints its stack (exit 1).
 */
export function report(e: unknown, command: string): number {
  if (e instanceof CommanderError) {
    // --help and --version end with a CommanderError too
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
    if (e.code === 'commander.help') return 2; // usage already printed (lsc with no command)
    const msg = e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim();
    process.stderr.write(`lsc: error: ${msg} (see: ${command} --help)\n`);
    return 2;
  }
  if (isLscError(e)) {
    process.stderr.write(`lsc: error: ${e.format()}\n`);
    return 2;
  }
  const stack = e instanceof Error ? e.stack ?? e.message : String(e);
  process.stderr.write(`lsc: internal error (a bug in lsc; please report it):\n${stack}\n`);
  return 1;
}
