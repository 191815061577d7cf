// The batch path of record upserts (SPEC §4 `records.upserted`): a subject's new versions in one entity-group
// transaction against their rows and record lookups as read, and replacements of `located` rows without
// reading their lookups (RecordEntity.located says why that is safe); everything else through the store's
// one-by-one path. RecordStore.upsertAll is the entry point.
import type { Clock } from '../clock';
import type { TenantScope } from '../residency/tenantDirectory';
import { recordExpiries } from '../retention/expiryIndex';
import { dueDay } from '../retention/retentionPolicy';
import { TABLES } from '../storage/names';
import { BATCH_LIMIT } from '../storage/tableBatches';
import type { RecordCategory } from '../vocabulary/categories';
import type { UpsertInput } from './recordContent';
import { deletionsOf, pointRecordLookup, readRecordLookup } from './recordLookups';
import type { SealedContent } from './recordRows';
import type { RecordWriter, StoredRow } from './recordWriter';
import type { EventSubject } from './subjectIdentity';

/** What became of one item of a batch: its outcome, or what it failed with. */
export type BatchItemOutcome = { outcome: 'stored' | 'stale' } | { error: unknown };

/** An upsert with its subject resolved and its keys and sealed content's parts worked out (RecordStore). */
export interface PreparedUpsert {
  input: UpsertInput;
  subject: EventSubject;
  recordKey: string;
  rowKey: string;
  deviceKey: string | undefined;
  content: SealedContent;
}

/** An item of a batch, prepared, with its place in the batch. */
type Prepared = PreparedUpsert & { index: number };

/** How the store prepares an upsert and places it one by one (its usual path, which decides every case). */
export interface Placing {
  prepare(tenant: TenantScope, input: UpsertInput): Promise<PreparedUpsert>;
  place(tenant: TenantScope, item: PreparedUpsert): Promise<'stored' | 'stale'>;
}

/**
 * How far ahead a row counts as due for the located path: the purge takes the lookups of what is due by its
 * own day away while it deletes their rows, so a row due within two days (clocks of instances differ, a
 * purge runs late) reads its lookup.
 */
const DUE_MARGIN_MS = 2 * 24 * 3600 * 1000;

/** Whether any retention rule of a row's version falls due by `day` (yyyy-mm-dd). */
const dueBy = (row: Pick<StoredRow, 'category' | 'occurredAt' | 'deletedAt'>, day: string): boolean =>
  recordExpiries(
    { category: row.category as RecordCategory, occurredAt: row.occurredAt, deletedAt: row.deletedAt },
    { subjectKey: '', recordRow: '' },
  ).some((entry) => entry.day <= day);

export class BatchPlacement {
  constructor(
    private readonly writer: RecordWriter,
    private readonly placing: Placing,
    /** What "due soon" is measured from (the located path skips rows due within two days). */
    private readonly clock: Clock,
  ) {}

  /**
   * The upserts of a batch of one tenant (a device's check-in), each as if it came alone, in order: the new
   * versions of one subject's records go in one entity-group transaction, against their rows and record
   * lookups as read (created where neither exists, replaced where the lookup has the row at this subject,
   * undeleted and older). Everything else — a record named twice in the batch, an alias's subject, a
   * deletion known for the record, a move, the same version again, or a transaction refused because a row
   * changed meanwhile — goes through upsert() one by one afterwards, which decides it as usual. Each item's
   * outcome, or what it failed with (the caller decides which failures refuse an item).
   */
  async upsertAll(tenant: TenantScope, inputs: readonly UpsertInput[]): Promise<BatchItemOutcome[]> {
    const outcomes: BatchItemOutcome[] = new Array<BatchItemOutcome>(inputs.length);
    const prepared: Prepared[] = [];
    for (const [index, input] of inputs.entries()) {
      try {
        prepared.push({ ...(await this.placing.prepare(tenant, input)), index });
      } catch (error) {
        outcomes[index] = { error };
      }
    }
    const named = new Map<string, number>();
    for (const item of prepared) named.set(item.recordKey, (named.get(item.recordKey) ?? 0) + 1);
    const bySubject = new Map<string, Prepared[]>();
    const oneByOne: Prepared[] = [];
    for (const item of prepared) {
      if (item.subject.holder !== 'object' || named.get(item.recordKey)! > 1) {
        oneByOne.push(item);
        continue;
      }
      const group = bySubject.get(item.subject.subjectKey) ?? [];
      group.push(item);
      bySubject.set(item.subject.subjectKey, group);
    }
    for (const [subjectKey, group] of bySubject) {
      for (let i = 0; i < group.length; i += BATCH_LIMIT) {
        const left = await this.placeTogether(tenant, subjectKey, group.slice(i, i + BATCH_LIMIT), outcomes);
        oneByOne.push(...left);
      }
    }
    oneByOne.sort((a, b) => a.index - b.index);
    for (const item of oneByOne) {
      try {
        outcomes[item.index] = { outcome: await this.placing.place(tenant, item) };
      } catch (error) {
        outcomes[item.index] = { error };
      }
    }
    return outcomes;
  }

