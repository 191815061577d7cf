// Personal data records in Table storage, encrypted per data subject (SPEC §4). Layout (tenant's geography):
// - `records`: PartitionKey `${tenantId}_${subjectKey}`, RowKey `${category}_${recordKey}`; each row holds the
//   record sealed with the subject's data key (AES-256-GCM), plus category, occurredAt, deletedAt and the
//   device's HMAC in clear for queries. Rows from `~` on are the subject's own (recordKeys.subjectRows).
// - `recordLookup`: record id → subject and known deletions (`_r`), device → records (`_d`), alias →
//   subjects (`_i`, subjectIdentity.ts); all keyed by per-tenant HMACs, so no key names anyone and finding
//   one subject costs requests in proportion to that subject's records, not to the tenant's size.
import { odata, type TableClient } from '@azure/data-tables';

import { hmacWith, type Pseudonymizer } from '../crypto/pseudonymizer';
import type { SubjectKeyStore } from '../records/subjectKeys';
import type { DataSubject } from '../vocabulary/dataSubject';
import type { RecordCategory } from '../vocabulary/categories';
import type { TenantScope } from '../residency/tenantDirectory';
import { type Clock, systemClock } from '../clock';
import { TABLES } from '../storage/names';
import { type BatchItemOutcome, BatchPlacement, type PreparedUpsert } from './batchPlacement';
import type { PersonalDataRecord } from './personalDataRecord';
import {
  lookupKeys,
  RECORDS_ONLY,
  recordRowKey,
  recordsPartition,
  rowKeyRange,
  subjectRows,
} from './recordKeys';
import {
  deletionFor,
  deviceKeyOf,
  isStatus,
  RECORD_COLUMNS,
  readRow,
  type RecordEntity,
  recordKeyOf,
  type SealedContent,
  shouldDelete,
  toRecord,
  withDeletion,
} from './recordRows';
import { recordContent, type UpsertInput } from './recordContent';
import { deletionsOf, pointRecordLookup, readRecordLookup, type RecordLookupEntity } from './recordLookups';
import type { RecordWriter, StoredRow } from './recordWriter';
import {
  type Identifier,
  IDENTIFIER_KINDS,
  type RequestSubject,
  type SubjectIdentity,
} from './subjectIdentity';
import type { SubjectMerge } from './subjectMerge';

export type { BatchItemOutcome, UpsertInput };

export type CategoryCounts = Partial<Record<RecordCategory, number>>;

/** Records listPages decrypts and hands on at a time. */
const RECORDS_PER_SLICE = 100;
const ATTEMPTS = 5;

export class RecordStore {
  constructor(
    private readonly subjectKeys: SubjectKeyStore,
    private readonly pseudonymizer: Pseudonymizer,
    private readonly identity: SubjectIdentity,
    private readonly writer: RecordWriter,
    private readonly merge: SubjectMerge,
    clock: Clock = systemClock,
  ) {
    this.batches = new BatchPlacement(
      writer,
      {
        prepare: (tenant, input) => this.prepare(tenant, input),
        place: (tenant, item) => this.place(tenant, item),
      },
      clock,
    );
  }

  private readonly batches: BatchPlacement;

  /**
   * Stores or replaces a record; an older occurrence than the stored one changes nothing, wherever the
   * record lives. A record whose event names another subject than before moves there only when the event
   * is newer; it keeps a deletion that covers it.
   */
  async upsert(tenant: TenantScope, input: UpsertInput): Promise<'stored' | 'stale'> {
    return this.place(tenant, await this.prepare(tenant, input));
  }

  /**
   * The upserts of a batch of one tenant (a device's check-in), each as if it came alone, in order, a
   * subject's new versions in one transaction (BatchPlacement). Each item's outcome, or what it failed with.
   */
  upsertAll(tenant: TenantScope, inputs: readonly UpsertInput[]): Promise<BatchItemOutcome[]> {
    return this.batches.upsertAll(tenant, inputs);
  }

