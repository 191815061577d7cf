// Deterministic ids: the same inputs always give the same UUID-shaped id, so a retried step writes the
// same audit event or record instead of a second one.
import { createHash } from 'node:crypto';

export function deterministicId(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  // Shaped as a version-5-like UUID so it reads like every other id in the API.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
