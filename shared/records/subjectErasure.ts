// Erasing a data subject (SPEC §5 `delete`): the subject's data key is destroyed first, so every copy of
// their records and packages anywhere (soft-deleted blobs, backups) is unreadable at once; then their
// packages, records, lookups, aliases and every row of their partition go. Safe to run again after a crash:
// the partition's own list of what to clean up (identifiers, packages, merged alias subjects) goes last.
import type { TableClient, TransactionAction } from '@azure/data-tables';

import type { SubjectKeyStore } from '../records/subjectKeys';
import type { TenantScope } from '../residency/tenantDirectory';
import { CONTAINERS, TABLES } from '../storage/names';
import { deleteVersions, submitInBatches } from '../storage/tableBatches';
import type { RecordCategory } from '../vocabulary/categories';
import type { RecordCounts } from './recordCounts';
import { lookupsNaming } from './recordLookups';
import { categoryOfRow, lookupKeys, recordKeyOfRow, recordsPartition, subjectRows } from './recordKeys';
import type { RestrictionStore } from './restrictions';
import type { SubjectIdentity } from './subjectIdentity';

export interface ErasureResult {
  records: number;
  packagesDeleted: number;
}

interface PartitionRow {
  rowKey: string;
  deviceKey?: string;
  blobName?: string;
}

export class SubjectErasure {
  constructor(
    private readonly subjectKeys: SubjectKeyStore,
    private readonly identity: SubjectIdentity,
    private readonly restrictions: RestrictionStore,
    private readonly counts: RecordCounts,
  ) {}

  async erase(tenant: TenantScope, subjectKey: string): Promise<ErasureResult> {
    await this.subjectKeys.destroy(tenant, subjectKey);
    const records = await tenant.account.table(TABLES.records);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const rows = await listPartition(records, partitionKey);
    const recordRows = rows.filter((row) => !row.rowKey.startsWith('~'));
    const own = (prefix: string) => rows.filter((row) => row.rowKey.startsWith(prefix));
    // Alias subjects merged into this one keep their key until now: copies of what they held (backups)
    // become unreadable with it.
    const merged = own(subjectRows.mergedPrefix).map((row) =>
      row.rowKey.slice(subjectRows.mergedPrefix.length),
    );
    for (const aliasSubject of merged) await this.subjectKeys.destroy(tenant, aliasSubject);

    let packagesDeleted = 0;
    const container = await tenant.account.container(CONTAINERS.exportPackages);
    for (const row of own(subjectRows.packagePrefix())) {
      if (!row.blobName) continue;
      const deleted = await container.deleteBlob(row.blobName, { deleteSnapshots: 'include' }).then(
        () => true,
        (error: { statusCode?: number }) => {
          if (error.statusCode === 404) return false;
          throw error;
        },
      );
      if (deleted) packagesDeleted++;
    }

    const lookups = await tenant.account.table(TABLES.recordLookup);
    // A record-id lookup goes while it names this subject; one of a record that moved on names another.
    await deleteVersions(
      lookups,
      await lookupsNaming(
        lookups,
        tenant.tenantId,
        recordRows.map((row) => ({ recordKey: recordKeyOfRow(row.rowKey), subjectKey })),
      ),
    );
    await submitInBatches(
      lookups,
      recordRows.flatMap((row): TransactionAction[] =>
        row.deviceKey
          ? [['delete', lookupKeys.device(tenant.tenantId, row.deviceKey, subjectKey, row.rowKey)]]
          : [],
      ),
    );
    // Category by category, so the counters lose exactly what went (rows already gone are not counted).
    let erased = 0;
    for (const [category, rows] of byCategory(recordRows)) {
      const gone = await submitInBatches(
        records,
        rows.map((row): TransactionAction => ['delete', { partitionKey, rowKey: row.rowKey }]),
      );
      await this.counts.add(tenant, { [category]: -gone });
      erased += gone;
    }
    await this.restrictions.lift(tenant, subjectKey);
    // The merged alias subjects' redirects name this subject: they go too.
    for (const aliasSubject of merged) {
      await submitInBatches(records, [
        [
          'delete',
          { partitionKey: recordsPartition(tenant.tenantId, aliasSubject), rowKey: subjectRows.linked },
        ],
      ]);
    }
    const rest = rows.filter(
      (row) => row.rowKey.startsWith('~') && !row.rowKey.startsWith(subjectRows.identifierPrefix),
    );
    await submitInBatches(
      records,
      rest.map((row): TransactionAction => ['delete', { partitionKey, rowKey: row.rowKey }]),
    );
    // Last: the aliases that point to the subject, and the list of them.
    await this.identity.forget(tenant, subjectKey);
    return { records: erased, packagesDeleted };
  }
}

function byCategory(rows: readonly PartitionRow[]): Map<RecordCategory, PartitionRow[]> {
  const groups = new Map<RecordCategory, PartitionRow[]>();
  for (const row of rows) {
    const category = categoryOfRow(row.rowKey) as RecordCategory;
    groups.set(category, [...(groups.get(category) ?? []), row]);
  }
  return groups;
}

async function listPartition(records: TableClient, partitionKey: string): Promise<PartitionRow[]> {
  const rows: PartitionRow[] = [];
  for await (const row of records.listEntities<{ deviceKey?: string; blobName?: string }>({
    queryOptions: {
      filter: `PartitionKey eq '${partitionKey.replaceAll("'", "''")}'`,
      select: ['RowKey', 'deviceKey', 'blobName'],
    },
  })) {
    rows.push({
      rowKey: row.rowKey!,
      ...(row.deviceKey ? { deviceKey: row.deviceKey } : {}),
      ...(row.blobName ? { blobName: row.blobName } : {}),
    });
  }
  return rows;
}
