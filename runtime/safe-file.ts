/**
 * Opening a model directory's files safely. Every file lsc reads from a model directory must be
 * a regular file (or a symlink to one, as in the Hugging Face cache): opening a FIFO blocks until
 * a writer appears (a load that hangs forever), reading a directory fails with EISDIR, and a
 * character device like /dev/zero never ends. So the path is stat-ed first, opened with
 * O_NONBLOCK (a FIFO swapped in after the stat cannot block the open), and fstat-ed again.
 */
import fs from 'node:fs';
import { LscError } from '../compiler/errors.js';

/** "a directory", "a FIFO (named pipe)", ...: what a non-regular file is, for messages. */
function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

function notRegular(file: string, what: string, st: fs.Stats): LscError {
  let viaLink = false;
  try {
    viaLink = fs.lstatSync(file).isSymbolicLink();
  } catch { /* gone meanwhile: say what stat saw */ }
  const kind = kindOf(st);
  const text = kind === 'not a regular file' ? kind : `${viaLink ? 'a symlink to ' : ''}${kind}, not a regular file`;
  return new LscError(`${what} is ${text}`, { file }, `replace it with the real file (a regular file, or a symlink to one)`);
}

export interface OpenOptions {
  /** How a missing file is reported (default: "<what> not found"). */
  missing?: string;
  /** Fix for a file that is missing or cannot be opened or read. */
  hint?: string;
}

/**
 * Opens `file` for reading when it is a regular file (symlinks followed); otherwise an LscError
 * naming the file and what it is. `what` names the file in messages ("config.json", "shard").
 */
export function openRegularFile(file: string, what: string, opts: OpenOptions = {}): number {
  const fail = (e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LscError(opts.missing ?? `${what} not found`, { file }, opts.hint);
    throw new LscError(`cannot open ${what}: ${code ?? (e as Error).message}`, { file }, opts.hint);
  };
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    return fail(e);
  }
  if (!st.isFile()) throw notRegular(file, what, st);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    return fail(e);
  }
  const after = fs.fstatSync(fd);
  if (!after.isFile()) {
    fs.closeSync(fd);
    throw notRegular(file, what, after);
  }
  return fd;
}

/** The whole text (UTF-8) of a regular file; see openRegularFile. */
export function readRegularFile(file: string, what: string, opts: OpenOptions = {}): string {
  const fd = openRegularFile(file, what, opts);
  try {
    return fs.readFileSync(fd, 'utf8');
  } catch (e) {
    throw new LscError(`cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file }, opts.hint);
  } finally {
    fs.closeSync(fd);
  }
}
