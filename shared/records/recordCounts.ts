// Records held per category of a tenant, kept as counters so that the privacy report (SPEC §9) reads a few
// rows whatever the number of records. Table `recordCounts` of the tenant's geography: PartitionKey
// `${tenantId}_counts`, one row per shard (`shard_00`..`shard_15`) with a number per category (`n_<category>`);
// the tenant's count of a category is the sum over its shards. A change is made under its shard's ETag, so
// concurrent writers never lose each other's changes; a writer that meets another moves on to the next shard
// and starts there from then on, so writers that run side by side spread over the shards while a tenant
// written one change at a time keeps a single row.
//
// Every place that creates or deletes a record row reports here (RecordWriter for writes and moves between
// subjects, RecordRetention for purges and anonymisation, SubjectErasure); a passive deletion removes the
// counters with every other row of the tenant, and a residency move copies them. Redelivered work does not
// count twice: only a row actually created or deleted is counted. A process that stops between a record's
// write and its count leaves that one change uncounted: the counters are a report figure, not a ledger.
import type { TableClient } from '@azure/data-tables';

import type { TenantScope } from '../residency/tenantDirectory';
import { orAbsent } from '../storage/absent';
import { TABLES } from '../storage/names';
import { RECORD_CATEGORIES, type RecordCategory } from '../vocabulary/categories';
import { isStatus } from './recordRows';

export type CategoryDeltas = Partial<Record<RecordCategory, number>>;

export const COUNT_SHARDS = 16;
const ATTEMPTS = 3 * COUNT_SHARDS;

export const countsPartition = (tenantId: string): string => `${tenantId}_counts`;
const shardRow = (shard: number) => `shard_${String(shard).padStart(2, '0')}`;
const column = (category: RecordCategory) => `n_${category}`;

type ShardEntity = Record<string, unknown> & { partitionKey: string; rowKey: string; etag?: string };

export class RecordCounts {
  /** Where this instance starts: shard 0 until it meets a concurrent writer, then the shard after. */
  private start = 0;

  /** Adds (or, negative, takes away) records per category. */
  async add(tenant: TenantScope, deltas: CategoryDeltas): Promise<void> {
    const changes = Object.entries(deltas).filter(([, n]) => n !== undefined && n !== 0) as [
      RecordCategory,
      number,
    ][];
    if (changes.length === 0) return;
    const table = await this.table(tenant);
    const partitionKey = countsPartition(tenant.tenantId);
    let shard = this.start;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const rowKey = shardRow(shard);
      const current = await orAbsent(table.getEntity<ShardEntity>(partitionKey, rowKey));
      const next: ShardEntity = { partitionKey, rowKey };
      for (const [category, n] of changes) next[column(category)] = numberIn(current, category) + n;
      try {
        if (current) await table.updateEntity(next, 'Merge', { etag: current.etag! });
        else await table.createEntity(next);
        return;
      } catch (error) {
        // Another writer changed (or created) this shard meanwhile: the next shard, read afresh.
        if (!(isStatus(error, 412) || isStatus(error, 409))) throw error;
      }
      shard = (shard + 1) % COUNT_SHARDS;
      this.start = shard;
    }
    throw new Error('Record counters: every shard kept changing under this update.');
  }

  /** Records per category (every category, 0 where none): one query of at most COUNT_SHARDS rows. */
  async totals(tenant: TenantScope): Promise<Record<RecordCategory, number>> {
    const totals = Object.fromEntries(RECORD_CATEGORIES.map((c) => [c, 0])) as Record<RecordCategory, number>;
    const table = await this.table(tenant);
    const partitionKey = countsPartition(tenant.tenantId);
    for await (const row of table.listEntities<ShardEntity>({
      queryOptions: { filter: `PartitionKey eq '${partitionKey}'` },
    })) {
      for (const category of RECORD_CATEGORIES) totals[category] += numberIn(row, category);
    }
    return totals;
  }

  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.recordCounts);
  }
}

function numberIn(row: ShardEntity | undefined, category: RecordCategory): number {
  const value = row?.[column(category)];
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** Deltas of -1 per row, by the category each row key names. */
export function removedRows(rowKeys: Iterable<string>): CategoryDeltas {
  const deltas: CategoryDeltas = {};
  for (const rowKey of rowKeys) {
    const category = rowKey.slice(0, rowKey.indexOf('_')) as RecordCategory;
    deltas[category] = (deltas[category] ?? 0) - 1;
  }
  return deltas;
}
