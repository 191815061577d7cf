// Export packages at rest (SPEC §4, §5): each ZIP is stored encrypted under its own key, and that key is kept
// only wrapped by the subject's data key, in an index row in the subject's partition. Destroying the data key
// (erasure) makes every copy of every package of the subject unreadable at once, soft-deleted blobs included.
import { randomBytes, randomUUID } from 'node:crypto';
import { pipeline, type Readable } from 'node:stream';

import type { TableClient } from '@azure/data-tables';

import type { Clock } from '../clock';
import { createPackageDecryptor, createPackageEncryptor } from '../crypto/packageCipher';
import { open as openSealed, seal } from '../crypto/sealedBox';
import type { SubjectKeyStore } from '../records/subjectKeys';
import { notFound } from '../errors';
import { recordsPartition, rowKeyRange, subjectRows } from '../records/recordKeys';
import type { TenantScope } from '../residency/tenantDirectory';
import { type ExpiryEntry, type ExpiryIndex, packageExpiry } from '../retention/expiryIndex';
import { CONTAINERS, TABLES } from '../storage/names';
import {
  type ExportPackageInput,
  type PackageFile,
  packageIntegrity,
  writeExportPackage,
} from './exportPackage';
import { isAbsent, orAbsent } from '../storage/absent';

/** Blob metadata `format` of an encrypted package (packageCipher's PDSPKG01 framing). */
export const PACKAGE_FORMAT = 'pdspkg1';

const PACKAGE_KEY_BYTES = 32;

/** What a package is made of; where it goes and how it is sealed is the store's business. */
export type PackageInput = Omit<ExportPackageInput, 'container' | 'blobName' | 'metadata' | 'encrypt'>;

export interface WrittenPackage {
  blobName: string;
  /** The index row in the subject's partition (`~pkg_<request id>_<attempt>`). */
  packageRow: string;
  /** Hex SHA-256 and size of the ZIP the subject receives (not of the encrypted blob). */
  sha256: string;
  sizeBytes: number;
  counts: Record<string, number>;
  files: PackageFile[];
}

export interface OpenedPackage {
  /** The ZIP, decrypted as it is read; it fails (never ends cleanly) if the blob was altered. */
  stream: Readable;
  sha256: string;
  sizeBytes: number;
  blobName: string;
}

/** A package as its index row lists it; the wrapped key stays inside the store. */
export interface PackageIndexRow {
  packageRow: string;
  requestId: string;
  blobName: string;
  createdAt: string;
  /** The day of the package's expiry entry. */
  expiresOn: string;
}

interface PackageIndexEntity extends Omit<PackageIndexRow, 'packageRow'> {
  partitionKey: string;
  rowKey: string;
  /** The package key sealed with the subject's data key; aad `${partitionKey}|${rowKey}`. */
  wrappedKey: string;
}

const INDEX_COLUMNS = ['RowKey', 'requestId', 'blobName', 'createdAt', 'expiresOn'];

/** The cipher context: a blob copied under another name, request or tenant does not open there. */
const cipherContext = (tenantId: string, requestId: string, blobName: string) =>
  `${tenantId}|${requestId}|${blobName}`;

const wrapAad = (partitionKey: string, rowKey: string) => `${partitionKey}|${rowKey}`;

export class PackageStore {
  constructor(
    private readonly keys: SubjectKeyStore,
    private readonly expiry: ExpiryIndex,
    private readonly clock: Clock,
  ) {}

