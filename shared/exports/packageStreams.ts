// The streams an export package is written through: text batched into chunks with backpressure, each file
// of the ZIP hashed and counted as it goes into the archive, and the ZIP itself hashed on its way to storage.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Transform, type TransformCallback, type Writable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';

import type { Archiver } from 'archiver';

/** One file of the ZIP as the manifest lists it. */
export interface PackageFile {
  name: string;
  /** Hex SHA-256 of the file's uncompressed bytes. */
  sha256: string;
  sizeBytes: number;
  /** Records (or audit events) in the file; absent for the report and the manifest. */
  records?: number;
}

/** Text goes into the archive in chunks of about this size: zlib fed one small record at a time is ~15x slower. */
const CHUNK_BYTES = 64 * 1024;
/**
 * Bytes of an entry written ahead of the compressor (one entry is open at a time). Two chunks keep the
 * compressor busy; more only raised the heap's peak (bench export: 8 chunks 37-64 MB, 2 chunks 35-45 MB).
 */
const ENTRY_BUFFER_BYTES = 2 * CHUNK_BYTES;

/**
 * Text batched into chunks of about CHUNK_BYTES, each passed on as soon as it is full. Appending never
 * waits; settle() does, for room downstream (backpressure), so a writer settles after every page or so and
 * holds at most that much beyond the stream's buffer.
 */
export abstract class BatchedWriter {
  private parts: string[] = [];
  private pending = 0;

  constructor(
    /** Where the chunks go. */
    protected readonly sink: Writable,
    protected readonly signal: AbortSignal,
  ) {}

  append(text: string): void {
    this.parts.push(text);
    this.pending += text.length;
    if (this.pending >= CHUNK_BYTES) this.flushParts();
  }

  async writeBytes(bytes: Buffer): Promise<void> {
    this.flushParts();
    this.emit(bytes);
    await this.settle();
  }

  /** Waits until downstream has room again. */
  async settle(): Promise<void> {
    this.signal.throwIfAborted();
    if (this.sink.errored) throw this.sink.errored;
    if (this.sink.writableNeedDrain) await once(this.sink, 'drain', { signal: this.signal });
    // Otherwise a turn of the event loop: the compressor's thread-pool callbacks and the next storage page
    // are handled as they come, rather than after a long run of records.
    else await setImmediate();
  }

  protected flushParts(): void {
    if (this.parts.length === 0) return;
    const bytes = Buffer.from(this.parts.join(''), 'utf8');
    this.parts = [];
    this.pending = 0;
    this.emit(bytes);
  }

  protected emit(bytes: Buffer): void {
    this.signal.throwIfAborted();
    if (this.sink.errored) throw this.sink.errored;
    this.sink.write(bytes);
  }
}

/** One file of the ZIP: hashed and counted as its bytes go into the archive, with backpressure. */
export class PackageEntry extends BatchedWriter {
  private readonly hash = createHash('sha256');
  private sizeBytes = 0;

  constructor(
    private readonly name: string,
    archive: Archiver,
    date: Date,
    signal: AbortSignal,
  ) {
    // Deflate runs on libuv's thread pool: room for a chunk more lets the next records be serialised while
    // the previous chunk is compressed, instead of waiting for each one.
    super(new PassThrough({ highWaterMark: ENTRY_BUFFER_BYTES }), signal);
    // The archive takes its entries in order; this one is read once the previous entries have ended.
    archive.append(this.sink as PassThrough, { name, date });
  }

  async close(records?: number): Promise<PackageFile> {
    this.flushParts();
    await this.settle();
    this.sink.end();
    return {
      name: this.name,
      sha256: this.hash.digest('hex'),
      sizeBytes: this.sizeBytes,
      ...(records !== undefined ? { records } : {}),
    };
  }

  protected override emit(bytes: Buffer): void {
    this.signal.throwIfAborted();
    this.hash.update(bytes);
    this.sizeBytes += bytes.length;
    super.emit(bytes);
  }
}

/** The stream the upload reads: passes the ZIP bytes on and hashes and counts them. */
export class DigestStream extends Transform {
  sizeBytes = 0;
  private readonly hash = createHash('sha256');

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.sizeBytes += chunk.length;
    callback(null, chunk);
  }

  /** Only once the stream has ended. */
  digest(): string {
    return this.hash.digest('hex');
  }
}

export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    }),
  ]);
}
