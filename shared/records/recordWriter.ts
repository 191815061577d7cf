// Writing record rows with what depends on them: each stored version's expiry entries carry its ETag, so a
// retention delete removes exactly the version it was due for (SPEC §6), and the device lookup follows the
// row. Every writer of record rows (events, merges, rectification, soft deletion) goes through here.
import { AsyncLocalStorage } from 'node:async_hooks';

import { odata, type TableClient, type TransactionAction } from '@azure/data-tables';

import type { SubjectKeyStore } from '../records/subjectKeys';
import type { RecordCategory } from '../vocabulary/categories';
import type { TenantScope } from '../residency/tenantDirectory';
import { type ExpiryEntry, type ExpiryIndex, expiryKeys, recordExpiries } from '../retention/expiryIndex';
import { TABLES } from '../storage/names';
import { BATCH_LIMIT, submitInBatches } from '../storage/tableBatches';
import type { RecordCounts } from './recordCounts';
import { lookupKeys, recordsPartition } from './recordKeys';
import {
  deleteIfPresent,
  deletionFor,
  isStatus,
  readRow,
  type RecordEntity,
  type RowVersion,
  type SealedContent,
  sealContent,
  versionOf,
  type WriteOutcome,
  writeIfNewer,
} from './recordRows';

export interface RecordVersion {
  category: RecordCategory;
  rowKey: string;
  occurredAt: string;
  deletedAt?: string | undefined;
  deviceKey?: string | undefined;
  content: SealedContent;
}

/** A stored row as the writer needs it to change or remove it. */
export type StoredRow = Pick<
  RecordEntity,
  'rowKey' | 'category' | 'occurredAt' | 'deletedAt' | 'deviceKey' | 'located'
> & {
  etag: string;
};

/**
 * What the writes of a batch leave to its end: expiry entries to add or remove and device lookups to write,
 * each key's last change only (a batch may write two versions of one record).
 */
interface Gathered {
  tenant: TenantScope;
  expiry: Map<string, { entry: ExpiryEntry; add: boolean }>;
  devices: Map<string, { partitionKey: string; rowKey: string; subjectKey: string }>;
}

export class RecordWriter {
  private readonly gathering = new AsyncLocalStorage<Gathered>();

  constructor(
    private readonly subjectKeys: SubjectKeyStore,
    private readonly expiry: ExpiryIndex,
    private readonly counts: RecordCounts,
  ) {}

  /**
   * Runs the writes of a batch of one tenant with what depends on its rows gathered: the expiry entries and
   * device lookups (one transaction per partition at the end instead of one request per record) and the
   * counts (one change). They are written at the end, also when an item failed. A process that stops
   * before leaves rows without them: the redelivery writes the same versions again, which finishes them
   * (a same version's entries and lookup are always written), as after a crash between a row and its
   * entries; the counts stay as they were.
   */
  async batch<T>(tenant: TenantScope, work: () => Promise<T>): Promise<T> {
    const gathered: Gathered = { tenant, expiry: new Map(), devices: new Map() };
    return this.counts.gathered(async () => {
      try {
        return await this.gathering.run(gathered, work);
      } finally {
        await this.flush(gathered);
      }
    });
  }

  /**
   * Writes a version into the subject's partition unless a newer one is there (a deletion that still
   * covers it is kept); its expiry entries are re-keyed to the new version and those of the replaced
   * dates removed; the device lookup follows the row.
   */
  async write(
    tenant: TenantScope,
    subjectKey: string,
    version: RecordVersion,
    /** The record lookup says the row is at this subject already (a replacement, usually). */
    likelyStored = false,
  ): Promise<WriteOutcome> {
    const dataKey = await this.subjectKeys.getOrCreate(tenant, subjectKey);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const entity: RecordEntity = {
      partitionKey,
      rowKey: version.rowKey,
      category: version.category,
      occurredAt: version.occurredAt,
      ...(version.deletedAt ? { deletedAt: version.deletedAt } : {}),
      ...(version.deviceKey ? { deviceKey: version.deviceKey } : {}),
      sealed: sealContent(dataKey, version.content, partitionKey, version.rowKey),
    };
    const written = await writeIfNewer(await this.records(tenant), entity, likelyStored);
    await this.written(tenant, subjectKey, version, written);
    return written;
  }

