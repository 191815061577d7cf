// What the retention purge does to records (SPEC §6): delete the version an expiry entry was made for — a
// record replaced or revived meanwhile stays — and anonymise alerts to the fields that name no one.
import type { TableClient, TransactionAction } from '@azure/data-tables';

import { exactHmacWith } from '../crypto/pseudonymizer';
import type { SubjectKeyStore } from '../records/subjectKeys';
import type { RecordCategory } from '../vocabulary/categories';
import type { TenantScope } from '../residency/tenantDirectory';
import { anonymiseAlert } from '../retention/alertAnonymisation';
import {
  anonymousAlertExpiry,
  type ExpiryIndex,
  type RecordExpiryAction,
  recordExpiries,
} from '../retention/expiryIndex';
import { TABLES } from '../storage/names';
import { deleteVersions, type RowKeys, type RowVersion, submitInBatches } from '../storage/tableBatches';
import type { RecordCounts } from './recordCounts';
import { categoryOfRow, lookupKeys, recordKeyOfRow, recordsPartition } from './recordKeys';
import { deletionsOf, lookupsNaming, pointRecordLookup, readRecordLookup } from './recordLookups';
import { clearLocated, deletionFor, isStatus, readRow, type RecordEntity, toRecord } from './recordRows';
import type { RecordWriter } from './recordWriter';

/** A record version the purge acts on: where it is, and the ETag of the version that fell due. */
export interface RecordTarget {
  subjectKey: string;
  recordRow: string;
  deviceKey?: string;
  /** Absent only in entries written before versions were kept: such a delete is unconditional. */
  etag?: string;
  /** The rule that fell due (the entry's action and day), to judge a row whose ETag changed since. */
  due?: { action: RecordExpiryAction; day: string };
}

/**
 * Whether a row whose ETag is no longer the entry's still falls due by the entry's rule: its dates give the
 * same action on the same day. A residency move copies every row (new ETags, same dates); a redelivered
 * event may write the same dates again. A row written with other dates (replaced, revived, deleted) has its
 * own entries and stays. Pure.
 */
export function stillDue(
  row: Pick<RecordEntity, 'category' | 'occurredAt' | 'deletedAt'>,
  target: RecordTarget,
): boolean {
  const { due } = target;
  if (!due) return false;
  return recordExpiries(
    { category: row.category as RecordCategory, occurredAt: row.occurredAt, deletedAt: row.deletedAt },
    target,
  ).some((entry) => entry.kind === 'record' && entry.action === due.action && entry.day === due.day);
}

export type CategoryCounts = Partial<Record<RecordCategory, number>>;

interface AnonymousEntity {
  partitionKey: string;
  rowKey: string;
  category: string;
  occurredAt: string;
  anonymised: string;
}

const keyOf = (row: RowKeys) => `${row.partitionKey}\n${row.rowKey}`;

/** Anonymised alerts of a tenant: no subject, no device, no identifiers. */
export const anonymousPartition = (tenantId: string) => `${tenantId}_anonymous`;

export class RecordRetention {
  constructor(
    private readonly subjectKeys: SubjectKeyStore,
    private readonly expiry: ExpiryIndex,
    private readonly recordCounts: RecordCounts,
    /** Marks rows deleted (a deletion found while the purge had their lookup away). */
    private readonly writer: RecordWriter,
  ) {}

  /**
   * Deletes the versions named, in entity-group transactions guarded by their ETags; a row written again
   * since its entry was made is left with its lookups. The lookups go first, so that a record written again
   * during the purge never ends up without them; a record-id lookup only while it names the target's subject
   * (one point read each). Returns deletions per category.
   */
  async deleteRecords(tenant: TenantScope, targets: readonly RecordTarget[]): Promise<CategoryCounts> {
    // One target per row at a time (a short-lived row soft-deleted on the day it occurred has two entries
    // due together): a transaction refuses a row twice. The others follow, as a later run would take them.
    const seen = new Set<string>();
    const [once, again] = [[], []] as [RecordTarget[], RecordTarget[]];
    for (const target of targets) {
      const key = keyOf(this.rowOf(tenant, target));
      (seen.has(key) ? again : once).push(target);
      seen.add(key);
    }
    const counts = await this.deleteOnce(tenant, once);
    if (again.length > 0) {
      for (const [category, n] of Object.entries(await this.deleteRecords(tenant, again))) {
        counts[category as RecordCategory] = (counts[category as RecordCategory] ?? 0) + (n ?? 0);
      }
    }
    return counts;
  }