  /** An event's subject resolved (its identifiers registered, aliases merged) and its keys and content. */
  private async prepare(tenant: TenantScope, input: UpsertInput): Promise<PreparedUpsert> {
    const subject = await this.identity.forEvent(tenant, input.subject, input.occurredAt);
    for (const alias of subject.links) await this.merge.link(tenant, alias, subject.subjectKey);
    const pseudonymKey = await this.pseudonymizer.keyFor(tenant);
    const recordKey = recordKeyOf(pseudonymKey, input.category, input.recordId);
    const deviceKey = input.deviceName ? deviceKeyOf(pseudonymKey, input.deviceName) : undefined;
    const rowKey = recordRowKey(input.category, recordKey);
    const content = recordContent(pseudonymKey, input);
    return { input, subject, recordKey, rowKey, deviceKey, content };
  }

  /** Places one prepared event's version: upsert() after its subject is resolved. */
  private async place(tenant: TenantScope, item: PreparedUpsert): Promise<'stored' | 'stale'> {
    const { input, subject, recordKey, rowKey, deviceKey, content } = item;
    const records = await this.records(tenant);

    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      // An alias's own subject that an event has linked to an object id meanwhile (`~linked`) takes no more
      // records: they go where it was merged. Otherwise a retry could take this record for one to move back
      // from the object subject, and remove it there while the merge removes it here.
      const to =
        subject.holder === 'alias'
          ? await this.currentSubject(tenant, subject.subjectKey)
          : subject.subjectKey;
      const lookup = await this.recordLookup(tenant, recordKey);
      const from = lookup?.subjectKey;
      let deletedAt = deletionFor(input.occurredAt, deletionsOf(lookup));
      // Compare before moving: a late, older event for another subject changes nothing.
      const previous =
        from && from !== to
          ? await readRow<RecordEntity>(records, recordsPartition(tenant.tenantId, from), rowKey)
          : undefined;
      if (previous && previous.occurredAt > input.occurredAt) {
        // A row of this record left here by an earlier try of this event (written before another event
        // took the lookup elsewhere) is older than the record's version there: it goes.
        await this.dropOlderThan(tenant, to, rowKey, previous.occurredAt);
        return 'stale';
      }
      if (previous) deletedAt = deletionFor(input.occurredAt, [deletedAt, previous.deletedAt]);

      const written = await this.writer.write(
        tenant,
        to,
        { category: input.category, rowKey, occurredAt: input.occurredAt, deletedAt, deviceKey, content },
        from === to,
      );
      if (written.outcome === 'stale') return 'stale';
      // A move leaves the old place before the lookup follows: a crash in between leaves the lookup at
      // a place without the row, which the redelivery moves on from; never the row at two places.
      const withdraw = () =>
        this.writer.remove(tenant, to, {
          rowKey,
          category: input.category,
          ...written.stored,
          ...(deviceKey ? { deviceKey } : {}),
        });
      if (from && from !== to && previous) {
        const left = await this.leave(tenant, from, previous, input.occurredAt).catch(
          async (error: unknown) => {
            // The old row kept changing: this event's row goes again before the event is retried.
            await withdraw();
            throw error;
          },
        );
        if (!left) {
          // A newer version appeared at the old place meanwhile: this event lost; its row goes again.
          await withdraw();
          return 'stale';
        }
      }
      if (from !== to && !(await this.pointLookup(tenant, recordKey, lookup, to))) continue;
      if (subject.holder === 'alias' && to === subject.subjectKey) {
        await this.followLink(tenant, to, input.subject);
      }
      return 'stored';
    }
    throw new Error('The record kept moving concurrently.');
  }

  /**
   * Runs the upserts of a batch of one tenant (a device's check-in) with what depends on their rows written
   * once at its end (RecordWriter.batch).
   */
  batch<T>(tenant: TenantScope, work: () => Promise<T>): Promise<T> {
    return this.writer.batch(tenant, work);
  }

  /**
   * Soft-deletes one record. Every deletion is kept with the record's lookup, so a version that arrives
   * later is stored deleted when a deletion covers it, whatever order the events came in.
   */
  async softDeleteRecord(
    tenant: TenantScope,
    category: RecordCategory,
    recordId: string,
    deletedAt: string,
  ): Promise<'deleted' | 'unchanged' | 'tombstoned'> {
    const pseudonymKey = await this.pseudonymizer.keyFor(tenant);
    const recordKey = recordKeyOf(pseudonymKey, category, recordId);
    const lookups = await this.lookups(tenant);
    const records = await this.records(tenant);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const lookup = await this.recordLookup(tenant, recordKey);
      const known = deletionsOf(lookup);
      const deletions = withDeletion(known as string[], deletedAt);
      try {
        if (!lookup) {
          await lookups.createEntity({
            ...lookupKeys.record(tenant.tenantId, recordKey),
            deletions: JSON.stringify(deletions),
          });
        } else if (deletions.join() !== known.join()) {
          await lookups.updateEntity(
            { ...lookupKeys.record(tenant.tenantId, recordKey), deletions: JSON.stringify(deletions) },
            'Merge',
            { etag: lookup.etag },
          );
        }
      } catch (error) {
        if (isStatus(error, 409) || isStatus(error, 412) || isStatus(error, 404)) continue;
        throw error;
      }
      if (!lookup?.subjectKey) return 'tombstoned';
      const partitionKey = recordsPartition(tenant.tenantId, lookup.subjectKey);
      const row = await readRow<RecordEntity>(records, partitionKey, recordRowKey(category, recordKey));
      if (!row) return 'unchanged';
      const applies = deletionFor(row.occurredAt, [...deletions, row.deletedAt]);
      if (!applies) return 'unchanged';
      if (applies === row.deletedAt) {
        // Deleted already, maybe by this very event before a crash: its entries must be there too.
        await this.writer.ensureEntries(tenant, lookup.subjectKey, [row]);
        return 'unchanged';
      }
      const marked = await this.writer.markDeleted(tenant, lookup.subjectKey, [{ row, deletedAt: applies }]);
      if (marked.length === 1) return 'deleted';
    }
    throw new Error('The record kept changing concurrently.');
  }

  /** Active deletion of a subject (SPEC §4 `subject.deleted`): every live record of theirs soft-deleted. */
  async softDeleteSubject(tenant: TenantScope, subject: DataSubject, deletedAt: string): Promise<number> {
    const { subjectKey } = await this.identity.forRequest(tenant, subject);
    const records = await this.records(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const changes: { row: StoredRow; deletedAt: string }[] = [];
    const done: StoredRow[] = [];
    for await (const row of records.listEntities<RecordEntity>({
      queryOptions: {
        filter: odata`PartitionKey eq ${partitionKey}` + ` and ${RECORDS_ONLY}`,
        select: ['RowKey', 'category', 'occurredAt', 'deletedAt', 'deviceKey'],
      },
    })) {
      if (shouldDelete(row, deletedAt)) changes.push({ row, deletedAt });
      else if (row.deletedAt === deletedAt) done.push(row);
    }
    // Rows this deletion marked before a crash: their entries are made sure of.
    await this.writer.ensureEntries(tenant, subjectKey, done);
    return (await this.writer.markDeleted(tenant, subjectKey, changes)).length;
  }

  /** A retired device: every live record reported with its name soft-deleted. */
  async softDeleteDevice(tenant: TenantScope, deviceName: string, deletedAt: string): Promise<number> {
    const deviceKey = deviceKeyOf(await this.pseudonymizer.keyFor(tenant), deviceName);
    const lookups = await this.lookups(tenant);
    const records = await this.records(tenant);
    const bySubject = new Map<
      string,
      { marked: { row: StoredRow; deletedAt: string }[]; done: StoredRow[] }
    >();
    const { partitionKey: devicePartition } = lookupKeys.device(tenant.tenantId, deviceKey, '', '');
    for await (const entry of lookups.listEntities<{ subjectKey?: string }>({
      queryOptions: { filter: odata`PartitionKey eq ${devicePartition}` },
    })) {
      if (!entry.subjectKey) continue;
      const rowKey = entry.rowKey!.slice(entry.subjectKey.length + 1);
      const partitionKey = recordsPartition(tenant.tenantId, entry.subjectKey);
      const row = await readRow<RecordEntity>(records, partitionKey, rowKey);
      if (!row || row.deviceKey !== deviceKey) continue;
      const changes = bySubject.get(entry.subjectKey) ?? { marked: [], done: [] };
      if (shouldDelete(row, deletedAt)) changes.marked.push({ row, deletedAt });
      else if (row.deletedAt === deletedAt) changes.done.push(row);
      bySubject.set(entry.subjectKey, changes);
    }
    let count = 0;
    for (const [subjectKey, changes] of bySubject) {
      // Rows this retirement marked before a crash: their entries are made sure of.
      await this.writer.ensureEntries(tenant, subjectKey, changes.done);
      count += (await this.writer.markDeleted(tenant, subjectKey, changes.marked)).length;
    }
    return count;
  }

  /**
   * The subject a request acts on (SPEC §5), made findable: an object id takes over the aliases the request
   * names that no other object id holds (their own subjects merge into it); an alias nobody holds is
   * registered as its own subject; a subject merged since `pinned` was resolved is followed.
   */
  async settleSubject(
    tenant: TenantScope,
    subject: DataSubject,
    pinned?: Pick<RequestSubject, 'subjectKey' | 'holder'>,
  ): Promise<RequestSubject> {
    const resolved = await this.identity.forRequest(tenant, subject);
    if (pinned?.holder === 'object' && pinned.subjectKey !== resolved.subjectKey) {
      // The alias passed to someone else after the request was taken in: it acts on whom it named then.
      resolved.subjectKey = pinned.subjectKey;
      resolved.holder = 'object';
      resolved.links = [];
    }
    for (const alias of resolved.links) await this.merge.link(tenant, alias, resolved.subjectKey);
    resolved.subjectKey = await this.currentSubject(tenant, resolved.subjectKey);
    await this.identity.register(tenant, subject, resolved);
    return resolved;
  }

  /** The subject a request names, read only (what a request is pinned to when it is taken in). */
  subjectOf(tenant: TenantScope, subject: DataSubject): Promise<RequestSubject> {
    return this.identity.forRequest(tenant, subject);
  }

  /** Where a subject is now: itself, or the object subject an alias's own subject was merged into. */
  async currentSubject(tenant: TenantScope, subjectKey: string): Promise<string> {
    const target = await this.identity.linkedTo(tenant, subjectKey);
    return target ?? subjectKey;
  }

  /** The identifiers a subject was seen with (HMACs), and the alias subjects merged into it. */
  async knownIdentifiers(
    tenant: TenantScope,
    subjectKey: string,
  ): Promise<{ identifiers: Identifier[]; merged: string[] }> {
    const identifiers = await this.identity.listedIdentifiers(tenant, subjectKey);
    const records = await this.records(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    const merged: string[] = [];
    for await (const row of records.listEntities({
      queryOptions: { filter: rowKeyRange(partitionKey, subjectRows.mergedPrefix), select: ['RowKey'] },
    })) {
      merged.push(row.rowKey!.slice(subjectRows.mergedPrefix.length));
    }
    return { identifiers, merged };
  }

  /**
   * Whether an identifier (normalised, as redaction compares them) is one the subject was seen with: matched
   * by HMAC, since only HMACs of the subject's identifiers are stored.
   */
  async seenWith(tenant: TenantScope, subjectKey: string): Promise<(identifier: string) => boolean> {
    const pseudonymKey = await this.pseudonymizer.keyFor(tenant);
    const listed = new Set((await this.identity.listedIdentifiers(tenant, subjectKey)).map((id) => id.key));
    const known = new Map<string, boolean>();
    return (identifier) => {
      let mine = known.get(identifier);
      if (mine === undefined) {
        mine = IDENTIFIER_KINDS.some((kind) => listed.has(hmacWith(pseudonymKey, kind, identifier)));
        if (known.size < 10_000) known.set(identifier, mine);
      }
      return mine;
    };
  }

  /** HMACs of identifiers as the subject's rows and the alias rows hold them. */
  async identifierKeys(tenant: TenantScope, subject: DataSubject): Promise<string[]> {
    return (await this.identity.identifiersOf(tenant, subject)).map((id) => id.key);
  }

  /** Records per category of a subject, soft-deleted ones included (they are still held). */
  async countByCategory(tenant: TenantScope, subjectKey: string): Promise<CategoryCounts> {
    const counts: CategoryCounts = {};
    const records = await this.records(tenant);
    const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
    for await (const row of records.listEntities<RecordEntity>({
      queryOptions: {
        filter: odata`PartitionKey eq ${partitionKey}` + ` and ${RECORDS_ONLY}`,
        select: ['category'],
      },
    })) {
      const category = row.category as RecordCategory;
      counts[category] = (counts[category] ?? 0) + 1;
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

  /** Changes fields of live records of one category (rectification), re-sealed with the subject's key. */
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
      if (await this.writer.reseal(tenant, subjectKey, row, dataKey, content)) changed++;
    }
    return changed;
  }

  /** Removes the record's row at a subject when it is older than `than` (a leftover); ETag-guarded. */
  private async dropOlderThan(tenant: TenantScope, subjectKey: string, rowKey: string, than: string) {
    const records = await this.records(tenant);
    const row = await readRow<RecordEntity>(records, recordsPartition(tenant.tenantId, subjectKey), rowKey);
    if (row && row.occurredAt < than) await this.writer.remove(tenant, subjectKey, row);
  }

  private async recordLookup(tenant: TenantScope, recordKey: string) {
    return readRecordLookup(await this.lookups(tenant), tenant.tenantId, recordKey);
  }

  private async pointLookup(
    tenant: TenantScope,
    recordKey: string,
    lookup: RecordLookupEntity | undefined,
    subjectKey: string,
  ): Promise<boolean> {
    return pointRecordLookup(await this.lookups(tenant), tenant.tenantId, recordKey, lookup, subjectKey);
  }

  /**
   * The record's row at its previous subject goes, at the version compared; if it changed meanwhile, it
   * goes only when it is still not newer than the moving event. False: a newer version is there.
   */
  private async leave(
    tenant: TenantScope,
    from: string,
    previous: RecordEntity & { etag: string },
    occurredAt: string,
  ) {
    const records = await this.records(tenant);
    let row: (RecordEntity & { etag: string }) | undefined = previous;
    for (let attempt = 0; row && attempt < ATTEMPTS; attempt++) {
      if (row.occurredAt > occurredAt) return false;
      if (await this.writer.remove(tenant, from, row)) return true;
      row = await readRow<RecordEntity>(records, recordsPartition(tenant.tenantId, from), previous.rowKey);
    }
    // Still there, changing under every try: the lookup must not follow while a row stays behind (a located
    // row there would be written without its lookup). Retried by redelivery.
    if (row) throw new Error('The record kept changing at its previous subject while it moved.');
    return true;
  }

  /**
   * A record written to an alias's own subject while an event linked the alias to an object id follows it
   * there: the subject was merged meanwhile (`~linked`), or the linking event did not see it yet.
   */
  private async followLink(tenant: TenantScope, aliasSubject: string, subject: DataSubject) {
    const target =
      (await this.identity.linkedTo(tenant, aliasSubject)) ??
      (await this.identity.objectHolderOf(tenant, subject));
    if (target) await this.merge.link(tenant, aliasSubject, target);
  }

  private records(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.records);
  }

  private lookups(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.recordLookup);
  }
}
