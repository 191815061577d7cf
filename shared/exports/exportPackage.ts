// The package of an access or export request (SPEC §5): a ZIP streamed straight into Blob Storage, one JSON
// file per category, the audit events, for access a readable report, and a manifest with per-file SHA-256.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PassThrough,
  pipeline,
  type Readable,
  Transform,
  type TransformCallback,
  type Writable,
} from 'node:stream';
import { finished } from 'node:stream/promises';
import { setImmediate } from 'node:timers/promises';

import type { ContainerClient } from '@azure/storage-blob';
import archiverModule, { type Archiver, type ZipOptions } from 'archiver';

import type { AuditEvent } from '../audit/auditEvent';
import type { PersonalDataRecord } from '../records/personalDataRecord';
import type { DataSubjectRequest } from '../requests/dataSubjectRequest';
import { type OwnIdentifiers, redactOtherPeople } from './redaction';

/** What the manifest says about the request. */
export type PackageRequest = Pick<
  DataSubjectRequest,
  'id' | 'tenantId' | 'type' | 'regulation' | 'receivedAt' | 'subject'
>;

export interface PackageCategory {
  category: string;
  /** The category's records a page at a time (as storage returns them), read once, in order. */
  records: AsyncIterable<readonly PersonalDataRecord[]>;
}

export interface ExportPackageInput {
  container: ContainerClient;
  blobName: string;
  /** `access` adds `report.html`. */
  kind: 'access' | 'export';
  request: PackageRequest;
  generatedAt: Date;
  /** Whose identifiers stay; everyone else's are redacted (see redaction.ts). */
  own: OwnIdentifiers;
  /** Read once, in order; each category becomes `<category>.json`. */
  categories: AsyncIterable<PackageCategory>;
  auditEvents: AsyncIterable<AuditEvent>;
  /** Blob metadata to store with the package (names must be valid C# identifiers). */
  metadata?: Record<string, string>;
  /**
   * Encrypts the ZIP on its way to the blob (packageCipher). The hash and size returned stay those of the
   * ZIP, which is what the subject receives once it is decrypted.
   */
  encrypt?: Transform;
}

export interface PackageFile {
  name: string;
  /** Hex SHA-256 of the file's uncompressed bytes. */
  sha256: string;
  sizeBytes: number;
  /** Records (or audit events) in the file; absent for the report and the manifest. */
  records?: number;
}

export interface PackageManifest {
  request: PackageRequest;
  generatedAt: string;
  files: PackageFile[];
  /** Records per category, and `auditEvents`. */
  counts: Record<string, number>;
}

export interface PackageResult {
  blobName: string;
  /** Hex SHA-256 of the whole ZIP (before any encryption). */
  sha256: string;
  sizeBytes: number;
  counts: Record<string, number>;
  /** Every file of the ZIP in order: the manifest's files, then the manifest itself. */
  files: PackageFile[];
}

// archiver 7's CommonJS export is a factory; @types/archiver 8 describes archiver 8's classes instead.
const archiver = archiverModule as unknown as (format: 'zip', options: ZipOptions) => Archiver;

/** A record as the package holds it: redacted, and marked when soft-deleted but not yet purged. */
export type PackagedRecord = Omit<PersonalDataRecord, 'deletedAt'> & { deleted: boolean; deletedAt?: string };

/**
 * Blob metadata names of the package's integrity, so that a download link can be answered without reading
 * the blob. A package blob without them is unfinished (the writer stopped between upload and metadata).
 */
export const PACKAGE_METADATA = { sha256: 'sha256', sizeBytes: 'sizebytes' } as const;

export const MANIFEST_FILE = 'manifest.json';
export const AUDIT_EVENTS_FILE = 'audit-events.json';
export const REPORT_FILE = 'report.html';

const UPLOAD_BUFFER_BYTES = 4 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 4;
/** Text goes into the archive in chunks of about this size: zlib fed one small record at a time is ~15x slower. */
const CHUNK_BYTES = 64 * 1024;
/**
 * Fastest deflate: packages are CPU-bound (decrypt, redact, serialise, compress) and downloaded once; on
 * record JSON, level 1 gives a ZIP ~20% larger than level 6 for ~20% less CPU per package (bench export).
 */
const DEFLATE_LEVEL = 1;
/**
 * Bytes of an entry written ahead of the compressor (one entry is open at a time). Two chunks keep the
 * compressor busy; more only raised the heap's peak (bench export: 8 chunks 37-64 MB, 2 chunks 35-45 MB).
 */
const ENTRY_BUFFER_BYTES = 2 * CHUNK_BYTES;
/** Audit events come one by one: the writers wait for room after this many. */
const SETTLE_EVERY = 100;
const CATEGORY_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Category names that would collide with the package's own files or counts. */
const RESERVED_NAMES = new Set(['audit-events', 'manifest', 'auditEvents']);

