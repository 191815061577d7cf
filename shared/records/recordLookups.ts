// The record-id lookup (`recordLookup`, `_r` partitions): where a record lives and every deletion known for
// it. Read and pointed by the record writers (RecordStore); removed by the purge and erasure only while it
// still names the subject whose row goes: a record that moved on since (its lookup names another subject,
// where its row may be located, RecordEntity.located) or a deletion known before its record came (a lookup
// naming no one) keeps its lookup.
import type { TableClient } from '@azure/data-tables';

import { orAbsent } from '../storage/absent';
import type { RowVersion } from '../storage/tableBatches';
import { lookupKeys } from './recordKeys';
import { isStatus } from './recordRows';

/** The record-id lookup (`_r`): where the record lives, and every deletion known for it (JSON list). */
export interface RecordLookupEntity {
  partitionKey: string;
  rowKey: string;
  subjectKey?: string;
  deletions?: string;
  /** Written before deletions were kept as a list: the one deletion known. */
  tombstoneDeletedAt?: string;
  etag: string;
}

/** The deletions a record-id lookup knows. */
export function deletionsOf(
  lookup: Omit<RecordLookupEntity, 'partitionKey' | 'rowKey'> | undefined,
): string[] {
  if (!lookup) return [];
  if (lookup.deletions) return JSON.parse(lookup.deletions) as string[];
  return lookup.tombstoneDeletedAt ? [lookup.tombstoneDeletedAt] : [];
}

export function readRecordLookup(
  lookups: TableClient,
  tenantId: string,
  recordKey: string,
): Promise<RecordLookupEntity | undefined> {
  const keys = lookupKeys.record(tenantId, recordKey);
  return orAbsent(lookups.getEntity<RecordLookupEntity>(keys.partitionKey, keys.rowKey));
}

/** Points the record-id lookup at `subjectKey`, guarded by the lookup as read; false if it changed. */
export async function pointRecordLookup(
  lookups: TableClient,
  tenantId: string,
  recordKey: string,
  lookup: RecordLookupEntity | undefined,
  subjectKey: string,
): Promise<boolean> {
  const keys = lookupKeys.record(tenantId, recordKey);
  try {
    if (lookup) await lookups.updateEntity({ ...keys, subjectKey }, 'Merge', { etag: lookup.etag });
    else await lookups.createEntity({ ...keys, subjectKey });
    return true;
  } catch (error) {
    if (isStatus(error, 409) || isStatus(error, 412) || isStatus(error, 404)) return false;
    throw error;
  }
}

/** Point reads in flight at once. */
const PARALLEL_READS = 16;

/**
 * The record-id lookups of `records` that name the subject given with each, with their ETags (to delete
 * them guarded by `deleteVersions`). Point reads, some at a time: an OR of row keys would scan a lookup
 * partition, which holds 1/256 of the tenant's records.
 */
export async function lookupsNaming(
  lookups: TableClient,
  tenantId: string,
  records: readonly { recordKey: string; subjectKey: string }[],
): Promise<RowVersion[]> {
  const found: RowVersion[] = [];
  // Each record and subject once.
  const queue = [...new Map(records.map((r) => [`${r.recordKey}\n${r.subjectKey}`, r])).values()];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const { partitionKey, rowKey } = lookupKeys.record(tenantId, next.recordKey);
      const lookup = await orAbsent(
        lookups.getEntity<{ subjectKey?: string }>(partitionKey, rowKey, {
          queryOptions: { select: ['subjectKey'] },
        }),
      );
      if (lookup?.subjectKey === next.subjectKey) found.push({ partitionKey, rowKey, etag: lookup.etag });
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, queue.length) }, worker));
  return found;
}
