// Record rows as stored (table `records`, a subject's partition): the entity, what is sealed in it, and the
// row-level rules every writer shares — newer `occurredAt` wins, which deletion applies to a version, and how
// a row is written without losing a concurrent change.
import { RestError, type TableClient } from '@azure/data-tables';

import { exactHmacWith, hmacWith } from '../crypto/pseudonymizer';
import { open, seal } from '../crypto/sealedBox';
import type { DataSubject } from '../vocabulary/dataSubject';
import type { RecordCategory } from '../vocabulary/categories';
import type { PersonalDataRecord, PseudonymousSubject } from './personalDataRecord';
import { orAbsent } from '../storage/absent';

export interface RecordEntity {
  partitionKey: string;
  rowKey: string;
  category: string;
  occurredAt: string;
  deletedAt?: string;
  deviceKey?: string;
  sealed: string;
  /**
   * The record's lookup was seen pointing at this subject, with no deletion known, while the version this
   * one replaced was stored here (RecordStore.upsertAll): until the row is replaced by another writer
   * (a Replace drops it) or removed, a newer undeleted version that is not due may replace it without
   * reading the lookup. Never set on a created row.
   */
  located?: boolean;
}

/** What is sealed: everything that could name someone. */
export interface SealedContent {
  recordId: string;
  subject: DataSubject | PseudonymousSubject;
  deviceName?: string;
  data: Record<string, unknown>;
}

/** The version of a stored row: its dates and its ETag (what a retention delete is conditional on). */
export interface RowVersion {
  occurredAt: string;
  deletedAt?: string;
  etag: string;
}

/** The columns toRecord reads (the partition is known to whoever queried it). */
export const RECORD_COLUMNS = ['RowKey', 'category', 'occurredAt', 'deletedAt', 'sealed'];

/** The record id HMAC of a record. Record ids are case-sensitive (SPEC §4), so taken exactly as sent. */
export const recordKeyOf = (pseudonymKey: Buffer, category: string, recordId: string): string =>
  exactHmacWith(pseudonymKey, 'record', `${category}:${recordId}`);

/** The device HMAC of a device name; device names are not case-sensitive (Windows, Intune). */
export const deviceKeyOf = (pseudonymKey: Buffer, deviceName: string): string =>
  hmacWith(pseudonymKey, 'device', deviceName);

/** A sealed row opens only in its own place: the AAD is its partition and row. */
export const sealContent = (dataKey: Buffer, content: SealedContent, partitionKey: string, rowKey: string) =>
  seal(dataKey, JSON.stringify(content), `${partitionKey}|${rowKey}`);

export function openContent(dataKey: Buffer, sealed: string, partitionKey: string, rowKey: string) {
  return JSON.parse(open(dataKey, sealed, `${partitionKey}|${rowKey}`).toString('utf8')) as SealedContent;
}

export function toRecord(
  row: Pick<RecordEntity, 'rowKey' | 'category' | 'occurredAt' | 'deletedAt' | 'sealed'>,
  dataKey: Buffer,
  partitionKey: string,
): PersonalDataRecord {
  const content = openContent(dataKey, row.sealed, partitionKey, row.rowKey);
  return {
    category: row.category as RecordCategory,
    recordId: content.recordId,
    occurredAt: row.occurredAt,
    ...(row.deletedAt ? { deletedAt: row.deletedAt } : {}),
    ...(content.deviceName ? { deviceName: content.deviceName } : {}),
    subject: content.subject,
    data: content.data,
  };
}

/** Deletion times a record-id lookup keeps: enough for any realistic history, bounded for the row's size. */
export const MAX_DELETIONS = 32;

/**
 * When the version that occurred at `occurredAt` counts as deleted, given every deletion known for its
 * record: the earliest deletion at or after it (a deletion only covers what had occurred by then). The same
 * answer whatever order the events came in. Pure.
 */
export function deletionFor(
  occurredAt: string,
  deletions: readonly (string | undefined)[],
): string | undefined {
  let earliest: string | undefined;
  for (const deletedAt of deletions) {
    if (
      deletedAt !== undefined &&
      deletedAt >= occurredAt &&
      (earliest === undefined || deletedAt < earliest)
    ) {
      earliest = deletedAt;
    }
  }
  return earliest;
}

/** A deletion list with one more time: sorted, without repeats, the latest MAX_DELETIONS kept. Pure. */
export function withDeletion(deletions: readonly string[], deletedAt: string): string[] {
  return [...new Set([...deletions, deletedAt])].sort().slice(-MAX_DELETIONS);
}

