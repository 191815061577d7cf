// The expiry index: for each tenant, what falls due on which day, written when data is stored or
// soft-deleted. The daily purge reads only the entries due by today, so its work is in proportion to
// what expires, not to what is stored. Layout (table `expiry` of the tenant's geography account):
// PartitionKey `${tenantId}_x${yyyymm}` (the due month: partitions stay bounded), RowKey
// `${yyyymmdd}_${kind}_...`, so "due by today" is one range query over the tenant's months.
import { odata, type TableClient, type TransactionAction } from '@azure/data-tables';

import type { RecordCategory } from '../vocabulary/categories';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import { deleteVersions, submitInBatches } from '../storage/tableBatches';
import { dueAt, dueDay, RETENTION_POLICY, SHORT_LIVED_CATEGORIES } from './retentionPolicy';

export type RecordExpiryAction = 'delete' | 'anonymise' | 'purgeDeleted';

export type ExpiryEntry =
  | {
      kind: 'record';
      day: string;
      action: RecordExpiryAction;
      category: RecordCategory;
      subjectKey: string;
      /** The record's RowKey in its subject's partition. */
      recordRow: string;
      deviceKey?: string;
      /** The ETag of the row version the entry was made for: the purge deletes that version only. */
      etag?: string;
    }
  | { kind: 'anonymousRecord'; day: string; anonymousRow: string; etag?: string }
  /** An invalid event set aside (sealed) in the tenant's geography. */
  | { kind: 'poisonedEvent'; day: string; blobName: string }
  | {
      kind: 'package';
      day: string;
      requestId: string;
      blobName: string;
      /** Where the package's index row (its wrapped key) is: the subject's partition and row. */
      subjectKey?: string;
      packageRow?: string;
    };

/** An entry as read from the index, with the ETag of the entry row itself (done() is conditional on it). */
export type StoredExpiryEntry = ExpiryEntry & { partitionKey: string; rowKey: string; entryEtag: string };

interface ExpiryEntity {
  partitionKey: string;
  rowKey: string;
  entry: string;
}

const compactDay = (day: string) => day.replaceAll('-', '');

export function expiryKeys(tenantId: string, entry: ExpiryEntry): { partitionKey: string; rowKey: string } {
  const day = compactDay(entry.day);
  const partitionKey = `${tenantId}_x${day.slice(0, 6)}`;
  switch (entry.kind) {
    case 'record':
      return { partitionKey, rowKey: `${day}_r_${entry.action}_${entry.subjectKey}_${entry.recordRow}` };
    case 'anonymousRecord':
      return { partitionKey, rowKey: `${day}_a_${entry.anonymousRow}` };
    case 'poisonedEvent':
      return { partitionKey, rowKey: `${day}_e_${blobKey(entry.blobName)}` };
    case 'package':
      // One entry per blob: every attempt of a request's package has its own until the losers are removed.
      return { partitionKey, rowKey: `${day}_p_${entry.requestId}_${blobKey(entry.blobName)}` };
  }
}

/** The retention entries of a record with these dates (SPEC §6). Pure. */
export function recordExpiries(
  record: { category: RecordCategory; occurredAt: string; deletedAt?: string | undefined },
  target: { subjectKey: string; recordRow: string; deviceKey?: string | undefined; etag?: string },
): ExpiryEntry[] {
  const occurred = new Date(record.occurredAt);
  const base = {
    kind: 'record' as const,
    category: record.category,
    subjectKey: target.subjectKey,
    recordRow: target.recordRow,
    ...(target.deviceKey ? { deviceKey: target.deviceKey } : {}),
    ...(target.etag ? { etag: target.etag } : {}),
  };
  const entries: ExpiryEntry[] = [];
  if ((SHORT_LIVED_CATEGORIES as readonly string[]).includes(record.category)) {
    entries.push({ ...base, action: 'delete', day: dueDay(dueAt(RETENTION_POLICY.shortLived, occurred)) });
  }
  if (record.category === 'alert') {
    entries.push({
      ...base,
      action: 'anonymise',
      day: dueDay(dueAt(RETENTION_POLICY.alertAnonymisation, occurred)),
    });
  }
  if (record.deletedAt) {
    const deleted = new Date(record.deletedAt);
    entries.push({
      ...base,
      action: 'purgeDeleted',
      day: dueDay(dueAt(RETENTION_POLICY.softDeleted, deleted)),
    });
  }
  return entries;
}

