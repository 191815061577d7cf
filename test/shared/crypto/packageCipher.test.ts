import { createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import fc from 'fast-check';

import {
  createPackageDecryptor,
  createPackageEncryptor,
  encryptedSize,
  PackageCipherError,
  SEGMENT_BYTES,
} from '../../../shared/crypto/packageCipher';

const key = randomBytes(32);
const context = 'c0ffee00-0000-4000-8000-000000000001|req-7|packages/req-7.zip';
const HEADER_BYTES = 19;
const TAG_BYTES = 16;
const ENCRYPTED_SEGMENT_BYTES = SEGMENT_BYTES + TAG_BYTES;

/** Runs `input` through `transform` in real streams and returns everything it produced. */
async function run(transform: Transform, input: Buffer[]): Promise<Buffer> {
  const output: Buffer[] = [];
  await pipeline(Readable.from(input), transform, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) output.push(chunk);
  });
  return Buffer.concat(output);
}

const encrypt = (plaintext: Buffer, chunks: Buffer[] = [plaintext]) =>
  run(createPackageEncryptor(key, context), chunks);

const decrypt = (ciphertext: Buffer, options: { key?: Buffer; context?: string; chunks?: Buffer[] } = {}) =>
  run(createPackageDecryptor(options.key ?? key, options.context ?? context), options.chunks ?? [ciphertext]);

/**
 * Compares bytes by length and SHA-256: jest's toEqual walks a Buffer element by element, which takes
 * minutes on megabytes.
 */
const fingerprint = (bytes: Buffer) =>
  `${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}`;

/** Cuts `bytes` into chunks whose sizes cycle through `sizes`. */
function rechunk(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** Offset of segment `index` in an encrypted package (every segment before it is full). */
const segmentStart = (index: number) => HEADER_BYTES + index * ENCRYPTED_SEGMENT_BYTES;

/** Feeds `ciphertext` to a decryptor and collects what it emits until it ends or fails. */
async function decryptCollecting(ciphertext: Buffer): Promise<{ emitted: Buffer; error?: unknown }> {
  const decryptor = createPackageDecryptor(key, context);
  const emitted: Buffer[] = [];
  // Flowing mode: a push reaches the listener at once, so plaintext emitted before a failure is seen here
  // rather than dropped with the destroyed stream's buffer.
  decryptor.on('data', (chunk: Buffer) => emitted.push(chunk));
  const outcome = new Promise<unknown>((resolve) => {
    decryptor.once('error', resolve);
    decryptor.once('end', () => resolve(undefined));
  });
  decryptor.end(ciphertext);
  const error = await outcome;
  return { emitted: Buffer.concat(emitted), ...(error === undefined ? {} : { error }) };
}

/** Chunk sizes from one byte to three segments, so chunk edges fall anywhere relative to segment edges. */
const chunkSizes = fc.array(
  fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 3 * ENCRYPTED_SEGMENT_BYTES })),
  { minLength: 1, maxLength: 12 },
);

/** Package sizes up to five segments, half of them within a few bytes of a segment boundary. */
const packageSize = fc.oneof(
  fc.integer({ min: 0, max: 5 * SEGMENT_BYTES }),
  fc
    .tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: -2, max: 2 }))
    .map(([segments, offset]) => Math.max(0, segments * SEGMENT_BYTES + offset)),
);