  /**
   * Writes a new package of `requestId` for the subject, as an attempt of its own (a random id): the expiry
   * entry and the index row first, so that whatever a crash leaves is found by expiry and by erasure, then
   * the ZIP, encrypted as it streams into its blob.
   */
  async write(
    tenant: TenantScope,
    subjectKey: string,
    requestId: string,
    input: PackageInput,
  ): Promise<WrittenPackage> {
    const attempt = randomUUID();
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const packageRow = subjectRows.package(requestId, attempt);
    const blobName = `${tenant.tenantId}/${requestId}/${attempt}.zip.enc`;
    const packageKey = randomBytes(PACKAGE_KEY_BYTES);
    const dataKey = await this.keys.getOrCreate(tenant, subjectKey);
    const wrappedKey = seal(dataKey, packageKey, wrapAad(partitionKey, packageRow));
    dataKey.fill(0);

    // Provisional: due 30 days after generation, moved to the completion day once the request completes.
    const entry = packageExpiry(requestId, blobName, input.generatedAt, { subjectKey, packageRow });
    await this.expiry.add(tenant, [entry]);
    const table = await this.table(tenant);
    await table.createEntity<PackageIndexEntity>({
      partitionKey,
      rowKey: packageRow,
      requestId,
      blobName,
      wrappedKey,
      createdAt: this.clock().toISOString(),
      expiresOn: entry.day,
    });

    const encrypt = createPackageEncryptor(packageKey, cipherContext(tenant.tenantId, requestId, blobName));
    packageKey.fill(0); // the cipher holds its own copy
    try {
      const written = await writeExportPackage({
        ...input,
        container: await tenant.account.container(CONTAINERS.exportPackages),
        blobName,
        encrypt,
        metadata: { requestId, tenantId: tenant.tenantId, format: PACKAGE_FORMAT },
      });
      const { sha256, sizeBytes, counts, files } = written;
      return { blobName, packageRow, sha256, sizeBytes, counts, files };
    } catch (error) {
      // A failed attempt leaves nothing behind; if this cleanup fails too, its expiry entry still does it.
      await this.remove(tenant, subjectKey, packageRow).catch(() => undefined);
      throw error;
    }
  }

  /**
   * The package's request completed at `completedAt`: the package is now due 30 days after that (SPEC §6).
   * The entry for the new day is added before the provisional one goes, so the package is never without one.
   */
  async completed(
    tenant: TenantScope,
    subjectKey: string,
    packageRow: string,
    completedAt: Date,
  ): Promise<void> {
    const row = await this.readRow(tenant, subjectKey, packageRow);
    if (!row) return;
    const index = { subjectKey, packageRow };
    const due = packageExpiry(row.requestId, row.blobName, completedAt, index);
    if (due.day === row.expiresOn) return;
    await this.expiry.add(tenant, [due]);
    const table = await this.table(tenant);
    await table
      .updateEntity({ partitionKey: row.partitionKey, rowKey: row.rowKey, expiresOn: due.day }, 'Merge')
      .catch(ignoreMissing); // removed meanwhile (an erasure): the new entry then finds nothing
    await this.expiry.remove(tenant, [expiryOf(row, index)]);
  }

  /** The integrity of a package that can be downloaded; NotFound when its row, data key or blob is gone. */
  async describe(
    tenant: TenantScope,
    subjectKey: string,
    packageRow: string,
  ): Promise<Omit<OpenedPackage, 'stream'>> {
    const { row } = await this.unlock(tenant, subjectKey, packageRow);
    const container = await tenant.account.container(CONTAINERS.exportPackages);
    let metadata: Record<string, string> | undefined;
    try {
      ({ metadata } = await container.getBlobClient(row.blobName).getProperties());
    } catch (error) {
      if (isAbsent(error)) throw notFound('The package');
      throw error;
    }
    const integrity = packageIntegrity(metadata);
    if (!integrity) throw notFound('The package'); // unfinished: its writer stopped before the end
    return { ...integrity, blobName: row.blobName };
  }