/** An export package's entry: deleted 30 days after its request completed. Pure. */
export const packageExpiry = (
  requestId: string,
  blobName: string,
  completedAt: Date,
  index?: { subjectKey: string; packageRow: string },
): ExpiryEntry => ({
  kind: 'package',
  day: dueDay(dueAt(RETENTION_POLICY.exportPackages, completedAt)),
  requestId,
  blobName,
  ...(index ?? {}),
});

/** A blob name as a RowKey part: Table keys refuse `/`. */
const blobKey = (blobName: string) => blobName.replaceAll('/', '!');

/** An event set aside as invalid: its sealed payload is deleted 30 days later. Pure. */
export const poisonedEventExpiry = (blobName: string, setAsideAt: Date): ExpiryEntry => ({
  kind: 'poisonedEvent',
  day: dueDay(dueAt(RETENTION_POLICY.poisonedEvents, setAsideAt)),
  blobName,
});

/** An anonymised alert's entry: deleted 2 years after the alert occurred. Pure. */
export const anonymousAlertExpiry = (anonymousRow: string, occurredAt: Date): ExpiryEntry => ({
  kind: 'anonymousRecord',
  day: dueDay(dueAt(RETENTION_POLICY.alertDeletion, occurredAt)),
  anonymousRow,
});

export class ExpiryIndex {
  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.expiry);
  }

  /** Adds entries (idempotent: an entry's keys are derived from what it says). */
  async add(tenant: TenantScope, entries: readonly ExpiryEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await submitInBatches(
      await this.table(tenant),
      entries.map((entry): TransactionAction => [
        'upsert',
        { ...expiryKeys(tenant.tenantId, entry), entry: JSON.stringify(entry) },
        'Replace',
      ]),
    );
  }

  /** Removes entries that no longer apply (the record changed); missing ones are ignored. */
  async remove(tenant: TenantScope, entries: readonly ExpiryEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await submitInBatches(
      await this.table(tenant),
      entries.map((entry): TransactionAction => ['delete', expiryKeys(tenant.tenantId, entry)]),
    );
  }

  /**
   * Adds `added` and removes `removed` (rows written again at other dates) so that a crash at any point
   * leaves an entry too many (the purge re-checks a row's dates) and never one too few: a removal goes in
   * the same transaction as the add that takes its place when both fall in one month's partition (one
   * request per partition for a check-in's replacements); any other removal only after every add is stored.
   */
  async replace(
    tenant: TenantScope,
    added: readonly ExpiryEntry[],
    removed: readonly ExpiryEntry[],
  ): Promise<void> {
    const { together, after } = pairRemovals(tenant.tenantId, added, removed);
    await submitInBatches(await this.table(tenant), [
      ...added.map((entry): TransactionAction => [
        'upsert',
        { ...expiryKeys(tenant.tenantId, entry), entry: JSON.stringify(entry) },
        'Replace',
      ]),
      ...together.map((entry): TransactionAction => ['delete', expiryKeys(tenant.tenantId, entry)]),
    ]);
    await this.remove(tenant, after);
  }

  /** The package entries of one request due on one day (yyyy-mm-dd): one per attempt of its package. */
  async packagesDueOn(
    tenant: TenantScope,
    day: string,
    requestId: string,
  ): Promise<Extract<ExpiryEntry, { kind: 'package' }>[]> {
    const compact = compactDay(day);
    const prefix = `${compact}_p_${requestId}_`;
    const table = await this.table(tenant);
    const found: Extract<ExpiryEntry, { kind: 'package' }>[] = [];
    for await (const row of table.listEntities<ExpiryEntity>({
      queryOptions: {
        filter:
          odata`PartitionKey eq ${`${tenant.tenantId}_x${compact.slice(0, 6)}`}` +
          odata` and RowKey ge ${prefix} and RowKey lt ${`${prefix}~`}`,
      },
    })) {
      const entry = JSON.parse(row.entry) as ExpiryEntry;
      if (entry.kind === 'package') found.push(entry);
    }
    return found;
  }

  /** Entries due on or before `today` (yyyy-mm-dd), oldest day first, a page at a time. */
  async *due(tenant: TenantScope, today: string, pageSize = 1000): AsyncGenerator<StoredExpiryEntry[]> {
    const table = await this.table(tenant);
    for await (const page of table
      .listEntities<ExpiryEntity>({ queryOptions: { filter: dueBy(tenant.tenantId, today) } })
      .byPage({ maxPageSize: pageSize })) {
      if (page.length === 0) continue;
      yield page.map((row) => ({
        ...(JSON.parse(row.entry) as ExpiryEntry),
        partitionKey: row.partitionKey,
        rowKey: row.rowKey,
        entryEtag: row.etag,
      }));
    }
  }

  /**
   * The keys of every entry due on or before `lastDay` (yyyy-mm-dd), a page at a time: what the privacy
   * report forecasts from. Keys alone say the day and the kind (expiryKeys), so no entry body is read; the
   * work is in proportion to what falls due by then, not to what is stored.
   */
  async *dueKeys(tenant: TenantScope, lastDay: string): AsyncGenerator<string[]> {
    const table = await this.table(tenant);
    for await (const page of table
      .listEntities({ queryOptions: { filter: dueBy(tenant.tenantId, lastDay), select: ['RowKey'] } })
      .byPage({ maxPageSize: 1000 })) {
      if (page.length > 0) yield page.map((row) => row.rowKey!);
    }
  }

  /**
   * Deletes entries that were carried out, each only as it was read: an entry rewritten meanwhile to name a
   * new version of its row stays for the next run (one rewritten with the same content goes).
   */
  async done(tenant: TenantScope, entries: readonly StoredExpiryEntry[]): Promise<void> {
    const table = await this.table(tenant);
    const { changed } = await deleteVersions(
      table,
      entries.map((entry) => ({
        partitionKey: entry.partitionKey,
        rowKey: entry.rowKey,
        etag: entry.entryEtag,
      })),
    );
    const carriedOut = new Map(entries.map((entry) => [`${entry.partitionKey}|${entry.rowKey}`, entry]));
    for (const key of changed) {
      const now = await table.getEntity<ExpiryEntity>(key.partitionKey, key.rowKey).catch(() => undefined);
      const before = carriedOut.get(`${key.partitionKey}|${key.rowKey}`);
      if (now && before && now.entry === JSON.stringify(withoutStorage(before))) {
        await deleteVersions(table, [{ ...key, etag: now.etag }]);
      }
    }
  }
}

