// Streaming authenticated encryption of export packages: AES-256-GCM segments in the STREAM construction
// (Hoang, Reyhanitabar, Rogaway, Vizár 2015), so a package of any size is sealed and opened one segment at a time.
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Plaintext bytes in every segment but the last, which holds 0 to SEGMENT_BYTES. */
export const SEGMENT_BYTES = 64 * 1024;

const MAGIC = Buffer.from('PDSPKG01', 'ascii');
const NONCE_PREFIX_BYTES = 7;
const HEADER_BYTES = MAGIC.length + NONCE_PREFIX_BYTES + 4;
const KEY_BYTES = 32;
const TAG_BYTES = 16;
const ENCRYPTED_SEGMENT_BYTES = SEGMENT_BYTES + TAG_BYTES;
/** The segment index is a uint32 in the nonce; past it nonces would repeat. */
const MAX_SEGMENT_INDEX = 0xffff_ffff;

/** An encrypted package that does not open: not a package, altered, truncated, extended, or another key or context. */
export class PackageCipherError extends Error {
  override readonly name = 'PackageCipherError';
}

/** Bytes that encrypting `plainBytes` of package produces (header, then one tag per segment). */
export function encryptedSize(plainBytes: number): number {
  if (!Number.isSafeInteger(plainBytes) || plainBytes < 0) {
    throw new RangeError(`A package size is a whole number of bytes, not ${plainBytes}.`);
  }
  const segments = Math.max(1, Math.ceil(plainBytes / SEGMENT_BYTES));
  return HEADER_BYTES + plainBytes + segments * TAG_BYTES;
}

/**
 * Encrypts a package as it streams through. `context` (e.g. `tenantId|requestId|blobName`) is authenticated
 * but not stored: the decryptor needs the same one, so a package copied elsewhere does not open there.
 */
export function createPackageEncryptor(key: Buffer, context: string): Transform {
  return new PackageEncryptor(secretKey(key), context);
}

/**
 * Decrypts what createPackageEncryptor produced with the same key and context. A segment's plaintext is
 * emitted only once its tag holds; any refusal fails the stream with PackageCipherError.
 */
export function createPackageDecryptor(key: Buffer, context: string): Transform {
  return new PackageDecryptor(secretKey(key), context);
}

class PackageEncryptor extends Transform {
  private readonly pending = new ByteQueue();
  private readonly header: Buffer;
  private readonly aad: Buffer;
  private headerSent = false;
  private index = 0;

