// Deterministic ids: the same inputs always give the same UUID-shaped id, so a retried step writes the
// same audit event or record instead of a second one.
import { createHash, randomUUID } from 'node:crypto';

export function deterministicId(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  // Shaped as a version-5-like UUID so it reads like every other id in the API.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * A row key that sorts newest first: 13 digits of inverted milliseconds, then 8 random hex digits
 * (`8204362986919-891f0045`). Residency moves and operator access requests are keyed so.
 */
export function newestFirstKey(now: Date, random: string = randomUUID()): string {
  return `${String(9_999_999_999_999 - now.getTime()).padStart(13, '0')}-${random.replaceAll('-', '').slice(0, 8)}`;
}

/** What newestFirstKey makes. */
export const NEWEST_FIRST_KEY = /^[0-9]{13}-[0-9a-f]{8}$/;
