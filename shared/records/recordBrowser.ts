// A tenant's records read page by page across its subjects, decrypted with each subject's data key: what an
// operator under an access grant reads (SPEC §9). Keyset paging over (partition, row) keeps every page one
// query, whatever the tenant's size; the anonymous partition and each subject's own rows (`~…`) are never
// returned, nor the records of subjects in `exclude` (restricted ones).
import { odata } from '@azure/data-tables';
import { z } from 'zod';

import {
  listScope,
  type Page,
  type PageRequest,
  readContinuation,
  issueContinuation,
  tableKeySchema,
} from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import type { RecordCategory } from '../vocabulary/categories';
import type { PersonalDataRecord } from './personalDataRecord';
import { recordsPartition } from './recordKeys';
import { anonymousPartition } from './recordRetention';
import { RECORD_COLUMNS, type RecordEntity, toRecord } from './recordRows';
import type { SubjectKeyStore } from './subjectKeys';

export interface BrowsedRecord extends PersonalDataRecord {
  /** The pseudonymous subject reference (the subject key) the record belongs to. */
  subjectRef: string;
}

export interface BrowseFilter {
  categories: readonly RecordCategory[];
  /** One subject only. */
  subjectKey?: string | undefined;
  /** Subjects whose records are never returned (restricted processing). */
  exclude: ReadonlySet<string>;
}

const position = z.strictObject({ partitionKey: tableKeySchema, rowKey: tableKeySchema });

export class RecordBrowser {
  constructor(private readonly subjectKeys: SubjectKeyStore) {}

  async page(tenant: TenantScope, filter: BrowseFilter, page: PageRequest): Promise<Page<BrowsedRecord>> {
    const scope = listScope(
      TABLES.records,
      `${tenant.tenantId}|${filter.subjectKey ?? '*'}|${[...filter.categories].sort().join(',')}`,
    );
    const after = readContinuation(page.continuation, scope, position);
    const table = await tenant.account.table(TABLES.records);
    const items: BrowsedRecord[] = [];
    let last: { partitionKey: string; rowKey: string } | undefined;
    const rows = table
      .listEntities<RecordEntity>({
        queryOptions: {
          filter: this.filterOf(tenant, filter, after),
          select: ['PartitionKey', ...RECORD_COLUMNS],
        },
      })
      .byPage({ maxPageSize: page.top + 1 });
    let more = false;
    for await (const batch of rows) {
      for (const row of batch) {
        if (items.length === page.top) {
          more = true;
          break;
        }
        last = { partitionKey: row.partitionKey, rowKey: row.rowKey };
        const subjectKey = row.partitionKey.slice(tenant.tenantId.length + 1);
        if (filter.exclude.has(subjectKey)) continue;
        const dataKey = await this.subjectKeys.find(tenant, subjectKey);
        if (!dataKey) continue; // erased: nothing of it opens any more
        items.push({ ...toRecord(row, dataKey, row.partitionKey), subjectRef: subjectKey });
      }
      if (more) break;
    }
    // A page cut short by excluded rows still continues after the last row it looked at.
    return more && last ? { items, continuation: issueContinuation(scope, last) } : { items };
  }

  private filterOf(
    tenant: TenantScope,
    filter: BrowseFilter,
    after: { partitionKey: string; rowKey: string } | undefined,
  ): string {
    const partitions = filter.subjectKey
      ? odata`PartitionKey eq ${recordsPartition(tenant.tenantId, filter.subjectKey)}`
      : odata`PartitionKey ge ${`${tenant.tenantId}_`} and PartitionKey lt ${`${tenant.tenantId}\``} and PartitionKey ne ${anonymousPartition(tenant.tenantId)}`;
    const categories = filter.categories
      .map((category) => odata`(RowKey ge ${`${category}_`} and RowKey lt ${`${category}\``})`)
      .join(' or ');
    const conditions = [partitions, `(${categories})`];
    if (after) {
      conditions.push(
        odata`(PartitionKey gt ${after.partitionKey} or (PartitionKey eq ${after.partitionKey} and RowKey gt ${after.rowKey}))`,
      );
    }
    return conditions.join(' and ');
  }
}