  constructor(
    private readonly key: KeyObject,
    context: string,
  ) {
    super();
    const segmentSize = Buffer.alloc(4);
    segmentSize.writeUInt32BE(SEGMENT_BYTES);
    this.header = Buffer.concat([MAGIC, randomBytes(NONCE_PREFIX_BYTES), segmentSize]);
    this.aad = Buffer.concat([this.header, Buffer.from(context, 'utf8')]);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.pending.append(chunk);
      // A full segment is sealed as not-last only once a byte beyond it shows that more follows.
      while (this.pending.length > SEGMENT_BYTES) this.seal(this.pending.take(SEGMENT_BYTES), false);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      // Always present, even empty: without it a truncated package would look complete.
      this.seal(this.pending.take(this.pending.length), true);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private seal(plaintext: Buffer, last: boolean): void {
    if (this.index > MAX_SEGMENT_INDEX) throw new Error('The package is too large to encrypt.');
    if (!this.headerSent) {
      this.push(this.header);
      this.headerSent = true;
    }
    const cipher = createCipheriv('aes-256-gcm', this.key, segmentNonce(this.header, this.index, last), {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(this.aad);
    this.push(cipher.update(plaintext));
    cipher.final();
    this.push(cipher.getAuthTag());
    this.index++;
  }
}

class PackageDecryptor extends Transform {
  private readonly pending = new ByteQueue();
  private header?: Buffer;
  private aad?: Buffer;
  private index = 0;

  constructor(
    private readonly key: KeyObject,
    private readonly context: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.pending.append(chunk);
      if (!this.header && this.pending.length >= HEADER_BYTES)
        this.readHeader(this.pending.take(HEADER_BYTES));
      // Which segment is last is known only at the end of input: one full segment is always held back.
      if (this.header) {
        while (this.pending.length > ENCRYPTED_SEGMENT_BYTES) {
          this.open(this.pending.take(ENCRYPTED_SEGMENT_BYTES), false);
        }
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (!this.header) throw new PackageCipherError('The package ends inside its header.');
      if (this.pending.length < TAG_BYTES) {
        throw new PackageCipherError('The package is truncated: it ends without its final segment.');
      }
      this.open(this.pending.take(this.pending.length), true);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private readHeader(header: Buffer): void {
    if (!header.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new PackageCipherError('This is not an encrypted package (unknown format marker).');
    }
    const segmentSize = header.readUInt32BE(MAGIC.length + NONCE_PREFIX_BYTES);
    if (segmentSize !== SEGMENT_BYTES) {
      throw new PackageCipherError(
        `The package declares segments of ${segmentSize} bytes, not ${SEGMENT_BYTES}.`,
      );
    }
    // A copy: the header may be a slice of a large input chunk, which it would otherwise keep alive.
    this.header = Buffer.from(header);
    this.aad = Buffer.concat([header, Buffer.from(this.context, 'utf8')]);
  }

  private open(segment: Buffer, last: boolean): void {
    if (this.index > MAX_SEGMENT_INDEX) throw new PackageCipherError('The package has too many segments.');
    const decipher = createDecipheriv('aes-256-gcm', this.key, segmentNonce(this.header!, this.index, last), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(this.aad!);
    decipher.setAuthTag(segment.subarray(segment.length - TAG_BYTES));
    let plaintext: Buffer;
    try {
      plaintext = decipher.update(segment.subarray(0, segment.length - TAG_BYTES));
      // GCM hands out plaintext on update and checks the tag only on final: nothing is pushed before it holds.
      decipher.final();
    } catch {
      throw new PackageCipherError(
        `Segment ${this.index} of the package does not open: the package was altered, reordered, truncated or ` +
          'extended, or the key or context differ from those it was encrypted with.',
      );
    }
    this.index++;
    this.push(plaintext);
  }
}

/** nonce = prefix (7 bytes) || segment index (uint32 BE) || 0x01 for the last segment, else 0x00. */
function segmentNonce(header: Buffer, index: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(NONCE_PREFIX_BYTES + 5);
  header.copy(nonce, 0, MAGIC.length, MAGIC.length + NONCE_PREFIX_BYTES);
  nonce.writeUInt32BE(index, NONCE_PREFIX_BYTES);
  nonce[NONCE_PREFIX_BYTES + 4] = last ? 1 : 0;
  return nonce;
}

function secretKey(key: Buffer): KeyObject {
  if (key.length !== KEY_BYTES) throw new Error(`A package key has ${KEY_BYTES} bytes, not ${key.length}.`);
  return createSecretKey(key);
}

/**
 * Input chunks as they came, so that taking a segment copies its bytes once however the input was cut
 * (concatenating on every chunk would copy the held bytes again for each one-byte write).
 */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  append(chunk: Buffer | Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
    );
    this.length += chunk.length;
  }

  /** Removes and returns the first `bytes` bytes (at most `length`). */
  take(bytes: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length === bytes) {
      this.chunks.shift();
      this.length -= bytes;
      return first;
    }
    const pieces: Buffer[] = [];
    let collected = 0;
    let used = 0;
    while (collected < bytes) {
      const chunk = this.chunks[used]!;
      const wanted = bytes - collected;
      if (chunk.length <= wanted) {
        pieces.push(chunk);
        collected += chunk.length;
        used++;
      } else {
        pieces.push(chunk.subarray(0, wanted));
        this.chunks[used] = chunk.subarray(wanted);
        collected = bytes;
      }
    }
    // One splice per segment, not one shift per chunk: a segment of one-byte chunks is 65 552 of them.
    this.chunks.splice(0, used);
    this.length -= bytes;
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, bytes);
  }
}
