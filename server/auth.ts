import crypto from 'node:crypto';
import { ApiError } from './api-error.js';

/**
 * `Authorization: Bearer KEY` against the server's key. Both sides are hashed first so the
 * compare (crypto.timingSafeEqual) runs on equal lengths and its time says nothing about the key.
 */
export function checkAuth(header: string | undefined, key: string | undefined): void {
  if (key === undefined) return;
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  const digest = (s: string): Buffer => crypto.createHash('sha256').update(s).digest();
  if (!m || !crypto.timingSafeEqual(digest(m[1].trim()), digest(key))) {
    throw new ApiError(401, m ? 'incorrect API key' : 'missing API key: send Authorization: Bearer KEY', 'authentication_error', null, 'invalid_api_key');
  }
}