/** Entries due on or before `day` (yyyy-mm-dd): the tenant's months up to its month, days up to it. */
function dueBy(tenantId: string, day: string): string {
  const compact = compactDay(day);
  return (
    `PartitionKey ge '${tenantId}_x' and PartitionKey le '${tenantId}_x${compact.slice(0, 6)}'` +
    ` and RowKey lt '${compact}~'`
  );
}

/** The entry as stored (what `add` wrote), without what `due` adds to it. */
function withoutStorage(entry: StoredExpiryEntry): ExpiryEntry {
  const { partitionKey: _p, rowKey: _r, entryEtag: _e, ...stored } = entry;
  return stored as ExpiryEntry;
}

/**
 * Which removals may share a transaction with the adds (`together`): those of a record entry whose row and
 * action get a new entry in the same partition, which the transaction stores at once. The rest (`after`)
 * wait until every add is stored. Pure.
 */
export function pairRemovals(
  tenantId: string,
  added: readonly ExpiryEntry[],
  removed: readonly ExpiryEntry[],
): { together: ExpiryEntry[]; after: ExpiryEntry[] } {
  const replacing = new Set(
    added.flatMap((entry) =>
      entry.kind === 'record'
        ? [
            `${expiryKeys(tenantId, entry).partitionKey}\n${entry.action}\n${entry.subjectKey}\n${entry.recordRow}`,
          ]
        : [],
    ),
  );
  const together: ExpiryEntry[] = [];
  const after: ExpiryEntry[] = [];
  for (const entry of removed) {
    const pair =
      entry.kind === 'record' &&
      replacing.has(
        `${expiryKeys(tenantId, entry).partitionKey}\n${entry.action}\n${entry.subjectKey}\n${entry.recordRow}`,
      );
    (pair ? together : after).push(entry);
  }
  return { together, after };
}
