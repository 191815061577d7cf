// Records held per category of a tenant, kept as counters so that the privacy report (SPEC §9) reads a few
// rows whatever the number of records. Table `recordCounts` of the tenant's geography: PartitionKey
// `${tenantId}_counts`, one row per shard (`shard_00`..`shard_15`) with a number per category (`n_<category>`);
// the tenant's count of a category is the sum over its shards. A change is made under its shard's ETag, so
// concurrent writers never lose each other's changes. The changes an instance makes side by side each take a
// shard of their own (the first free one), and one that meets another instance's write moves on to the next,
// so concurrent writers rarely meet, while a tenant written one change at a time keeps a single row. Within
// an instance a tenant's changes are group-committed: one write in flight, the changes meanwhile in the next.
//
// Every place that creates or deletes a record row reports here (RecordWriter for writes and moves between
// subjects, RecordRetention for purges and anonymisation, SubjectErasure); a passive deletion removes the
// counters with every other row of the tenant, and a residency move copies them. Redelivered work does not
// count twice: only a row actually created or deleted is counted. A process that stops between a record's
// write and its count leaves that one change uncounted: the counters are a report figure, not a ledger.
import { AsyncLocalStorage } from 'node:async_hooks';

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

/** Changes gathered while a batch is applied, per tenant (see `gathered`). */
type Gathered = Map<string, { tenant: TenantScope; deltas: CategoryDeltas }>;

export class RecordCounts {
  private readonly gathering = new AsyncLocalStorage<Gathered>();

  /** Per tenant: the changes waiting for the next write of its counters, and when that write is done. */
  private readonly queued = new Map<string, { deltas: CategoryDeltas; done: Promise<void> }>();
  /** Per tenant: the last write of its counters this instance started (settled, never rejecting). */
  private readonly writing = new Map<string, Promise<void>>();

  /** How many changes of this instance are at each shard right now: a change takes the least busy. */
  private readonly busy: number[] = new Array<number>(COUNT_SHARDS).fill(0);

  /**
   * Runs `work` with the counts it changes gathered, and writes them once at its end, failed or not (a
   * batch of records costs one counter change, not one per record). A process that stops within `work`
   * leaves the batch's changes uncounted, as one that stops after a record's write leaves that one.
   */
  async gathered<T>(work: () => Promise<T>): Promise<T> {
    const gathered: Gathered = new Map();
    try {
      return await this.gathering.run(gathered, work);
    } finally {
      for (const { tenant, deltas } of gathered.values()) await this.add(tenant, deltas);
    }
  }

  /** Adds (or, negative, takes away) records per category. */
  async add(tenant: TenantScope, deltas: CategoryDeltas): Promise<void> {
    const gathering = this.gathering.getStore();
    if (gathering) {
      const gathered = gathering.get(tenant.tenantId) ?? { tenant, deltas: {} };
      for (const [category, n] of Object.entries(deltas) as [RecordCategory, number][]) {
        gathered.deltas[category] = (gathered.deltas[category] ?? 0) + n;
      }
      gathering.set(tenant.tenantId, gathered);
      return;
    }
    return this.commit(tenant, deltas);
  }

  /**
   * Group commit: a tenant's changes from concurrent work of this instance (the queue trigger runs up to
   * `batchSize` messages at once) wait while one write of its counters is in flight and then go together in
   * the next; each caller returns once the write holding its change is stored (or fails with it).
   */
  private commit(tenant: TenantScope, deltas: CategoryDeltas): Promise<void> {
    const id = tenant.tenantId;
    let next = this.queued.get(id);
    if (!next) {
      const queued = { deltas: {} as CategoryDeltas, done: Promise.resolve() };
      const previous = this.writing.get(id) ?? Promise.resolve();
      queued.done = previous.then(() => {
        this.queued.delete(id); // changes from now on go in the write after this one
        return this.write(tenant, queued.deltas);
      });
      const settled = queued.done.catch(() => undefined);
      this.writing.set(id, settled);
      void settled.then(() => {
        if (this.writing.get(id) === settled) this.writing.delete(id);
      });
      this.queued.set(id, queued);
      next = queued;
    }
    for (const [category, n] of Object.entries(deltas) as [RecordCategory, number][]) {
      next.deltas[category] = (next.deltas[category] ?? 0) + n;
    }
    return next.done;
  }

  /** Writes changes into a shard under its ETag (the least busy; the next on a concurrent change). */
  private async write(tenant: TenantScope, deltas: CategoryDeltas): Promise<void> {
    const changes = Object.entries(deltas).filter(([, n]) => n !== undefined && n !== 0) as [
      RecordCategory,
      number,
    ][];
    if (changes.length === 0) return;
    const table = await this.table(tenant);
    const partitionKey = countsPartition(tenant.tenantId);
    let shard = this.take(0);
    try {
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
          // Another writer (another instance) changed or created this shard meanwhile: the next free one.
          if (!(isStatus(error, 412) || isStatus(error, 409))) throw error;
        }
        this.release(shard);
        shard = this.take(shard + 1);
      }
      throw new Error('Record counters: every shard kept changing under this update.');
    } finally {
      this.release(shard);
    }
  }

  /** The least busy shard, the first from `from` on (wrapping) among equals; held until released. */
  private take(from: number): number {
    let chosen = from % COUNT_SHARDS;
    for (let i = 1; i < COUNT_SHARDS; i++) {
      const shard = (from + i) % COUNT_SHARDS;
      if (this.busy[shard]! < this.busy[chosen]!) chosen = shard;
    }
    this.busy[chosen]!++;
    return chosen;
  }

  private release(shard: number): void {
    this.busy[shard]!--;
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