/** The files written and the counts; the manifest's own entry apart, as it cannot list itself. */
type WrittenContents = Pick<PackageManifest, 'files' | 'counts'> & { manifest: PackageFile };

/** Writes the package to `container/blobName`; memory stays bounded whatever the number of records. */
export async function writeExportPackage(input: ExportPackageInput): Promise<PackageResult> {
  const blob = input.container.getBlockBlobClient(input.blobName);
  const workDirectory =
    input.kind === 'access' ? await mkdtemp(join(tmpdir(), 'export-package-')) : undefined;
  const archive = archiver('zip', { zlib: { level: DEFLATE_LEVEL } });
  const zipped = new DigestStream();
  archive.on('error', (error) => zipped.destroy(error));
  // Warnings are about missing files on disk, which a package has none of: treat them as failures.
  archive.on('warning', (error) => zipped.destroy(error));
  archive.pipe(zipped);
  // pipeline, not pipe: destroying the ZIP side destroys the encryptor too, and so the upload's source.
  const stored: Readable = input.encrypt ? pipeline(zipped, input.encrypt, () => undefined) : zipped;

  // Whichever side fails first stops the other: the upload stops the writing, the writing destroys the
  // upload's source, which makes uploadStream reject before it commits the block list (no partial blob).
  const failure = new AbortController();
  const upload = blob.uploadStream(stored, UPLOAD_BUFFER_BYTES, UPLOAD_CONCURRENCY, {
    blobHTTPHeaders: { blobContentType: input.encrypt ? 'application/octet-stream' : 'application/zip' },
    metadata: input.metadata ?? {},
  });
  upload.catch((error: unknown) => failure.abort(error));

  let contents: WrittenContents;
  try {
    contents = await writeContents(archive, input, failure.signal, workDirectory);
    await untilAborted(archive.finalize(), failure.signal);
    await upload;
  } catch (error) {
    // When the upload failed first, its error says more than the AbortError it caused here.
    const reason: unknown = failure.signal.aborted ? failure.signal.reason : error;
    failure.abort(reason);
    zipped.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    archive.destroy();
    await upload.catch(() => undefined);
    throw reason;
  } finally {
    if (workDirectory) await rm(workDirectory, { recursive: true, force: true });
  }

  const sha256 = zipped.digest();
  const sizeBytes = zipped.sizeBytes;
  await blob.setMetadata({
    ...input.metadata,
    [PACKAGE_METADATA.sha256]: sha256,
    [PACKAGE_METADATA.sizeBytes]: String(sizeBytes),
  });
  return {
    blobName: input.blobName,
    sha256,
    sizeBytes,
    counts: contents.counts,
    files: [...contents.files, contents.manifest],
  };
}

/** The integrity a package blob carries in its metadata; undefined while the package is unfinished. */
export function packageIntegrity(
  metadata: Record<string, string> | undefined,
): { sha256: string; sizeBytes: number } | undefined {
  const sha256 = metadata?.[PACKAGE_METADATA.sha256];
  const sizeBytes = Number(metadata?.[PACKAGE_METADATA.sizeBytes]);
  if (!sha256 || !Number.isSafeInteger(sizeBytes)) return undefined;
  return { sha256, sizeBytes };
}

async function writeContents(
  archive: Archiver,
  input: ExportPackageInput,
  signal: AbortSignal,
  workDirectory: string | undefined,
): Promise<WrittenContents> {
  const open = (name: string) => new PackageEntry(name, archive, input.generatedAt, signal);
  const report = workDirectory ? new ReportBody(join(workDirectory, 'report-body.html'), signal) : undefined;
  try {
    return await writeEntries(input, open, report);
  } finally {
    // Closed already unless something failed; an open file could not be removed on Windows.
    report?.discard();
  }
}

