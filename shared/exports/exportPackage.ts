// The package of an access or export request (SPEC §5): a ZIP streamed straight into Blob Storage, one JSON
// file per category, the audit events, for access a readable report, and a manifest with per-file SHA-256.
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline, type Readable, type Transform } from 'node:stream';

import type { ContainerClient } from '@azure/storage-blob';
import archiverModule, { type Archiver, type ZipOptions } from 'archiver';

import type { AuditEvent } from '../audit/auditEvent';
import type { PersonalDataRecord } from '../records/personalDataRecord';
import {
  type CategoryDisclosure,
  discloseCategory,
  NO_PROFILING,
  SUBJECT_RIGHTS,
  type SubjectRight,
} from '../transparency/categoryDisclosure';
import { RECORD_CATEGORIES } from '../vocabulary/categories';
import type { Geography } from '../vocabulary/geographies';
import { type PackageRequest, REPORT_TAIL, ReportBody, reportHead } from './packageReport';
export type { PackageRequest } from './packageReport';
import { recordPackager, redactAuditEvent } from './packageRecords';
import { DigestStream, PackageEntry, type PackageFile, untilAborted } from './packageStreams';
import type { OwnIdentifiers } from './redaction';

export type { PackageFile } from './packageStreams';

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
  /**
   * A data subject's package answers GDPR Art. 15 in full: per category present, what it is in words, its
   * purpose, source, retention, storage location and recipients, then the subject's rights
   * (transparency/categoryDisclosure.ts), in `manifest.json` and `report.html`. Where the tenant's data lives.
   */
  disclosure?: { geography: Geography };
}

export interface PackageManifest {
  request: PackageRequest;
  generatedAt: string;
  files: PackageFile[];
  /** Records per category, and `auditEvents`. */
  counts: Record<string, number>;
  /** For a data subject's package: what each category present is, and the subject's rights. */
  disclosure?: PackageDisclosure;
}

export interface PackageDisclosure {
  categories: CategoryDisclosure[];
  rights: readonly SubjectRight[];
  profiling: string;
}

/** What a package discloses about the categories it holds (those with at least one record). */
export function packageDisclosure(geography: Geography, counts: Record<string, number>): PackageDisclosure {
  const present = RECORD_CATEGORIES.filter((category) => (counts[category] ?? 0) > 0);
  return {
    categories: present.map((category) => discloseCategory(category, geography)),
    rights: SUBJECT_RIGHTS,
    profiling: NO_PROFILING,
  };
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
/**
 * Fastest deflate: packages are CPU-bound (decrypt, redact, serialise, compress) and downloaded once; on
 * record JSON, level 1 gives a ZIP ~20% larger than level 6 for ~20% less CPU per package (bench export).
 */
const DEFLATE_LEVEL = 1;
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

  const disclosure = input.disclosure ? packageDisclosure(input.disclosure.geography, counts) : undefined;
  if (report) {
    await report.close();
    const entry = open(REPORT_FILE);
    entry.append(reportHead(input.request, input.generatedAt, counts, deletedCounts, disclosure));
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
      deviceNames: input.request.deviceNames,
    },
    generatedAt: input.generatedAt.toISOString(),
    files,
    counts,
    ...(disclosure ? { disclosure } : {}),
  };
  // Last, so that it can list every other file with its hash.
  const manifestEntry = open(MANIFEST_FILE);
  manifestEntry.append(`${JSON.stringify(manifest, null, 2)}\n`);
  return { files, counts, manifest: await manifestEntry.close() };
}
