import { LscError } from '../compiler/errors.js';
import fs from 'node:fs';

/**
 * The pieces of a SentencePiece tokenizer.model (a protobuf ModelProto): each piece's text,
 * score and type, which `lsc quantize` writes as tokenizer.ggml.* (llama.cpp's SPM tokenizer
 * merges by these scores). Only field 1 (repeated SentencePiece {1 piece, 2 score, 3 type}) is read.
 */
export interface SentencePiece { piece: string; score: number; type: number }

/** SentencePiece piece types: 1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte (as llama.cpp's token types). */
export function readSentencePieceModel(file: string): SentencePiece[] {
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) throw new LscError('tokenizer.model not found', { file });
  const buf = fs.readFileSync(file);
  const bad = (what: string): never => { throw new LscError(`tokenizer.model is not a SentencePiece model: ${what}`, { file }); };
  let pos = 0;
  const varint = (end: number): number => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= end || shift > 63) bad('truncated varint');
      const b = buf[pos++];
      v += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return v;
    }
  };
  // skips a field of wire type wt, returns [start, end) of a length-delimited one
  const field = (wt: number, end: number): [number, number] => {
    if (wt === 0) { varint(end); return [pos, pos]; }
    if (wt === 1) { pos += 8; return [pos - 8, pos]; }
    if (wt === 5) { pos += 4; return [pos - 4, pos]; }
    if (wt === 2) { const n = varint(end); pos += n; if (pos > end) bad('field past the end'); return [pos - n, pos]; }
    return bad(`wire type ${wt}`);
  };
  const pieces: SentencePiece[] = [];
  while (pos < buf.length) {
    const key = varint(buf.length);
    const [s, e] = field(key & 7, buf.length);
    if (key !== (1 << 3 | 2)) continue;
    const p: SentencePiece = { piece: '', score: 0, type: 1 };
    const outer = pos;
    pos = s;
    while (pos < e) {
      const k = varint(e);
      if (k === (1 << 3 | 2)) { const [a, b] = field(2, e); p.piece = buf.toString('utf8', a, b); }
      else if (k === (2 << 3 | 5)) { p.score = buf.readFloatLE(pos); pos += 4; }
      else if (k === (3 << 3 | 0)) p.type = varint(e);
      else field(k & 7, e);
    }
    pos = outer;
    pieces.push(p);
  }
  if (pieces.length === 0) bad('no pieces');
  return pieces;
}
