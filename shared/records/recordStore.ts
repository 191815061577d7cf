// Personal data records in Table storage, encrypted per data subject. Layout (tenant's geography account):
// - `records`: PartitionKey `${tenantId}_${subjectKey}`, RowKey `${category}_${recordKey}`; each row holds the
//   record sealed with the subject's data key (AES-256-GCM), plus category, occurredAt, deletedAt and the
//   device's HMAC in clear for queries. Row `~key` holds the subject's wrapped data key (crypto/subjectKeys).
// - `recordLookup`: identifier → subject (`_i`), record id → subject (`_r`), device → records (`_d`), all
//   keyed by per-tenant HMACs, so no key names anyone and finding one subject costs requests in proportion
//   to that subject's records, not to the tenant's size.
import { odata, RestError, type TableClient, type TransactionAction } from '@azure/data-tables';

import { open, seal } from '../crypto/sealedBox';
import type { SubjectKeyStore } from '../crypto/subjectKeys';
import { hmacWith, type Pseudonymizer } from '../crypto/pseudonymizer';
import type { DataSubject, RecordCategory } from '../requests/dataSubjectRequest';
import type { TenantScope } from '../residency/tenantDirectory';
import { type ExpiryEntry, ExpiryIndex, expiryKeys, recordExpiries } from '../retention/expiryIndex';
import { namesPerson, REDACTED, redactOtherPeople } from '../exports/redaction';
import { TABLES } from '../storage/names';
import { submitInBatches } from '../storage/tableBatches';
import type { PersonalDataRecord, PseudonymousSubject } from './personalDataRecord';
import { lookupKeys, recordRowKey, recordsPartition, rowKeyRange } from './recordKeys';

/** Identifier kinds in the order that picks a new subject's key: the most stable first. */
const IDENTIFIER_KINDS = ['objectId', 'upn', 'email'] as const;
/** Rows `~id_<identifier HMAC>` in a subject's partition list every identifier the subject was seen with. */
const IDENTIFIER_ROW = '~id_';
const CACHE_LIMIT = 50_000;
const IDENTIFIER_CACHE_TTL_MS = 60_000;

interface RecordEntity {
  partitionKey: string;
  rowKey: string;
  category: string;
  occurredAt: string;
  deletedAt?: string;
  deviceKey?: string;
  sealed: string;
}

interface RecordLookupEntity {
  partitionKey: string;
  rowKey: string;
  subjectKey?: string;
  /** A delete that came before its record: the record, when it arrives, is stored as deleted. */
  tombstoneDeletedAt?: string;
}

/** What is sealed: everything that could name someone. */
interface SealedContent {
  recordId: string;
  subject: DataSubject | PseudonymousSubject;
  deviceName?: string;
  data: Record<string, unknown>;
}

export interface UpsertInput {
  category: RecordCategory;
  recordId: string;
  subject: DataSubject;
  occurredAt: string;
  data: Record<string, unknown>;
  deviceName?: string;
}

export type CategoryCounts = Partial<Record<RecordCategory, number>>;

/** Where a record is: its subject's partition and its row there (and its device, for the lookup). */
export interface RecordTarget {
  subjectKey: string;
  recordRow: string;
  deviceKey?: string;
}

interface AnonymousEntity {
  partitionKey: string;
  rowKey: string;
  category: string;
  occurredAt: string;
  anonymised: string;
}

/** Anonymised alerts of a tenant: no subject, no device, no identifiers. */
export const anonymousPartition = (tenantId: string) => `${tenantId}_anonymous`;

const recordKeyOf = (recordRow: string) => recordRow.slice(recordRow.indexOf('_') + 1);

/** An alert's data without what names or links to a person: identifying keys dropped, addresses removed. */
function stripPersonalFields(data: Record<string, unknown>): Record<string, unknown> {
  const redacted = redactOtherPeople(data, []) as Record<string, unknown>;
  return Object.fromEntries(
    Object.entries(redacted).filter(([key, value]) => !namesPerson(key) && value !== REDACTED),
  );
}

export class RecordStore {
  /**
   * tenant|identifier HMAC → subject key, for identifiers whose lookup rows this instance wrote recently.
   * Entries live as long as SubjectKeyStore caches keys (60 s), so an erasure on another instance is seen
   * by ingestion here within the same minute.
   */
  private readonly knownIdentifiers = new Map<string, { subjectKey: string; at: number }>();

