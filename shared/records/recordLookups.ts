// Record-id lookups as the purge and erasure remove them: only a lookup that still names the subject whose
// row goes. A record that moved on since (its lookup names another subject, where its row may be located,
// RecordEntity.located) or a deletion known before its record came (a lookup naming no one) keeps its lookup.
import type { TableClient } from '@azure/data-tables';

import { orAbsent } from '../storage/absent';
import type { RowVersion } from '../storage/tableBatches';
import { lookupKeys } from './recordKeys';

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
  const seen = new Set<string>();
  const queue = records.filter(({ recordKey, subjectKey }) => {
    const key = `${recordKey}\n${subjectKey}`;
    return !seen.has(key) && !!seen.add(key);
  });
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
