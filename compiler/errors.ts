/**
 * Errors a user can fix (bad graph, bad checkpoint, bad flag) are LscError: the CLI prints
 * them as one line and exits 2. Anything else is a bug in lsc and exits 1 with a stack.
 */
export interface ErrorWhere {
  /** File the problem is in. */
  file?: string;
  /** JSON pointer into that file (RFC 6901), e.g. "/blocks/decoder/nodes/3/in/0". */
  pointer?: string;
  /** Tensor name in a checkpoint. */
  tensor?: string;
}

export class LscError extends Error {
  readonly where: ErrorWhere;
  readonly hint?: string;
  constructor(message: string, where: ErrorWhere = {}, hint?: string) {
    super(message);
    this.name = 'LscError';
    this.where = where;
    this.hint = hint;
  }

  /** One line: what, where, and how to fix it. */
  format(): string {
    const at: string[] = [];
    if (this.where.file) at.push(this.where.file);
    if (this.where.pointer !== undefined) at.push(`#${this.where.pointer}`);
    if (this.where.tensor) at.push(`tensor '${this.where.tensor}'`);
    let line = this.message;
    // file and tensor names come from the user's files and may hold anything
    if (at.length) line += ` (at ${oneLine(at.join(' '))})`;
    if (this.hint) line += `. Fix: ${this.hint}`;
    return line;
  }
}

/**
 * Text from a user's file made fit for a one-line message: control characters escaped (a line
 * break as \n, others as \xNN). JSON.parse's errors, for one, quote the text around the
 * mistake, line breaks included.
 */
export function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16)}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
}

export function isLscError(e: unknown): e is LscError {
  return e instanceof LscError;
}

/** Escapes one JSON-pointer token. */
export function pointerToken(s: string | number): string {
  return String(s).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(...tokens: (string | number)[]): string {
  return tokens.map((t) => '/' + pointerToken(t)).join('');
}
