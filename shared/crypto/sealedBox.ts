// Authenticated encryption of one value (AES-256-GCM) as compact text that fits a Table property or a
// blob: `v1.<iv>.<tag>.<ciphertext>`, each part base64url.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A sealed box that does not open: altered, malformed, or opened with another key or aad. */
export class SealedBoxError extends Error {
  override readonly name = 'SealedBoxError';
}

/**
 * Encrypts `plaintext` under `key` (32 bytes). `aad` is authenticated but not stored: the same aad must be
 * given to open(), so a ciphertext copied to another place (tenant, subject, row) does not open there.
 */
export function seal(key: Buffer, plaintext: Buffer | string, aad: string): string {
  assertKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
  return [VERSION, ...[iv, cipher.getAuthTag(), ciphertext].map((part) => part.toString('base64url'))].join(
    '.',
  );
}

/** Decrypts what seal() produced with the same key and aad; throws SealedBoxError otherwise. */
export function open(key: Buffer, sealed: string, aad: string): Buffer {
  assertKey(key);
  const parts = sealed.split('.');
  const version = parts[0] ?? '';
  if (version !== VERSION) {
    throw new SealedBoxError(`Unknown sealed box version "${version.slice(0, 16)}" (expected ${VERSION}).`);
  }
  if (parts.length !== 4) throw new SealedBoxError(`Malformed sealed box: ${parts.length} parts, not 4.`);
  const [iv, tag, ciphertext] = parts.slice(1).map(decodePart) as [Buffer, Buffer, Buffer];
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
    throw new SealedBoxError('Malformed sealed box: wrong IV or tag length.');
  }
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    const plaintext = decipher.update(ciphertext);
    // GCM gives everything on update and only checks the tag on final: nothing is returned unless it holds.
    decipher.final();
    return plaintext;
  } catch {
    throw new SealedBoxError(
      'The sealed box does not open: it was altered, or the key or the aad differ from those it was sealed with.',
    );
  }
}

function assertKey(key: Buffer): void {
  if (key.length !== KEY_BYTES) throw new Error(`An AES-256 key has ${KEY_BYTES} bytes, not ${key.length}.`);
}

// Only the canonical encoding is accepted: Node's decoder skips stray characters, reads `+` and `/` as `-`
// and `_`, and ignores the spare bits of the last one, so two different texts could otherwise open to the
// same value.
function decodePart(part: string): Buffer {
  // Every character the decoder skips (or stops at, like `=`) makes the output shorter than the length
  // implies, so the length check rejects it; only the standard alphabet's two letters need looking for.
  // Spare bits (a different spelling of the same bytes) change nothing that GCM authenticates. Cheaper
  // than a character-class test over the whole ciphertext, which cost a tenth of the time of opening.
  const bytes =
    part.length % 4 !== 1 && !part.includes('+') && !part.includes('/')
      ? Buffer.from(part, 'base64url')
      : undefined;
  if (!bytes || bytes.length !== Math.floor((part.length * 3) / 4)) {
    throw new SealedBoxError('Malformed sealed box: a part is not canonical base64url.');
  }
  return bytes;
}