  private async deleteOnce(tenant: TenantScope, targets: readonly RecordTarget[]): Promise<CategoryCounts> {
    const records = await this.records(tenant);
    const lookups = await this.lookups(tenant);
    // A record-id lookup goes only while it names the target's subject, at the version read: the lookup of a
    // record that moved on names another subject, where its row may be located (RecordEntity.located).
    await deleteVersions(
      lookups,
      await lookupsNaming(
        lookups,
        tenant.tenantId,
        targets.map((target) => ({
          recordKey: recordKeyOfRow(target.recordRow),
          subjectKey: target.subjectKey,
        })),
      ),
    );
    await submitInBatches(
      lookups,
      targets.flatMap((target) => this.deviceLookupOf(tenant, target)),
    );
    const guarded = targets.filter((t) => t.etag !== undefined);
    const first = await deleteVersions(
      records,
      guarded.map((t) => ({ ...this.rowOf(tenant, t), etag: t.etag! })),
    );
    // Rows at another version than their entry's: those whose dates still fall due by the entry's rule go
    // too, guarded by the ETag they have now; the others stay.
    const byRow = new Map(guarded.map((t) => [keyOf(this.rowOf(tenant, t)), t]));
    const due: RowVersion[] = [];
    const changed: RowKeys[] = [];
    for (const key of first.changed) {
      const row = await readRow<RecordEntity>(records, key.partitionKey, key.rowKey);
      const target = byRow.get(keyOf(key));
      if (row && target && stillDue(row, target)) due.push({ ...key, etag: row.etag });
      else changed.push(key);
    }
    const second = await deleteVersions(records, due);
    const deleted = [...first.deleted, ...second.deleted];
    changed.push(...second.changed);
    const unguarded = targets.filter((t) => t.etag === undefined);
    await submitInBatches(
      records,
      unguarded.map((t): TransactionAction => ['delete', { ...this.rowOf(tenant, t) }]),
    );
    await this.restoreLookups(tenant, records, lookups, changed);
    const counts: CategoryCounts = {};
    for (const row of [...deleted, ...unguarded.map((t) => this.rowOf(tenant, t))]) {
      const category = categoryOfRow(row.rowKey) as RecordCategory;
      counts[category] = (counts[category] ?? 0) + 1;
    }
    await this.recordCounts.add(
      tenant,
      Object.fromEntries(Object.entries(counts).map(([category, n]) => [category, -n])),
    );
    return counts;
  }

  /**
   * An alert's personal fields removed: only the allow-list of alertAnonymisation.ts is kept, in a row of the
   * tenant's anonymous partition whose key derives from the subject's data key (so once the subject is
   * erased nothing links it to them). Its 2-year entry is written before it, so it never outlives its rule.
   * Returns how many alerts were anonymised.
   */
  async anonymiseAlerts(tenant: TenantScope, targets: readonly RecordTarget[]): Promise<number> {
    const records = await this.records(tenant);
    const done: RecordTarget[] = [];
    for (const target of targets) {
      const partitionKey = recordsPartition(tenant.tenantId, target.subjectKey);
      const row = await readRow<RecordEntity>(records, partitionKey, target.recordRow);
      if (!row || (target.etag !== undefined && row.etag !== target.etag && !stillDue(row, target))) continue;
      let version = target;
      if (row.located && !target.due) {
        // Taken before it falls due (an alert data request), so a check-in may replace it without reading its
        // lookup (the located path skips only rows due soon): it loses `located` first, at the version read,
        // before deleteRecords takes its lookups away. Changed meanwhile: it stays, as any changed row.
        const etag = await clearLocated(records, partitionKey, target.recordRow, row.etag);
        if (!etag) continue;
        version = { ...target, etag };
      }
      const dataKey = await this.subjectKeys.find(tenant, target.subjectKey);
      if (dataKey) {
        const record = toRecord(row, dataKey, partitionKey);
        const rowKey = `alert_${exactHmacWith(dataKey, 'anonymous', target.recordRow)}`;
        await this.expiry.add(tenant, [anonymousAlertExpiry(rowKey, new Date(record.occurredAt))]);
        await records.upsertEntity<AnonymousEntity>(
          {
            partitionKey: anonymousPartition(tenant.tenantId),
            rowKey,
            category: 'alert',
            occurredAt: record.occurredAt,
            anonymised: JSON.stringify(anonymiseAlert(record.data)),
          },
          'Replace',
        );
      }
      done.push(version);
    }
    await this.deleteRecords(tenant, done);
    return done.length;
  }