export type WriteOutcome =
  | { outcome: 'stale' }
  /** The very version was there already (a redelivery, a concurrent merge): nothing was written. */
  | { outcome: 'same'; stored: RowVersion & { deviceKey?: string } }
  | { outcome: 'stored'; stored: RowVersion; replaced?: RowVersion & { deviceKey?: string } };

/**
 * Creates the row, or replaces it when the stored one is older; retried on a concurrent change. The same
 * version again changes nothing but a deletion that now covers it. A deletion of the stored row that still
 * covers the new version (it happened at or after it) is kept. Says what is stored now and, when it replaced
 * a row, that row's version.
 */
export async function writeIfNewer(
  table: TableClient,
  entity: RecordEntity,
  /** The row is most likely there (its record lookup says so): read it first instead of trying to create it. */
  likelyStored = false,
): Promise<WriteOutcome> {
  for (let attempt = 0; attempt < 10; attempt++) {
    if (!(likelyStored && attempt === 0)) {
      try {
        const created = await table.createEntity(entity);
        return { outcome: 'stored', stored: versionOf(entity, created.etag) };
      } catch (error) {
        if (!isStatus(error, 409)) throw error;
      }
    }
    const stored = await readRow<RecordEntity>(table, entity.partitionKey, entity.rowKey);
    if (!stored) continue;
    if (stored.occurredAt > entity.occurredAt) return { outcome: 'stale' };
    const deletedAt = deletionFor(entity.occurredAt, [entity.deletedAt, stored.deletedAt]);
    const was = {
      ...versionOf(stored, stored.etag),
      ...(stored.deviceKey ? { deviceKey: stored.deviceKey } : {}),
    };
    try {
      if (stored.occurredAt === entity.occurredAt) {
        if (deletedAt === stored.deletedAt) return { outcome: 'same', stored: was };
        const { etag } = await table.updateEntity(
          { partitionKey: entity.partitionKey, rowKey: entity.rowKey, deletedAt },
          'Merge',
          { etag: stored.etag },
        );
        return { outcome: 'stored', stored: versionOf({ ...stored, deletedAt }, etag), replaced: was };
      }
      const { deletedAt: _given, ...rest } = entity;
      const replacement = { ...rest, ...(deletedAt ? { deletedAt } : {}) };
      const replaced = await table.updateEntity(replacement, 'Replace', { etag: stored.etag });
      return { outcome: 'stored', stored: versionOf(replacement, replaced.etag), replaced: was };
    } catch (error) {
      if (!(isStatus(error, 412) || isStatus(error, 404))) throw error;
    }
  }
  throw new Error('The record kept changing concurrently.');
}

export function versionOf(
  row: { occurredAt: string; deletedAt?: string },
  etag: string | undefined,
): RowVersion {
  if (!etag) throw new Error('The storage service returned no ETag for a written row.');
  return { occurredAt: row.occurredAt, ...(row.deletedAt ? { deletedAt: row.deletedAt } : {}), etag };
}

/** A row soft-deletion may mark: occurred by the deletion, and not already deleted earlier. */
export const shouldDelete = (row: Pick<RecordEntity, 'occurredAt' | 'deletedAt'>, deletedAt: string) =>
  row.occurredAt <= deletedAt && (row.deletedAt === undefined || row.deletedAt > deletedAt);

/**
 * Takes `located` off a row (RecordEntity.located): at its version when an ETag is given. The row's new ETag,
 * or undefined when it is gone or (guarded) changed meanwhile.
 */
export async function clearLocated(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
  etag?: string,
): Promise<string | undefined> {
  try {
    const updated = await orAbsent(
      table.updateEntity({ partitionKey, rowKey, located: false }, 'Merge', etag ? { etag } : {}),
    );
    return updated?.etag;
  } catch (error) {
    if (isStatus(error, 412)) return undefined;
    throw error;
  }
}

export const readRow = <T extends object>(table: TableClient, partitionKey: string, rowKey: string) =>
  orAbsent(table.getEntity<T>(partitionKey, rowKey));

export async function deleteIfPresent(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
  etag?: string,
): Promise<boolean> {
  return (await orAbsent(table.deleteEntity(partitionKey, rowKey, etag ? { etag } : {}))) !== undefined;
}

export const isStatus = (error: unknown, status: number): boolean =>
  error instanceof RestError && error.statusCode === status;