describe('packageCipher round trip', () => {
  it.each([
    ['an empty package', 0],
    ['one byte', 1],
    ['one byte short of a segment', SEGMENT_BYTES - 1],
    ['exactly one segment', SEGMENT_BYTES],
    ['one byte over a segment', SEGMENT_BYTES + 1],
    ['three and a half segments', 3.5 * SEGMENT_BYTES],
  ])('gives back %s (%i bytes) and produces encryptedSize() bytes', async (_name, size) => {
    const plaintext = randomBytes(size);

    const ciphertext = await encrypt(plaintext);

    expect(ciphertext.length).toBe(encryptedSize(size));
    expect(fingerprint(await decrypt(ciphertext))).toBe(fingerprint(plaintext));
  });

  it('gives back the same bytes for any size and any chunking of plaintext and ciphertext', async () => {
    await fc.assert(
      fc.asyncProperty(packageSize, chunkSizes, chunkSizes, async (size, plainChunks, cipherChunks) => {
        const plaintext = randomBytes(size);

        const ciphertext = await encrypt(plaintext, rechunk(plaintext, plainChunks));

        expect(ciphertext.length).toBe(encryptedSize(size));
        expect(fingerprint(await decrypt(ciphertext, { chunks: rechunk(ciphertext, cipherChunks) }))).toBe(
          fingerprint(plaintext),
        );
      }),
      { numRuns: 100 },
    );
  });

  it('accepts plaintext and ciphertext written one byte at a time', async () => {
    const plaintext = randomBytes(2 * SEGMENT_BYTES + 100);

    const ciphertext = await encrypt(plaintext, rechunk(plaintext, [1]));

    expect(fingerprint(await decrypt(ciphertext, { chunks: rechunk(ciphertext, [1]) }))).toBe(
      fingerprint(plaintext),
    );
  });

  it('lays out header and segments as documented, so another implementation can open a package', async () => {
    const plaintext = randomBytes(SEGMENT_BYTES + 10);
    const ciphertext = await encrypt(plaintext);

    const header = ciphertext.subarray(0, HEADER_BYTES);
    expect(header.subarray(0, 8).toString('ascii')).toBe('PDSPKG01');
    expect(header.readUInt32BE(15)).toBe(65536);
    const aad = Buffer.concat([header, Buffer.from(context, 'utf8')]);
    const openSegment = (start: number, end: number, index: number, lastFlag: number) => {
      const nonce = Buffer.alloc(12);
      header.copy(nonce, 0, 8, 15);
      nonce.writeUInt32BE(index, 7);
      nonce[11] = lastFlag;
      const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
      decipher.setAAD(aad);
      decipher.setAuthTag(ciphertext.subarray(end - TAG_BYTES, end));
      return Buffer.concat([decipher.update(ciphertext.subarray(start, end - TAG_BYTES)), decipher.final()]);
    };
    expect(fingerprint(openSegment(segmentStart(0), segmentStart(1), 0, 0x00))).toBe(
      fingerprint(plaintext.subarray(0, SEGMENT_BYTES)),
    );
    expect(fingerprint(openSegment(segmentStart(1), ciphertext.length, 1, 0x01))).toBe(
      fingerprint(plaintext.subarray(SEGMENT_BYTES)),
    );
  });

  it('never produces the same ciphertext twice for the same package', async () => {
    const plaintext = Buffer.from('PK\u0003\u0004 same package');
    const first = await encrypt(plaintext);
    const second = await encrypt(plaintext);

    expect(first.subarray(8, 15)).not.toEqual(second.subarray(8, 15));
    expect(first.subarray(HEADER_BYTES)).not.toEqual(second.subarray(HEADER_BYTES));
  });

  it('streams: the first plaintext of an 8 MB package comes out before its last ciphertext goes in', async () => {
    const plaintext = randomBytes(8 * 1024 * 1024);
    const ciphertext = await encrypt(plaintext);
    const chunks = rechunk(ciphertext, [SEGMENT_BYTES]);
    let written = 0;
    let writtenAtFirstOutput: number | undefined;
    const output: Buffer[] = [];

    await pipeline(
      Readable.from(
        (function* () {
          for (const chunk of chunks) {
            written++;
            yield chunk;
          }
        })(),
      ),
      createPackageDecryptor(key, context),
      async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) {
          writtenAtFirstOutput ??= written;
          output.push(chunk);
        }
      },
    );

    expect(fingerprint(Buffer.concat(output))).toBe(fingerprint(plaintext));
    expect(writtenAtFirstOutput).toBeDefined();
    expect(writtenAtFirstOutput!).toBeLessThan(chunks.length / 2);
  });
});