async function writeEntries(
  input: ExportPackageInput,
  open: (name: string) => PackageEntry,
  report: ReportBody | undefined,
): Promise<WrittenContents> {
  const files: PackageFile[] = [];
  const counts: Record<string, number> = {};
  const deletedCounts: Record<string, number> = {};
  const packageRecord = recordPackager(input.own);

  for await (const { category, records } of input.categories) {
    if (!CATEGORY_NAME.test(category) || RESERVED_NAMES.has(category) || Object.hasOwn(counts, category)) {
      throw new Error(`Invalid or repeated category name for an export package: ${JSON.stringify(category)}`);
    }
    const entry = open(`${category}.json`);
    report?.startCategory(category);
    let count = 0;
    let deleted = 0;
    entry.append('[');
    for await (const page of records) {
      // A page is packaged in one go; the wait for room downstream is once per page, not per record.
      for (const record of page) {
        const packaged = packageRecord(record);
        entry.append(`${count === 0 ? '\n' : ',\n'}${JSON.stringify(packaged)}`);
        report?.record(packaged, count === 0);
        count++;
        if (packaged.deleted) deleted++;
      }
      await entry.settle();
      await report?.settle();
    }
    entry.append(count === 0 ? ']\n' : '\n]\n');
    report?.endCategory(count);
    counts[category] = count;
    deletedCounts[category] = deleted;
    files.push(await entry.close(count));
  }

  const audit = open(AUDIT_EVENTS_FILE);
  let auditCount = 0;
  audit.append('[');
  report?.startAuditEvents();
  for await (const event of input.auditEvents) {
    const redacted = redactAuditEvent(event, input.own);
    audit.append(`${auditCount === 0 ? '\n' : ',\n'}${JSON.stringify(redacted)}`);
    report?.auditEvent(redacted, auditCount === 0);
    auditCount++;
    if (auditCount % SETTLE_EVERY === 0) {
      await audit.settle();
      await report?.settle();
    }
  }
  audit.append(auditCount === 0 ? ']\n' : '\n]\n');
  report?.endAuditEvents(auditCount);
  counts.auditEvents = auditCount;
  files.push(await audit.close(auditCount));

  if (report) {
    await report.close();
    const entry = open(REPORT_FILE);
    entry.append(reportHead(input, counts, deletedCounts));
    // The tables were kept on local disk while the records streamed by, so the report never sits in memory.
    for await (const chunk of createReadStream(report.path)) await entry.writeBytes(chunk as Buffer);
    entry.append(REPORT_TAIL);
    files.push(await entry.close());
  }

  const manifest: PackageManifest = {
    request: {
      id: input.request.id,
      tenantId: input.request.tenantId,
      type: input.request.type,
      regulation: input.request.regulation,
      receivedAt: input.request.receivedAt,
      subject: input.request.subject,
    },
    generatedAt: input.generatedAt.toISOString(),
    files,
    counts,
  };
  // Last, so that it can list every other file with its hash.
  const manifestEntry = open(MANIFEST_FILE);
  manifestEntry.append(`${JSON.stringify(manifest, null, 2)}\n`);
  return { files, counts, manifest: await manifestEntry.close() };
}

/**
 * Packages records of one subject. Only the requester's identifiers stay readable, never a record's own
 * envelope as such: a record's identifiers that are not the requester's are redacted like anyone's.
 */
function recordPackager(own: OwnIdentifiers): (record: PersonalDataRecord) => PackagedRecord {
  return (record) => {
    const { deletedAt, deviceName } = record;
    // Fields in the order of the file format; `deleted` says what soft-deleted-but-not-purged means.
    const packaged: Record<string, unknown> = {
      category: record.category,
      recordId: record.recordId,
      occurredAt: record.occurredAt,
      deleted: deletedAt !== undefined,
    };
    if (deletedAt !== undefined) packaged.deletedAt = deletedAt;
    if (deviceName !== undefined) packaged.deviceName = deviceName;
    packaged.subject = record.subject;
    packaged.data = record.data;
    return redactOtherPeople(packaged, own) as PackagedRecord;
  };
}

function redactAuditEvent(event: AuditEvent, own: OwnIdentifiers): AuditEvent {
  const redacted = redactOtherPeople(event, own) as AuditEvent;
  // Apps and the service itself are not people: their ids say who acted and stay.
  if (event.actor.type === 'app' || event.actor.type === 'system') redacted.actor = event.actor;
  return redacted;
}

/**
 * Text batched into chunks of about CHUNK_BYTES, each passed on as soon as it is full. Appending never
 * waits; settle() does, for room downstream (backpressure), so a writer settles after every page or so and
 * holds at most that much beyond the stream's buffer.
 */
abstract class BatchedWriter {
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
class PackageEntry extends BatchedWriter {
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
class DigestStream extends Transform {
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

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason);
      else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
    }),
  ]);
}

// ---- report.html --------------------------------------------------------------------------------------

/**
 * The body of `report.html` (the tables), written to a private temporary file while the records stream
 * into their JSON files; the report entry is put together from it at the end.
 */
class ReportBody extends BatchedWriter {
  constructor(
    readonly path: string,
    signal: AbortSignal,
  ) {
    super(createWriteStream(path, { mode: 0o600 }), signal);
    // A failing disk surfaces at the next write or at close.
    this.sink.on('error', () => undefined);
  }

  startCategory(category: string): void {
    this.append(`<section>\n<h2>${escapeHtml(category)}</h2>\n`);
  }