  /**
   * The package's ZIP as a stream, decrypted segment by segment as the blob downloads (memory stays flat
   * whatever the size). NotFound when the index row, the data key or the blob is gone.
   */
  async open(tenant: TenantScope, subjectKey: string, packageRow: string): Promise<OpenedPackage> {
    const { row, packageKey } = await this.unlock(tenant, subjectKey, packageRow);
    try {
      const container = await tenant.account.container(CONTAINERS.exportPackages);
      let download;
      try {
        download = await container.getBlobClient(row.blobName).download();
      } catch (error) {
        if (isAbsent(error)) throw notFound('The package');
        throw error;
      }
      const body = download.readableStreamBody as Readable | undefined;
      const integrity = packageIntegrity(download.metadata);
      if (!body || !integrity) {
        body?.destroy();
        throw notFound('The package');
      }
      const decrypt = createPackageDecryptor(
        packageKey,
        cipherContext(tenant.tenantId, row.requestId, row.blobName),
      );
      // The consumer going away stops the download; a failed download or segment fails the consumer.
      const stream = pipeline(body, decrypt, () => undefined);
      return { stream, ...integrity, blobName: row.blobName };
    } finally {
      packageKey.fill(0);
    }
  }

  /**
   * Removes a package: its blob (with snapshots), its expiry entry, then its index row, so a run stopped
   * part-way is found again by list(). Idempotent; true when the row was there.
   */
  async remove(tenant: TenantScope, subjectKey: string, packageRow: string): Promise<boolean> {
    const row = await this.readRow(tenant, subjectKey, packageRow);
    if (!row) return false;
    const container = await tenant.account.container(CONTAINERS.exportPackages);
    await container.deleteBlob(row.blobName, { deleteSnapshots: 'include' }).catch(ignoreMissing);
    await this.expiry.remove(tenant, [expiryOf(row, { subjectKey, packageRow })]);
    const table = await this.table(tenant);
    await table.deleteEntity(row.partitionKey, row.rowKey).catch(ignoreMissing);
    return true;
  }

  /**
   * Once a request's package is the one kept: every other attempt goes — those with an index row, and those
   * a crash stopped between their expiry entry and their row (found among the request's package entries of
   * the kept attempt's provisional day).
   */
  async removeOtherAttempts(
    tenant: TenantScope,
    subjectKey: string,
    requestId: string,
    kept: WrittenPackage,
    generatedAt: Date,
  ): Promise<void> {
    for (const attempt of await this.list(tenant, subjectKey, requestId)) {
      if (attempt.packageRow !== kept.packageRow) await this.remove(tenant, subjectKey, attempt.packageRow);
    }
    const provisional = packageExpiry(requestId, kept.blobName, generatedAt);
    const container = await tenant.account.container(CONTAINERS.exportPackages);
    for (const entry of await this.expiry.packagesDueOn(tenant, provisional.day, requestId)) {
      if (entry.blobName === kept.blobName) continue;
      await container.deleteBlob(entry.blobName, { deleteSnapshots: 'include' }).catch(ignoreMissing);
      await this.expiry.remove(tenant, [entry]);
    }
  }