describe('packageCipher refusals', () => {
  /** 2.5 segments: two full segments and a half-full final one. */
  const plaintext = randomBytes(2.5 * SEGMENT_BYTES);
  let ciphertext: Buffer;
  beforeAll(async () => {
    ciphertext = await encrypt(plaintext);
  });

  const refused = (promise: Promise<unknown>) => expect(promise).rejects.toBeInstanceOf(PackageCipherError);

  it('refuses a package with any one bit flipped: header, segment body or tag', async () => {
    const tags = [0, 1, 2].map((index) =>
      index < 2 ? segmentStart(index) + SEGMENT_BYTES : ciphertext.length - TAG_BYTES,
    );
    const position = fc.oneof(
      fc.integer({ min: 0, max: HEADER_BYTES - 1 }),
      fc.integer({ min: HEADER_BYTES, max: ciphertext.length - 1 }),
      fc
        .tuple(fc.constantFrom(...tags), fc.integer({ min: 0, max: TAG_BYTES - 1 }))
        .map(([tag, at]) => tag + at),
    );
    await fc.assert(
      fc.asyncProperty(position, fc.integer({ min: 0, max: 7 }), async (at, bit) => {
        const tampered = Buffer.from(ciphertext);
        tampered[at] = tampered[at]! ^ (1 << bit);
        await refused(decrypt(tampered));
      }),
      {
        numRuns: 80,
        // The magic, the nonce prefix, the segment size, and the first and last bytes of a segment and a tag.
        examples: [
          [0, 0],
          [8, 0],
          [17, 0],
          [HEADER_BYTES, 0],
          [tags[0]!, 7],
          [ciphertext.length - 1, 0],
        ],
      },
    );
  });

  it('refuses a package cut at every segment boundary, inside a segment, inside a tag and inside the header', async () => {
    const cuts = [
      0,
      1,
      HEADER_BYTES - 1,
      segmentStart(0),
      segmentStart(0) + 1,
      segmentStart(0) + TAG_BYTES,
      segmentStart(1) - 1,
      segmentStart(1),
      segmentStart(1) + SEGMENT_BYTES / 2,
      segmentStart(2) - TAG_BYTES / 2,
      segmentStart(2),
      segmentStart(2) + TAG_BYTES,
      ciphertext.length - 1,
    ];
    for (const length of cuts) await refused(decrypt(ciphertext.subarray(0, length)));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: ciphertext.length - 1 }), async (length) => {
        await refused(decrypt(ciphertext.subarray(0, length)));
      }),
      { numRuns: 40 },
    );
  });

  it('refuses a package cut right after a full segment when the package is a whole number of segments', async () => {
    const whole = await encrypt(randomBytes(2 * SEGMENT_BYTES));
    expect(whole.length).toBe(segmentStart(2));

    await refused(decrypt(whole.subarray(0, segmentStart(1))));
  });

  it.each([
    ['one byte', 1],
    ['a tag', TAG_BYTES],
    ['a full segment', ENCRYPTED_SEGMENT_BYTES],
  ])('refuses %s of trailing bytes after the final segment', async (_name, extra) => {
    await refused(decrypt(Buffer.concat([ciphertext, randomBytes(extra)])));
    const empty = await encrypt(Buffer.alloc(0));
    await refused(decrypt(Buffer.concat([empty, randomBytes(extra)])));
    const whole = await encrypt(randomBytes(SEGMENT_BYTES));
    await refused(decrypt(Buffer.concat([whole, randomBytes(extra)])));
  });

  it('refuses a package whose segments were swapped, dropped or repeated', async () => {
    const [header, first, second, last] = [
      ciphertext.subarray(0, segmentStart(0)),
      ciphertext.subarray(segmentStart(0), segmentStart(1)),
      ciphertext.subarray(segmentStart(1), segmentStart(2)),
      ciphertext.subarray(segmentStart(2)),
    ];

    await refused(decrypt(Buffer.concat([header, second, first, last])));
    await refused(decrypt(Buffer.concat([header, first, last])));
    await refused(decrypt(Buffer.concat([header, first, first, second, last])));
    // The untouched package still opens, so the refusals are about the order.
    expect(fingerprint(await decrypt(Buffer.concat([header, first, second, last])))).toBe(
      fingerprint(plaintext),
    );
  });

  it('refuses a segment taken from another package under the same key and context', async () => {
    const other = await encrypt(randomBytes(2.5 * SEGMENT_BYTES));
    const spliced = Buffer.concat([
      ciphertext.subarray(0, segmentStart(1)),
      other.subarray(segmentStart(1), segmentStart(2)),
      ciphertext.subarray(segmentStart(2)),
    ]);

    await refused(decrypt(spliced));
  });

  it('refuses a package under another key', async () => {
    await refused(decrypt(ciphertext, { key: randomBytes(32) }));
  });

  it('refuses a package under another context, so a copy under another name or tenant does not open', async () => {
    await refused(decrypt(ciphertext, { context: context.replace('req-7.zip', 'req-8.zip') }));
    await refused(decrypt(ciphertext, { context: '' }));
  });

  it('refuses a stream that is not a package or declares another segment size', async () => {
    await refused(decrypt(Buffer.from('PK\u0003\u0004 a plain ZIP is not an encrypted package at all')));
    const otherSize = Buffer.from(ciphertext);
    otherSize.writeUInt32BE(4096, 15);
    await expect(decrypt(otherSize)).rejects.toThrow(/segments of 4096 bytes/);
  });

  it('emits nothing of a segment whose tag fails: a flip in segment 2 of 3 lets out at most segment 1', async () => {
    const tampered = Buffer.from(ciphertext);
    tampered[segmentStart(1) + 100] = tampered[segmentStart(1) + 100]! ^ 0x01;

    const { emitted, error } = await decryptCollecting(tampered);

    expect(error).toBeInstanceOf(PackageCipherError);
    expect(emitted.length).toBeLessThanOrEqual(SEGMENT_BYTES);
    expect(fingerprint(emitted)).toBe(fingerprint(plaintext.subarray(0, emitted.length)));
    // The same ciphertext untouched goes past segment 1, so the limit above is the tag's doing.
    expect(fingerprint((await decryptCollecting(ciphertext)).emitted)).toBe(fingerprint(plaintext));
  });

  it('counts no size that is not a whole number of bytes', () => {
    for (const size of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => encryptedSize(size)).toThrow(RangeError);
    }
  });

  it('refuses keys that are not 32 bytes', () => {
    for (const length of [0, 16, 31, 33]) {
      expect(() => createPackageEncryptor(randomBytes(length), context)).toThrow(/32 bytes/);
      expect(() => createPackageDecryptor(randomBytes(length), context)).toThrow(/32 bytes/);
    }
  });
});