  /**
   * Writes what it can of one subject's items in one transaction (see upsertAll) and sets their outcomes;
   * returns the items left to upsert one by one. The rows are read first, then the lookups of the items
   * whose row is not `located`: a lookup read after its row, at this subject with no deletion, while that
   * row's version stays until the transaction replaces it at its ETag, makes the replacement `located`.
   */
  private async placeTogether(
    tenant: TenantScope,
    subjectKey: string,
    items: readonly Prepared[],
    outcomes: BatchItemOutcome[],
  ): Promise<Prepared[]> {
    const lookupTable = await tenant.account.table(TABLES.recordLookup);
    const current = await this.writer.current(
      tenant,
      subjectKey,
      items.map((item) => item.rowKey),
    );
    const replaceable = (item: Prepared) => {
      const row = current.get(item.rowKey);
      return row !== undefined && row.deletedAt === undefined && row.occurredAt < item.input.occurredAt;
    };
    // A located row not due soon needs no lookup read: its lookup names this subject while the row stays
    // (RecordEntity.located), except while the purge deletes a due row, its lookup first.
    const soon = dueDay(new Date(this.clock().getTime() + DUE_MARGIN_MS));
    const unread = new Set(
      items.filter((item) => {
        const row = current.get(item.rowKey);
        return replaceable(item) && row!.located && !dueBy(row!, soon);
      }),
    );
    const lookups = await Promise.all(
      items.map((item) =>
        unread.has(item) ? undefined : readRecordLookup(lookupTable, tenant.tenantId, item.recordKey),
      ),
    );
    const together: { item: Prepared; located: boolean }[] = [];
    const left: Prepared[] = [];
    for (const [n, item] of items.entries()) {
      const lookup = lookups[n];
      if (unread.has(item)) together.push({ item, located: true });
      else if (!lookup && !current.has(item.rowKey))
        together.push({ item, located: false }); // new
      else if (lookup?.subjectKey === subjectKey && deletionsOf(lookup).length === 0 && replaceable(item)) {
        together.push({ item, located: true });
      } else left.push(item);
    }
    const written = await this.writer.writeTogether(
      tenant,
      subjectKey,
      together.map(({ item, located }) => ({
        version: {
          category: item.input.category,
          rowKey: item.rowKey,
          occurredAt: item.input.occurredAt,
          deviceKey: item.deviceKey,
          content: item.content,
        },
        current: current.get(item.rowKey),
        located,
      })),
    );
    if (!written) return [...left, ...together.map(({ item }) => item)];
    // A new record's lookup follows its row, as in upsert(); taken meanwhile, the item is decided again.
    const pointed = await Promise.all(
      together.map(
        ({ item }) =>
          current.has(item.rowKey) ||
          pointRecordLookup(lookupTable, tenant.tenantId, item.recordKey, undefined, subjectKey),
      ),
    );
    for (const [n, { item }] of together.entries()) {
      if (pointed[n]) outcomes[item.index] = { outcome: 'stored' };
      else left.push(item);
    }
    return left;
  }
}