  record(record: PackagedRecord, first: boolean): void {
    if (first) {
      this.append(
        '<table>\n<thead><tr><th>Record</th><th>Occurred</th><th>Deleted</th><th>Device</th><th>Data</th></tr></thead>\n<tbody>\n',
      );
    }
    this.append(
      `<tr><td>${escapeHtml(record.recordId)}</td><td>${escapeHtml(record.occurredAt)}</td>` +
        `<td>${record.deleted ? `deleted ${escapeHtml(record.deletedAt ?? '')}` : ''}</td>` +
        `<td>${escapeHtml(record.deviceName ?? '')}</td><td>${fieldList(record.data)}</td></tr>\n`,
    );
  }

  endCategory(count: number): void {
    this.append(count === 0 ? '<p>No records.</p>\n</section>\n' : '</tbody>\n</table>\n</section>\n');
  }

  startAuditEvents(): void {
    this.append('<section>\n<h2>Audit events</h2>\n');
  }

  auditEvent(event: AuditEvent, first: boolean): void {
    if (first) {
      this.append(
        '<table>\n<thead><tr><th>Time</th><th>Action</th><th>Actor</th><th>Target</th><th>Outcome</th><th>Details</th></tr></thead>\n<tbody>\n',
      );
    }
    const actor = `${event.actor.type} ${event.actor.upn ?? event.actor.id}`;
    this.append(
      `<tr><td>${escapeHtml(event.time)}</td><td>${escapeHtml(event.action)}</td><td>${escapeHtml(actor)}</td>` +
        `<td>${escapeHtml(`${event.target.type} ${event.target.id}`)}</td><td>${escapeHtml(event.outcome)}</td>` +
        `<td>${fieldList(event.details)}</td></tr>\n`,
    );
  }

  endAuditEvents(count: number): void {
    this.endCategory(count);
  }

  async close(): Promise<void> {
    this.flushParts();
    this.sink.end();
    await finished(this.sink);
  }

  discard(): void {
    this.sink.destroy();
  }
}

function reportHead(
  input: ExportPackageInput,
  counts: Record<string, number>,
  deletedCounts: Record<string, number>,
): string {
  const { request } = input;
  const subject = [request.subject.upn, request.subject.email, request.subject.objectId]
    .filter((identifier): identifier is string => identifier !== undefined)
    .map(escapeHtml)
    .join('<br>');
  const details: [string, string][] = [
    ['Request', escapeHtml(request.id)],
    ['Type', escapeHtml(request.type)],
    ['Regulation', escapeHtml(request.regulation)],
    ['Received', escapeHtml(request.receivedAt)],
    ['Generated', escapeHtml(input.generatedAt.toISOString())],
    ['Data subject', subject],
  ];
  const summary = Object.entries(counts)
    .map(([category, count]) => {
      const name = category === 'auditEvents' ? 'Audit events' : category;
      const deleted = deletedCounts[category] ? ` (${deletedCounts[category]} deleted, not yet purged)` : '';
      return `<tr><td>${escapeHtml(name)}</td><td>${count}${deleted}</td></tr>`;
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Personal data report</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
dl { margin: 0; display: grid; grid-template-columns: auto 1fr; gap: 0 0.75rem; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
</style>
</head>
<body>
<h1>Personal data report</h1>
<p>The personal data held about you, as of the time this report was generated. Identifiers of other people
have been replaced by [redacted]. The machine-readable files in this package hold the same data.</p>
<table>
${details.map(([name, value]) => `<tr><th>${name}</th><td>${value}</td></tr>`).join('\n')}
</table>
<h2>Summary</h2>
<table>
<thead><tr><th>Category</th><th>Records</th></tr></thead>
<tbody>
${summary}
</tbody>
</table>
`;
}

const REPORT_TAIL = '</body>\n</html>\n';

/** A record's data as `path: value` pairs, so that nested data reads without knowing its shape. */
function fieldList(data: Record<string, unknown>): string {
  const fields: [string, string][] = [];
  flatten(data, '', fields);
  if (fields.length === 0) return '';
  return `<dl>${fields.map(([path, value]) => `<dt>${escapeHtml(path)}</dt><dd>${escapeHtml(value)}</dd>`).join('')}</dl>`;
}

function flatten(value: unknown, path: string, into: [string, string][]): void {
  if (Array.isArray(value)) {
    if (value.length === 0) into.push([path, '[]']);
    value.forEach((item, index) => flatten(item, `${path}[${index}]`, into));
  } else if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0 && path) into.push([path, '{}']);
    for (const [key, item] of entries) flatten(item, path ? `${path}.${key}` : key, into);
  } else {
    into.push([path, value === undefined ? '' : String(value)]);
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => HTML_ESCAPES[character] ?? character);
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