  /** Anonymised alerts past their 2 years. */
  async deleteAnonymous(tenant: TenantScope, rowKeys: readonly string[]): Promise<number> {
    const partitionKey = anonymousPartition(tenant.tenantId);
    return submitInBatches(
      await this.records(tenant),
      rowKeys.map((rowKey): TransactionAction => ['delete', { partitionKey, rowKey }]),
    );
  }

  private rowOf(tenant: TenantScope, target: RecordTarget): RowKeys {
    return { partitionKey: recordsPartition(tenant.tenantId, target.subjectKey), rowKey: target.recordRow };
  }

  /** The device lookup of a target's row (keyed by subject and row: it names no one else). */
  private deviceLookupOf(tenant: TenantScope, target: RecordTarget): TransactionAction[] {
    return target.deviceKey
      ? [
          [
            'delete',
            lookupKeys.device(tenant.tenantId, target.deviceKey, target.subjectKey, target.recordRow),
          ],
        ]
      : [];
  }

  /** Rows that stayed get their lookups back (unless a writer has already put its own there). */
  private async restoreLookups(
    tenant: TenantScope,
    records: TableClient,
    lookups: TableClient,
    rows: readonly RowKeys[],
  ): Promise<void> {
    for (const key of rows) {
      const row = await readRow<RecordEntity>(records, key.partitionKey, key.rowKey);
      if (!row) continue;
      const subjectKey = key.partitionKey.slice(tenant.tenantId.length + 1);
      try {
        await lookups.createEntity({
          ...lookupKeys.record(tenant.tenantId, recordKeyOfRow(key.rowKey)),
          subjectKey,
          ...(row.deletedAt ? { deletions: JSON.stringify([row.deletedAt]) } : {}),
        });
      } catch (error) {
        // A writer has put its own lookup back already: it knows more than this row does. The row loses
        // `located` (the lookup may name another place, or no one, now), also when it was not located when
        // read: a batch that read the lookup before it went may be writing it located (its ETag check then
        // fails). Its next event reads the lookup and settles it.
        if (!isStatus(error, 409)) throw error;
        await clearLocated(records, key.partitionKey, key.rowKey);
        await this.adoptTombstone(tenant, records, lookups, key, subjectKey);
      }
      if (row.deviceKey) {
        const device = lookupKeys.device(tenant.tenantId, row.deviceKey, subjectKey, key.rowKey);
        await lookups.upsertEntity({ ...device, subjectKey }, 'Replace');
      }
    }
  }

  /**
   * A deletion of the record that came while its lookup was away left a lookup naming no one: it names this
   * subject again (the row is here), and the deletion is applied to the row as the deletion itself would
   * have (the earliest known at or after its version), so it is not lost until the record's next event.
   */
  private async adoptTombstone(
    tenant: TenantScope,
    records: TableClient,
    lookups: TableClient,
    key: RowKeys,
    subjectKey: string,
  ): Promise<void> {
    const recordKey = recordKeyOfRow(key.rowKey);
    const lookup = await readRecordLookup(lookups, tenant.tenantId, recordKey);
    if (!lookup || lookup.subjectKey) return;
    // Guarded by the lookup as read: someone else who settled it meanwhile wins.
    if (!(await pointRecordLookup(lookups, tenant.tenantId, recordKey, lookup, subjectKey))) return;
    const row = await readRow<RecordEntity>(records, key.partitionKey, key.rowKey);
    const deletions = deletionsOf(lookup);
    const applies = row && deletionFor(row.occurredAt, [...deletions, row.deletedAt]);
    if (row && applies && applies !== row.deletedAt) {
      await this.writer.markDeleted(tenant, subjectKey, [{ row, deletedAt: applies }]);
    }
  }

  private records(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.records);
  }

  private lookups(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.recordLookup);
  }
}