  constructor(
    private readonly subjectKeys: SubjectKeyStore,
    private readonly pseudonymizer: Pseudonymizer,
    private readonly expiry: ExpiryIndex = new ExpiryIndex(),
  ) {}

  private records(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.records);
  }

  private lookups(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.recordLookup);
  }

  /** HMACs of a subject's identifiers, most stable first. */
  async identifierKeys(tenant: TenantScope, subject: DataSubject): Promise<string[]> {
    const key = await this.pseudonymizer.keyFor(tenant);
    return IDENTIFIER_KINDS.filter((kind) => subject[kind] !== undefined).map((kind) =>
      hmacWith(key, kind, subject[kind]!),
    );
  }

  /** Every subject key any of these identifiers has been seen with (one small query per identifier). */
  async findSubjects(tenant: TenantScope, subject: DataSubject): Promise<string[]> {
    const table = await this.lookups(tenant);
    const found = new Set<string>();
    for (const idKey of await this.identifierKeys(tenant, subject)) {
      const { partitionKey, prefix } = lookupKeys.identifier(tenant.tenantId, idKey);
      for await (const row of table.listEntities<RecordLookupEntity>({
        queryOptions: { filter: rowKeyRange(partitionKey, prefix), select: ['subjectKey'] },
      })) {
        if (row.subjectKey) found.add(row.subjectKey);
      }
    }
    return [...found];
  }

  /** The subject key a new record goes under; links every identifier of the event to it. */
  private async subjectForWrite(tenant: TenantScope, subject: DataSubject): Promise<string> {
    const idKeys = await this.identifierKeys(tenant, subject);
    const now = Date.now();
    const cached = idKeys.map((idKey) => {
      const known = this.knownIdentifiers.get(`${tenant.tenantId}|${idKey}`);
      return known && now - known.at < IDENTIFIER_CACHE_TTL_MS ? known.subjectKey : undefined;
    });
    let subjectKey = cached.find((k) => k !== undefined);
    if (!subjectKey || cached.some((k) => k === undefined)) {
      // An identifier seen before keeps its subject; a subject never seen is keyed by its first identifier,
      // so concurrent first events of the same person agree without coordination.
      subjectKey = (await this.findSubjects(tenant, subject))[0] ?? idKeys[0]!;
      const table = await this.lookups(tenant);
      const records = await this.records(tenant);
      for (const idKey of idKeys) {
        const { partitionKey, prefix } = lookupKeys.identifier(tenant.tenantId, idKey);
        await table.upsertEntity({ partitionKey, rowKey: `${prefix}${subjectKey}`, subjectKey }, 'Replace');
        // The subject's own list of its identifiers: an erasure requested by one identifier removes all.
        await records.upsertEntity(
          {
            partitionKey: recordsPartition(tenant.tenantId, subjectKey),
            rowKey: `${IDENTIFIER_ROW}${idKey}`,
          },
          'Replace',
        );
        remember(this.knownIdentifiers, `${tenant.tenantId}|${idKey}`, { subjectKey, at: now });
      }
    }
    return subjectKey;
  }

  /** Stores or replaces a record; an older occurrence than the stored one changes nothing. */
  async upsert(tenant: TenantScope, input: UpsertInput): Promise<'stored' | 'stale'> {
    const subjectKey = await this.subjectForWrite(tenant, input.subject);
    const pseudonymKey = await this.pseudonymizer.keyFor(tenant);
    const recordKey = hmacWith(pseudonymKey, 'record', `${input.category}:${input.recordId}`);
    const deviceKey = input.deviceName ? hmacWith(pseudonymKey, 'device', input.deviceName) : undefined;
    const { lookups, recordLookup, row: previous } = await this.recordLookupOf(tenant, recordKey);

    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const rowKey = recordRowKey(input.category, recordKey);
    if (previous?.subjectKey && previous.subjectKey !== subjectKey) {
      // The record now belongs to someone else: it leaves the previous subject's partition.
      await deleteIgnoringMissing(
        await this.records(tenant),
        recordsPartition(tenant.tenantId, previous.subjectKey),
        rowKey,
      );
    }

    const content: SealedContent = {
      recordId: input.recordId,
      subject:
        input.category === 'systemLog' ? this.pseudonymous(pseudonymKey, input.subject) : input.subject,
      ...(input.deviceName ? { deviceName: input.deviceName } : {}),
      data: input.data,
    };
    const dataKey = await this.subjectKeys.getOrCreate(tenant, subjectKey);
    const tombstone = previous?.tombstoneDeletedAt;
    const entity: RecordEntity = {
      partitionKey,
      rowKey,
      category: input.category,
      occurredAt: input.occurredAt,
      ...(tombstone && tombstone >= input.occurredAt ? { deletedAt: tombstone } : {}),
      ...(deviceKey ? { deviceKey } : {}),
      sealed: seal(dataKey, JSON.stringify(content), `${partitionKey}|${rowKey}`),
    };
    const records = await this.records(tenant);
    const written = await writeIfNewer(records, entity);
    if (written.outcome === 'stale') return 'stale';
    // Keep the expiry index true to the stored row: its entries for the replaced dates go.
    const target = { subjectKey, recordRow: rowKey, deviceKey };
    const now = recordExpiries({ ...written.stored, category: input.category }, target);
    const before = written.replaced
      ? recordExpiries({ ...written.replaced, category: input.category }, target)
      : [];
    await this.expiry.add(tenant, now);
    await this.expiry.remove(tenant, withoutThose(before, now, tenant.tenantId));

    if (previous?.subjectKey !== subjectKey || previous.tombstoneDeletedAt) {
      await lookups.upsertEntity({ ...recordLookup, subjectKey }, 'Replace');
    }
    if (deviceKey) {
      const device = lookupKeys.device(tenant.tenantId, deviceKey, subjectKey, rowKey);
      await lookups.upsertEntity({ ...device, subjectKey }, 'Replace');
    }
    return 'stored';
  }

  /** Soft-deletes one record; a delete for a record not seen yet leaves a tombstone for it. */
  async softDeleteRecord(
    tenant: TenantScope,
    category: RecordCategory,
    recordId: string,
    deletedAt: string,
  ): Promise<'deleted' | 'unchanged' | 'tombstoned'> {
    const recordKey = await this.pseudonymizer.hmac(tenant, 'record', `${category}:${recordId}`);
    const { lookups, recordLookup, row: found } = await this.recordLookupOf(tenant, recordKey);
    if (!found?.subjectKey) {
      if (!found?.tombstoneDeletedAt || found.tombstoneDeletedAt < deletedAt) {
        await lookups.upsertEntity({ ...recordLookup, tombstoneDeletedAt: deletedAt }, 'Replace');
      }
      return 'tombstoned';
    }
    const records = await this.records(tenant);
    const key = {
      partitionKey: recordsPartition(tenant.tenantId, found.subjectKey),
      rowKey: recordRowKey(category, recordKey),
    };
    const row = await getOrUndefined<RecordEntity>(records, key.partitionKey, key.rowKey);
    if (!row || !shouldDelete(row, deletedAt)) return 'unchanged';
    try {
      await records.updateEntity({ ...key, deletedAt }, 'Merge', { etag: row.etag });
    } catch (error) {
      if (error instanceof RestError && (error.statusCode === 412 || error.statusCode === 404)) {
        return this.softDeleteRecord(tenant, category, recordId, deletedAt);
      }
      throw error;
    }
    await this.expiry.add(tenant, this.purgeEntries(found.subjectKey, [{ ...row, deletedAt }]));
    return 'deleted';
  }

  /** The record-id lookup (`_r`) of a record: where it lives, or the tombstone of a delete that came first. */
  private async recordLookupOf(tenant: TenantScope, recordKey: string) {
    const lookups = await this.lookups(tenant);
    const recordLookup = lookupKeys.record(tenant.tenantId, recordKey);
    const row = await getOrUndefined<RecordLookupEntity>(
      lookups,
      recordLookup.partitionKey,
      recordLookup.rowKey,
    );
    return { lookups, recordLookup, row };
  }

  /** Active deletion of a subject: every live record of theirs soft-deleted. */
  async softDeleteSubject(tenant: TenantScope, subject: DataSubject, deletedAt: string): Promise<number> {
    let count = 0;
    for (const subjectKey of await this.findSubjects(tenant, subject)) {
      const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
      const records = await this.records(tenant);
      const rows: RecordEntity[] = [];
      for await (const row of records.listEntities<RecordEntity>({
        queryOptions: {
          filter: odata`PartitionKey eq ${partitionKey} and RowKey lt '~'`,
          select: ['RowKey', 'category', 'occurredAt', 'deletedAt', 'deviceKey'],
        },
      })) {
        if (shouldDelete(row, deletedAt)) rows.push(row);
      }
      await this.expiry.add(
        tenant,
        this.purgeEntries(
          subjectKey,
          rows.map((row) => ({ ...row, deletedAt })),
        ),
      );
      count += await submitInBatches(
        records,
        rows.map((row): TransactionAction => [
          'update',
          { partitionKey, rowKey: row.rowKey, deletedAt },
          'Merge',
        ]),
      );
    }
    return count;
  }

  /** A retired device: every live record reported with its name soft-deleted. */
  async softDeleteDevice(tenant: TenantScope, deviceName: string, deletedAt: string): Promise<number> {
    const deviceKey = await this.pseudonymizer.hmac(tenant, 'device', deviceName);
    const lookups = await this.lookups(tenant);
    const records = await this.records(tenant);
    const actions: TransactionAction[] = [];
    const expiries: ExpiryEntry[] = [];
    const { partitionKey: devicePartition } = lookupKeys.device(tenant.tenantId, deviceKey, '', '');
    for await (const row of lookups.listEntities<RecordLookupEntity>({
      queryOptions: { filter: odata`PartitionKey eq ${devicePartition}` },
    })) {
      if (!row.subjectKey) continue;
      const partitionKey = recordsPartition(tenant.tenantId, row.subjectKey);
      const rowKey = row.rowKey.slice(row.subjectKey.length + 1);
      const record = await getOrUndefined<RecordEntity>(records, partitionKey, rowKey);
      if (!record || record.deviceKey !== deviceKey || !shouldDelete(record, deletedAt)) continue;
      actions.push(['update', { partitionKey, rowKey, deletedAt }, 'Merge']);
      expiries.push(...this.purgeEntries(row.subjectKey, [{ ...record, deletedAt }]));
    }
    await this.expiry.add(tenant, expiries);
    return submitInBatches(records, actions);
  }

  /** The purge entries of soft-deleted rows of one subject. */
  private purgeEntries(
    subjectKey: string,
    rows: Pick<RecordEntity, 'rowKey' | 'category' | 'occurredAt' | 'deletedAt' | 'deviceKey'>[],
  ): ExpiryEntry[] {
    return rows.flatMap((row) =>
      recordExpiries(
        { category: row.category as RecordCategory, occurredAt: row.occurredAt, deletedAt: row.deletedAt },
        { subjectKey, recordRow: row.rowKey, deviceKey: row.deviceKey },
      ).filter((entry) => entry.kind === 'record' && entry.action === 'purgeDeleted'),
    );
  }

  /** Records per category of these subjects, soft-deleted ones included (they are still held). */
  async countByCategory(tenant: TenantScope, subjectKeys: readonly string[]): Promise<CategoryCounts> {
    const counts: CategoryCounts = {};
    const records = await this.records(tenant);
    for (const subjectKey of subjectKeys) {
      const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
      for await (const row of records.listEntities<RecordEntity>({
        queryOptions: {
          filter: odata`PartitionKey eq ${partitionKey} and RowKey lt '~'`,
          select: ['category'],
        },
      })) {
        const category = row.category as RecordCategory;
        counts[category] = (counts[category] ?? 0) + 1;
      }
    }
    return counts;
  }

  /** The decrypted records of one category of a subject; none once the subject's key is destroyed. */
  async *list(
    tenant: TenantScope,
    subjectKey: string,
    category: RecordCategory,
  ): AsyncGenerator<PersonalDataRecord> {
    for await (const page of this.listPages(tenant, subjectKey, category)) yield* page;
  }

  /** As list, a slice of a storage page at a time: what a package works through, without a promise per record. */
  async *listPages(
    tenant: TenantScope,
    subjectKey: string,
    category: RecordCategory,
  ): AsyncGenerator<PersonalDataRecord[]> {
    const dataKey = await this.subjectKeys.find(tenant, subjectKey);
    if (!dataKey) return;
    const records = await this.records(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const pages = records
      .listEntities<RecordEntity>({
        // Only what a record is made of: no Timestamp or etag to send, parse and convert for every row.
        queryOptions: { filter: rowKeyRange(partitionKey, `${category}_`), select: RECORD_COLUMNS },
      })
      .byPage({ maxPageSize: 1000 });
    // One page read ahead: storage fetches the next page while the caller (a package) works on this one.
    let next = pages.next();
    for (;;) {
      const page = await next;
      if (page.done) return;
      next = pages.next();
      next.catch(() => undefined); // surfaced by the await above on the next turn
      // Decrypted a slice at a time: a thousand records' worth of objects at once weighs on the heap.
      for (let start = 0; start < page.value.length; start += RECORDS_PER_SLICE) {
        yield page.value
          .slice(start, start + RECORDS_PER_SLICE)
          .map((row) => toRecord(row, dataKey, partitionKey));
      }
    }
  }

  /** Changes fields of one stored record (rectification), re-sealed with the subject's key. */
  async rewrite(
    tenant: TenantScope,
    subjectKey: string,
    category: RecordCategory,
    select: (record: PersonalDataRecord) => boolean,
    change: (data: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<number> {
    const dataKey = await this.subjectKeys.find(tenant, subjectKey);
    if (!dataKey) return 0;
    const records = await this.records(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    let changed = 0;
    for await (const row of records.listEntities<RecordEntity>({
      queryOptions: { filter: rowKeyRange(partitionKey, `${category}_`) },
    })) {
      const record = toRecord(row, dataKey, partitionKey);
      if (!select(record) || record.deletedAt) continue;
      const content: SealedContent = {
        recordId: record.recordId,
        subject: record.subject,
        ...(record.deviceName ? { deviceName: record.deviceName } : {}),
        data: change(record.data),
      };
      await records.updateEntity(
        {
          partitionKey,
          rowKey: row.rowKey,
          sealed: seal(dataKey, JSON.stringify(content), `${partitionKey}|${row.rowKey}`),
        },
        'Merge',
        { etag: row.etag },
      );
      changed++;
    }
    return changed;
  }

  /**
   * Erases a subject: destroys the data key first (every copy anywhere becomes unreadable at once), then
   * deletes the record rows and every lookup that points at them. Safe to run again after a crash.
   */
  async eraseSubject(
    tenant: TenantScope,
    subjectKey: string,
    identifierKeys: readonly string[],
  ): Promise<number> {
    await this.subjectKeys.destroy(tenant, subjectKey);
    const records = await this.records(tenant);
    const lookups = await this.lookups(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const rows: RecordEntity[] = [];
    for await (const row of records.listEntities<RecordEntity>({
      queryOptions: {
        filter: odata`PartitionKey eq ${partitionKey} and RowKey lt '~'`,
        select: ['RowKey', 'deviceKey'],
      },
    })) {
      rows.push(row);
    }
    const lookupDeletes = new Map<string, TransactionAction[]>();
    const addLookup = (key: { partitionKey: string; rowKey: string }) => {
      const actions = lookupDeletes.get(key.partitionKey) ?? [];
      actions.push(['delete', key]);
      lookupDeletes.set(key.partitionKey, actions);
    };
    for (const row of rows) {
      const recordKey = row.rowKey.slice(row.rowKey.indexOf('_') + 1);
      addLookup(lookupKeys.record(tenant.tenantId, recordKey));
      if (row.deviceKey) addLookup(lookupKeys.device(tenant.tenantId, row.deviceKey, subjectKey, row.rowKey));
    }
    const identifierRows: string[] = [];
    for await (const row of records.listEntities({
      queryOptions: { filter: rowKeyRange(partitionKey, IDENTIFIER_ROW), select: ['RowKey'] },
    })) {
      identifierRows.push(row.rowKey!);
    }
    const allIdentifiers = new Set([
      ...identifierKeys,
      ...identifierRows.map((row) => row.slice(IDENTIFIER_ROW.length)),
    ]);
    for (const idKey of allIdentifiers) {
      const { partitionKey: idPartition, prefix } = lookupKeys.identifier(tenant.tenantId, idKey);
      addLookup({ partitionKey: idPartition, rowKey: `${prefix}${subjectKey}` });
    }
    for (const [key, known] of this.knownIdentifiers) {
      if (known.subjectKey === subjectKey) this.knownIdentifiers.delete(key);
    }
    for (const actions of lookupDeletes.values()) await submitInBatches(lookups, actions);
    const erased = await submitInBatches(
      records,
      rows.map((row): TransactionAction => ['delete', { partitionKey, rowKey: row.rowKey }]),
    );
    // The identifier list goes last, so a re-run after a crash still knows every lookup to remove.
    await submitInBatches(
      records,
      identifierRows.map((rowKey): TransactionAction => ['delete', { partitionKey, rowKey }]),
    );
    return erased;
  }

  /**
   * Retention: deletes records and the lookups that point at them, without reading them first (the expiry
   * index names exactly what to delete). Rows already gone are skipped. Returns deletions per category.
   */
  async deleteRecords(tenant: TenantScope, targets: readonly RecordTarget[]): Promise<CategoryCounts> {
    const records = await this.records(tenant);
    const lookups = await this.lookups(tenant);
    const counts: CategoryCounts = {};
    const byCategory = new Map<RecordCategory, TransactionAction[]>();
    const lookupDeletes: TransactionAction[] = [];
    for (const target of targets) {
      const category = target.recordRow.slice(0, target.recordRow.indexOf('_')) as RecordCategory;
      const actions = byCategory.get(category) ?? [];
      actions.push([
        'delete',
        { partitionKey: recordsPartition(tenant.tenantId, target.subjectKey), rowKey: target.recordRow },
      ]);
      byCategory.set(category, actions);
      lookupDeletes.push(['delete', lookupKeys.record(tenant.tenantId, recordKeyOf(target.recordRow))]);
      if (target.deviceKey) {
        lookupDeletes.push([
          'delete',
          lookupKeys.device(tenant.tenantId, target.deviceKey, target.subjectKey, target.recordRow),
        ]);
      }
    }
    for (const [category, actions] of byCategory) {
      const deleted = await submitInBatches(records, actions);
      if (deleted > 0) counts[category] = deleted;
    }
    await submitInBatches(lookups, lookupDeletes);
    return counts;
  }

  /**
   * Retention: an alert's personal fields removed. The anonymised alert moves out of its subject's
   * partition into the tenant's anonymous partition, in clear but naming and linking to no one, so no
   * request finds it any more. Returns the rows written (for their 2-year deletion).
   */
  async anonymiseAlerts(
    tenant: TenantScope,
    targets: readonly RecordTarget[],
  ): Promise<{ rowKey: string; occurredAt: string }[]> {
    const records = await this.records(tenant);
    const written: { rowKey: string; occurredAt: string }[] = [];
    for (const target of targets) {
      const partitionKey = recordsPartition(tenant.tenantId, target.subjectKey);
      const row = await getOrUndefined<RecordEntity>(records, partitionKey, target.recordRow);
      const dataKey = row && (await this.subjectKeys.find(tenant, target.subjectKey));
      if (row && dataKey) {
        const record = toRecord(row, dataKey, partitionKey);
        const rowKey = `alert_${recordKeyOf(target.recordRow)}`;
        await records.upsertEntity<AnonymousEntity>(
          {
            partitionKey: anonymousPartition(tenant.tenantId),
            rowKey,
            category: 'alert',
            occurredAt: record.occurredAt,
            anonymised: JSON.stringify(stripPersonalFields(record.data)),
          },
          'Replace',
        );
        written.push({ rowKey, occurredAt: record.occurredAt });
      }
    }
    await this.deleteRecords(tenant, targets);
    return written;
  }

  /** Retention: anonymised alerts past their 2 years. */
  async deleteAnonymous(tenant: TenantScope, rowKeys: readonly string[]): Promise<number> {
    const partitionKey = anonymousPartition(tenant.tenantId);
    return submitInBatches(
      await this.records(tenant),
      rowKeys.map((rowKey): TransactionAction => ['delete', { partitionKey, rowKey }]),
    );
  }

  private pseudonymous(key: Buffer, subject: DataSubject): PseudonymousSubject {
    const result: PseudonymousSubject = { pseudonymous: true };
    for (const kind of IDENTIFIER_KINDS) {
      const value = subject[kind];
      if (value !== undefined) result[kind] = hmacWith(key, kind, value);
    }
    return result;
  }
}

const shouldDelete = (row: Pick<RecordEntity, 'occurredAt' | 'deletedAt'>, deletedAt: string) =>
  row.occurredAt <= deletedAt && (row.deletedAt === undefined || row.deletedAt > deletedAt);

/** Records listPages decrypts and hands on at a time. */
const RECORDS_PER_SLICE = 100;

/** The columns toRecord reads (the partition is known to whoever queried it). */
const RECORD_COLUMNS = ['RowKey', 'category', 'occurredAt', 'deletedAt', 'sealed'];

function toRecord(
  row: Pick<RecordEntity, 'rowKey' | 'category' | 'occurredAt' | 'deletedAt' | 'sealed'>,
  dataKey: Buffer,
  partitionKey: string,
): PersonalDataRecord {
  const content = JSON.parse(
    open(dataKey, row.sealed, `${partitionKey}|${row.rowKey}`).toString('utf8'),
  ) as SealedContent;
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

type RecordDates = { occurredAt: string; deletedAt?: string };

/**
 * Creates the record, or replaces it when the stored one is not newer; retried on a concurrent change.
 * Says what is stored now and, when it replaced a row, that row's dates.
 */
async function writeIfNewer(
  table: TableClient,
  entity: RecordEntity,
): Promise<{ outcome: 'stale' } | { outcome: 'stored'; stored: RecordDates; replaced?: RecordDates }> {
  const datesOf = (row: RecordDates): RecordDates => ({
    occurredAt: row.occurredAt,
    ...(row.deletedAt ? { deletedAt: row.deletedAt } : {}),
  });
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await table.createEntity(entity);
      return { outcome: 'stored', stored: datesOf(entity) };
    } catch (error) {
      if (!(error instanceof RestError && error.statusCode === 409)) throw error;
    }
    const stored = await getOrUndefined<RecordEntity>(table, entity.partitionKey, entity.rowKey);
    if (!stored) continue;
    if (stored.occurredAt > entity.occurredAt) return { outcome: 'stale' };
    const deletedAt =
      stored.deletedAt && stored.deletedAt >= entity.occurredAt ? stored.deletedAt : entity.deletedAt;
    const { deletedAt: _ignored, ...rest } = entity;
    const replacement = { ...rest, ...(deletedAt ? { deletedAt } : {}) };
    try {
      await table.updateEntity(replacement, 'Replace', { etag: stored.etag });
      return { outcome: 'stored', stored: datesOf(replacement), replaced: datesOf(stored) };
    } catch (error) {
      if (!(error instanceof RestError && (error.statusCode === 412 || error.statusCode === 404)))
        throw error;
    }
  }
  throw new Error('The record kept changing concurrently.');
}

/** Entries of `before` that are not in `after`, by their keys. */
function withoutThose(before: ExpiryEntry[], after: ExpiryEntry[], tenantId: string): ExpiryEntry[] {
  const kept = new Set(after.map((entry) => expiryKeys(tenantId, entry).rowKey));
  return before.filter((entry) => !kept.has(expiryKeys(tenantId, entry).rowKey));
}

async function getOrUndefined<T extends object>(table: TableClient, partitionKey: string, rowKey: string) {
  try {
    return await table.getEntity<T>(partitionKey, rowKey);
  } catch (error) {
    if (error instanceof RestError && error.statusCode === 404) return undefined;
    throw error;
  }
}

async function deleteIgnoringMissing(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
): Promise<void> {
  try {
    await table.deleteEntity(partitionKey, rowKey);
  } catch (error) {
    if (!(error instanceof RestError && error.statusCode === 404)) throw error;
  }
}

function remember<T>(map: Map<string, T>, key: string, value: T) {
  if (map.size >= CACHE_LIMIT) map.delete(map.keys().next().value!);
  map.set(key, value);
}