  /**
   * The rows of one subject's records as stored now (dates, device and ETag), by RowKey; absent ones left
   * out. One query per 14 rows (a filter holds at most 15 comparisons on Azure).
   */
  async current(
    tenant: TenantScope,
    subjectKey: string,
    rowKeys: readonly string[],
  ): Promise<Map<string, StoredRow>> {
    const records = await this.records(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const found = new Map<string, StoredRow>();
    for (let i = 0; i < rowKeys.length; i += ROWS_PER_QUERY) {
      const keys = rowKeys.slice(i, i + ROWS_PER_QUERY);
      const filter =
        odata`PartitionKey eq ${partitionKey}` +
        ` and (${keys.map((rowKey) => odata`RowKey eq ${rowKey}`).join(' or ')})`;
      for await (const row of records.listEntities<RecordEntity>({
        queryOptions: {
          filter,
          select: ['RowKey', 'category', 'occurredAt', 'deletedAt', 'deviceKey', 'located'],
        },
      })) {
        found.set(row.rowKey!, {
          rowKey: row.rowKey!,
          category: row.category,
          occurredAt: row.occurredAt,
          ...(row.deletedAt ? { deletedAt: row.deletedAt } : {}),
          ...(row.deviceKey ? { deviceKey: row.deviceKey } : {}),
          ...(row.located === true ? { located: true } : {}),
          etag: row.etag!,
        });
      }
    }
    return found;
  }

  /**
   * Writes newer versions of one subject's records in one entity-group transaction, each against its row as
   * read (`current`): created where there was none, replaced at its ETag where it is older (a deletion of it
   * that still covers the new version is kept). Then as write() does for each: counts, expiry entries,
   * device lookups. Undefined when storage refused the transaction because a row changed meanwhile: nothing
   * was written, and the caller writes them one by one.
   */
  async writeTogether(
    tenant: TenantScope,
    subjectKey: string,
    items: readonly {
      version: RecordVersion;
      current?: StoredRow | undefined;
      /** The replacement keeps or gets `located` (RecordEntity); only for a row replaced, never created. */
      located?: boolean;
    }[],
  ): Promise<WriteOutcome[] | undefined> {
    if (items.length === 0) return [];
    if (items.length > BATCH_LIMIT) throw new Error(`At most ${BATCH_LIMIT} rows go in one transaction.`);
    const dataKey = await this.subjectKeys.getOrCreate(tenant, subjectKey);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const entities = items.map(({ version, current, located }): RecordEntity => {
      if (current && current.occurredAt >= version.occurredAt) {
        throw new Error('writeTogether writes only versions newer than the stored ones.');
      }
      if (located && !current) throw new Error('A created row is never located.');
      const deletedAt = deletionFor(version.occurredAt, [version.deletedAt, current?.deletedAt]);
      return {
        partitionKey,
        rowKey: version.rowKey,
        category: version.category,
        occurredAt: version.occurredAt,
        ...(deletedAt ? { deletedAt } : {}),
        ...(version.deviceKey ? { deviceKey: version.deviceKey } : {}),
        sealed: sealContent(dataKey, version.content, partitionKey, version.rowKey),
        ...(located ? { located: true } : {}),
      };
    });
    let response;
    try {
      response = await (
        await this.records(tenant)
      ).submitTransaction(
        entities.map((entity, n): TransactionAction => {
          const current = items[n]!.current;
          const row = { ...entity };
          return current ? ['update', row, 'Replace', { etag: current.etag }] : ['create', row];
        }),
      );
    } catch (error) {
      if (isStatus(error, 409) || isStatus(error, 412) || isStatus(error, 404)) return undefined;
      throw error;
    }
    const outcomes: WriteOutcome[] = [];
    for (const [n, { version, current }] of items.entries()) {
      const entity = entities[n]!;
      // The transaction's own ETag: a row read again could be another writer's newer version.
      const etag = response.subResponses[n]?.etag;
      const written: WriteOutcome = {
        outcome: 'stored',
        stored: versionOf(entity, etag),
        ...(current ? { replaced: { ...versionOf(current, current.etag), ...deviceOf(current) } } : {}),
      };
      await this.written(tenant, subjectKey, { ...version, deletedAt: entity.deletedAt }, written);
      outcomes.push(written);
    }
    return outcomes;
  }

  /** What follows a row's write: its count, its expiry entries re-keyed, its device lookups. */
  private async written(
    tenant: TenantScope,
    subjectKey: string,
    version: RecordVersion,
    written: WriteOutcome,
  ): Promise<void> {
    if (written.outcome === 'stale') return;
    // Counted once, when the row is created; a replacement or the same version again changes no count.
    if (written.outcome === 'stored' && !written.replaced) {
      await this.counts.add(tenant, { [version.category]: 1 });
    }
    // Also for the same version again: a write that stopped before its entries finishes them now.
    const now = this.entriesOf(
      subjectKey,
      version.rowKey,
      version.category,
      version.deviceKey,
      written.stored,
    );
    const before =
      written.outcome === 'stored' && written.replaced
        ? this.entriesOf(
            subjectKey,
            version.rowKey,
            version.category,
            written.replaced.deviceKey,
            written.replaced,
          )
        : [];
    const removed = withoutThose(before, now, tenant.tenantId);
    const gathered = this.gatheredFor(tenant);
    const lookups = await this.lookups(tenant);
    if (gathered) {
      for (const entry of now) gathered.expiry.set(expiryKeyOf(tenant, entry), { entry, add: true });
      for (const entry of removed) gathered.expiry.set(expiryKeyOf(tenant, entry), { entry, add: false });
    } else {
      await this.expiry.replace(tenant, now, removed);
    }
    if (version.deviceKey) {
      const device = lookupKeys.device(tenant.tenantId, version.deviceKey, subjectKey, version.rowKey);
      if (gathered)
        gathered.devices.set(`${device.partitionKey}\n${device.rowKey}`, { ...device, subjectKey });
      else await lookups.upsertEntity({ ...device, subjectKey }, 'Replace');
    }
    const oldDevice = written.outcome === 'stored' ? written.replaced?.deviceKey : undefined;
    if (oldDevice && oldDevice !== version.deviceKey) {
      const device = lookupKeys.device(tenant.tenantId, oldDevice, subjectKey, version.rowKey);
      await deleteIfPresent(lookups, device.partitionKey, device.rowKey);
    }
  }

  /**
   * Soft-deletes rows of one subject at the versions given (ETag-guarded, 100 per transaction) and re-keys
   * their expiry entries. Returns the rows that were marked; a row that changed meanwhile is left out.
   */
  async markDeleted(
    tenant: TenantScope,
    subjectKey: string,
    changes: readonly { row: StoredRow; deletedAt: string }[],
  ): Promise<StoredRow[]> {
    const records = await this.records(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const marked: { row: StoredRow; deletedAt: string; etag: string }[] = [];
    for (let i = 0; i < changes.length; i += BATCH_LIMIT) {
      const slice = changes.slice(i, i + BATCH_LIMIT);
      const actions = slice.map(({ row, deletedAt }): TransactionAction => [
        'update',
        { partitionKey, rowKey: row.rowKey, deletedAt },
        'Merge',
        { etag: row.etag },
      ]);
      try {
        const response = await records.submitTransaction(actions);
        for (const [n, change] of slice.entries()) {
          const etag =
            response.subResponses[n]?.etag ??
            (await readRow<RecordEntity>(records, partitionKey, change.row.rowKey))?.etag;
          if (etag) marked.push({ ...change, etag });
        }
      } catch (error) {
        if (!(isStatus(error, 412) || isStatus(error, 404))) throw error;
        // Some row changed since it was read: each is marked on its own, the changed ones left.
        for (const change of slice) {
          try {
            const { etag } = await records.updateEntity(
              { partitionKey, rowKey: change.row.rowKey, deletedAt: change.deletedAt },
              'Merge',
              { etag: change.row.etag },
            );
            marked.push({ ...change, etag: etag! });
          } catch (single) {
            if (!(isStatus(single, 412) || isStatus(single, 404))) throw single;
          }
        }
      }
    }
    const entries = marked.flatMap(({ row, deletedAt, etag }) => ({
      now: this.entriesOf(subjectKey, row.rowKey, row.category, row.deviceKey, { ...row, deletedAt, etag }),
      before: this.entriesOf(subjectKey, row.rowKey, row.category, row.deviceKey, row),
    }));
    const now = entries.flatMap((e) => e.now);
    await this.expiry.add(tenant, now);
    await this.expiry.remove(
      tenant,
      withoutThose(
        entries.flatMap((e) => e.before),
        now,
        tenant.tenantId,
      ),
    );
    return marked.map(({ row, deletedAt, etag }) => ({ ...row, deletedAt, etag }));
  }

  /**
   * Writes the expiry entries of rows as they are stored (idempotent): a change that was made but whose
   * entries a crash kept from being written gets them when it is delivered again.
   */
  async ensureEntries(tenant: TenantScope, subjectKey: string, rows: readonly StoredRow[]): Promise<void> {
    await this.expiry.add(
      tenant,
      rows.flatMap((row) => this.entriesOf(subjectKey, row.rowKey, row.category, row.deviceKey, row)),
    );
  }

  /** Re-seals a row's content in place (rectification), guarded by its version; false if it changed. */
  async reseal(
    tenant: TenantScope,
    subjectKey: string,
    row: StoredRow,
    dataKey: Buffer,
    content: SealedContent,
  ): Promise<boolean> {
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    try {
      const { etag } = await (
        await this.records(tenant)
      ).updateEntity(
        { partitionKey, rowKey: row.rowKey, sealed: sealContent(dataKey, content, partitionKey, row.rowKey) },
        'Merge',
        { etag: row.etag },
      );
      await this.expiry.add(
        tenant,
        this.entriesOf(subjectKey, row.rowKey, row.category, row.deviceKey, versionOf(row, etag)),
      );
      return true;
    } catch (error) {
      if (isStatus(error, 412) || isStatus(error, 404)) return false;
      throw error;
    }
  }

  /**
   * Removes a row that moved elsewhere, at the version read, with its expiry entries and device lookup —
   * those first, so a crash never leaves them behind a row that is gone. False if the row changed meanwhile:
   * it stays, and what depends on its version now is put back.
   */
  async remove(tenant: TenantScope, subjectKey: string, row: StoredRow): Promise<boolean> {
    const records = await this.records(tenant);
    const lookups = await this.lookups(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    await this.expiry.remove(
      tenant,
      this.entriesOf(subjectKey, row.rowKey, row.category, row.deviceKey, row),
    );
    if (row.deviceKey) {
      const device = lookupKeys.device(tenant.tenantId, row.deviceKey, subjectKey, row.rowKey);
      await submitInBatches(lookups, [['delete', device]]);
    }
    try {
      await records.deleteEntity(partitionKey, row.rowKey, { etag: row.etag });
      await this.counts.add(tenant, { [row.category]: -1 });
      return true;
    } catch (error) {
      if (isStatus(error, 404)) return true;
      if (!isStatus(error, 412)) throw error;
    }
    const current = await readRow<RecordEntity>(records, partitionKey, row.rowKey);
    if (current) {
      const version = versionOf(current, current.etag);
      await this.expiry.add(
        tenant,
        this.entriesOf(subjectKey, current.rowKey, current.category, current.deviceKey, version),
      );
      if (current.deviceKey) {
        const device = lookupKeys.device(tenant.tenantId, current.deviceKey, subjectKey, current.rowKey);
        await lookups.upsertEntity({ ...device, subjectKey }, 'Replace');
      }
    }
    return false;
  }

  /** The batch this write is part of, if it is one of this tenant's. */
  private gatheredFor(tenant: TenantScope): Gathered | undefined {
    const gathered = this.gathering.getStore();
    return gathered?.tenant.tenantId === tenant.tenantId ? gathered : undefined;
  }

  /** Writes what a batch gathered: entries to add before those to remove, device lookups per device. */
  private async flush(gathered: Gathered): Promise<void> {
    const changes = [...gathered.expiry.values()];
    await this.expiry.replace(
      gathered.tenant,
      changes.filter((c) => c.add).map((c) => c.entry),
      changes.filter((c) => !c.add).map((c) => c.entry),
    );
    if (gathered.devices.size > 0) {
      await submitInBatches(
        await this.lookups(gathered.tenant),
        [...gathered.devices.values()].map((device): TransactionAction => ['upsert', device, 'Replace']),
      );
    }
  }

  /** The expiry entries of one stored version of a row (with its ETag). */
  private entriesOf(
    subjectKey: string,
    rowKey: string,
    category: string,
    deviceKey: string | undefined,
    version: Pick<RowVersion, 'occurredAt' | 'deletedAt'> & { etag?: string },
  ): ExpiryEntry[] {
    return recordExpiries(
      { category: category as RecordCategory, occurredAt: version.occurredAt, deletedAt: version.deletedAt },
      { subjectKey, recordRow: rowKey, deviceKey, ...(version.etag ? { etag: version.etag } : {}) },
    );
  }

  private records(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.records);
  }

  private lookups(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.recordLookup);
  }
}

/** Row keys one query asks for: Azure allows 15 comparisons in a filter, one goes to the partition. */
const ROWS_PER_QUERY = 14;

const deviceOf = (row: StoredRow) => (row.deviceKey ? { deviceKey: row.deviceKey } : {});

const expiryKeyOf = (tenant: TenantScope, entry: ExpiryEntry) => {
  const keys = expiryKeys(tenant.tenantId, entry);
  return `${keys.partitionKey}\n${keys.rowKey}`;
};

/** Entries of `before` that are not in `after`, by their keys. */
function withoutThose(before: ExpiryEntry[], after: ExpiryEntry[], tenantId: string): ExpiryEntry[] {
  const kept = new Set(after.map((entry) => expiryKeys(tenantId, entry).rowKey));
  return before.filter((entry) => !kept.has(expiryKeys(tenantId, entry).rowKey));
}