  /** The packages of a subject, or of one of its requests, as their index rows list them. */
  async list(tenant: TenantScope, subjectKey: string, requestId?: string): Promise<PackageIndexRow[]> {
    const table = await this.table(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const prefix = requestId === undefined ? subjectRows.packagePrefix() : subjectRows.package(requestId, '');
    const rows: PackageIndexRow[] = [];
    for await (const row of table.listEntities<Omit<PackageIndexEntity, 'wrappedKey'>>({
      queryOptions: { filter: rowKeyRange(partitionKey, prefix), select: INDEX_COLUMNS },
    })) {
      if (requestId !== undefined && row.requestId !== requestId) continue;
      const { requestId: id, blobName, createdAt, expiresOn } = row;
      rows.push({ packageRow: row.rowKey, requestId: id, blobName, createdAt, expiresOn });
    }
    return rows;
  }

  /**
   * Moves every package of `fromSubjectKey` to `toSubjectKey` (an alias's own subject merged into an object
   * subject): each key is unwrapped with the old data key and wrapped with the new one in a row of the new
   * partition, the expiry entry is pointed at that row, and only then is the old row deleted; the blobs stay
   * as they are. Idempotent and resumable. Packages whose old data key is gone cannot be opened by anyone any
   * more and are removed. Returns the packages moved.
   */
  async rewrap(tenant: TenantScope, fromSubjectKey: string, toSubjectKey: string): Promise<number> {
    if (fromSubjectKey === toSubjectKey) return 0;
    const table = await this.table(tenant);
    const from = recordsPartition(tenant.tenantId, fromSubjectKey);
    const to = recordsPartition(tenant.tenantId, toSubjectKey);
    const rows: PackageIndexEntity[] = [];
    for await (const row of table.listEntities<PackageIndexEntity>({
      queryOptions: { filter: rowKeyRange(from, subjectRows.packagePrefix()) },
    })) {
      rows.push(row);
    }
    if (rows.length === 0) return 0;
    const oldKey = await this.keys.find(tenant, fromSubjectKey);
    if (!oldKey) {
      for (const row of rows) await this.remove(tenant, fromSubjectKey, row.rowKey);
      return 0;
    }
    const newKey = await this.keys.getOrCreate(tenant, toSubjectKey);
    try {
      for (const row of rows) {
        const packageKey = openSealed(oldKey, row.wrappedKey, wrapAad(from, row.rowKey));
        const wrappedKey = seal(newKey, packageKey, wrapAad(to, row.rowKey));
        packageKey.fill(0);
        const { requestId, blobName, createdAt, expiresOn } = row;
        await table.upsertEntity<PackageIndexEntity>(
          { partitionKey: to, rowKey: row.rowKey, requestId, blobName, wrappedKey, createdAt, expiresOn },
          'Replace',
        );
        // Same entry keys (day, request, blob), new place of the index row.
        await this.expiry.add(tenant, [expiryOf(row, { subjectKey: toSubjectKey, packageRow: row.rowKey })]);
        await table.deleteEntity(from, row.rowKey).catch(ignoreMissing);
      }
    } finally {
      oldKey.fill(0);
      newKey.fill(0);
    }
    return rows.length;
  }

  /** The row and its unwrapped package key; NotFound when the row or the subject's data key is gone. */
  private async unlock(
    tenant: TenantScope,
    subjectKey: string,
    packageRow: string,
  ): Promise<{ row: PackageIndexEntity; packageKey: Buffer }> {
    const row = await this.readRow(tenant, subjectKey, packageRow);
    if (!row) throw notFound('The package');
    const dataKey = await this.keys.find(tenant, subjectKey);
    if (!dataKey) throw notFound('The package'); // erased: crypto-shredded
    try {
      // A row that does not open (altered, or copied to another place) is an integrity failure: it throws.
      return { row, packageKey: openSealed(dataKey, row.wrappedKey, wrapAad(row.partitionKey, row.rowKey)) };
    } finally {
      dataKey.fill(0);
    }
  }

  private async readRow(
    tenant: TenantScope,
    subjectKey: string,
    packageRow: string,
  ): Promise<PackageIndexEntity | undefined> {
    // Only package rows: this store never reads or deletes a record or the data key by mistake.
    if (!packageRow.startsWith(subjectRows.packagePrefix())) return undefined;
    const table = await this.table(tenant);
    return orAbsent(
      table.getEntity<PackageIndexEntity>(recordsPartition(tenant.tenantId, subjectKey), packageRow),
    );
  }

  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.records);
  }
}

/** The expiry entry a row's `expiresOn` stands for. */
function expiryOf(
  row: Pick<PackageIndexEntity, 'requestId' | 'blobName' | 'expiresOn'>,
  index: { subjectKey: string; packageRow: string },
): ExpiryEntry {
  return { kind: 'package', day: row.expiresOn, requestId: row.requestId, blobName: row.blobName, ...index };
}

const ignoreMissing = (error: unknown) => {
  if (!isAbsent(error)) throw error;
};
