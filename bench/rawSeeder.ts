// Fast seeding: writes, with entity-group transactions, exactly the rows RecordStore.upsert writes for a new
// subject's new records, as if each subject's records arrived as events in the order given (see
// layoutCheck.ts, which compares the two on every run). It uses the store's own key helpers, record HMACs,
// sealed content, pseudonyms and key provider, so only the number of round trips differs:
// - `records`, partition `${tenantId}_${subjectKey}`: one row per record (category, occurredAt, deviceKey,
//   sealed), `~key` (the subject's data key wrapped by the tenant key), `~id_<identifier HMAC>` {kind} per
//   identifier;
// - `recordLookup`: `_i` alias (upn, email) → subject {subjectKey, holder, seenAt}, `_r` record → subject,
//   `_d` device → record;
// - `expiry`: the retention entries of each record (short-lived categories, alerts), by due month, each
//   carrying the ETag of the record row it was made for. So the record rows are written first, and their
//   ETags taken from the transactions' sub-responses (read back where a sub-response has none).
import { randomBytes } from 'node:crypto';

import type { TableClient, TableEntity, TransactionAction } from '@azure/data-tables';

import type { KeyProvider } from '../shared/crypto/keyProvider';
import { hmacWith } from '../shared/crypto/pseudonymizer';
import { DATA_KEY_BYTES } from '../shared/crypto/wrappedKeys';
import { SUBJECT_KEY_ROW } from '../shared/records/subjectKeys';
import { lookupKeys, recordRowKey, recordsPartition, subjectRows } from '../shared/records/recordKeys';
import { deviceKeyOf, recordKeyOf, sealContent } from '../shared/records/recordRows';
import { type UpsertInput } from '../shared/records/recordStore';
import { recordContent } from '../shared/records/recordContent';
import { type Holder, IDENTIFIER_KINDS } from '../shared/records/subjectIdentity';
import { expiryKeys, recordExpiries } from '../shared/retention/expiryIndex';
import type { DataSubject } from '../shared/vocabulary/dataSubject';
import { inPool } from './util';

const BATCH_LIMIT = 100;

type Row = TableEntity<Record<string, unknown>>;

export interface SeedTables {
  records: TableClient;
  lookups: TableClient;
  expiry: TableClient;
}

export interface SeedStats {
  subjects: number;
  records: number;
  rows: number;
  transactions: number;
  /** Record rows whose ETag was not in their transaction's sub-response and was read back (one request each). */
  etagsReadBack: number;
  ms: number;
}

export interface SeedSubject {
  subject: DataSubject;
  /** In the order upsert would see them: the first one's event is the one that first saw the aliases. */
  records: UpsertInput[];
}

/** A record row whose expiry entries wait for the ETag the row gets when it is written. */
interface PendingExpiry {
  record: UpsertInput;
  subjectKey: string;
  partitionKey: string;
  rowKey: string;
  deviceKey: string | undefined;
}

/** What a subject is seeded as: its rows, and the expiry entries to make once its record rows are written. */
export interface SubjectRows {
  records: Row[];
  lookups: Row[];
  expiries: PendingExpiry[];
}

export class RawSeeder {
  private transactions = 0;
  private rows = 0;
  private etagsReadBack = 0;

  constructor(
    private readonly tenantId: string,
    private readonly pseudonymKey: Buffer,
    private readonly keyProvider: KeyProvider,
    private readonly tables: SeedTables,
    private readonly concurrency = 8,
  ) {}

  /**
   * The rows RecordStore.upsert writes for a subject never seen before and records never seen before, upserted
   * in the order given (SubjectIdentity.forEvent for a new subject, RecordWriter.write for a new row).
   */
  async rowsOf(input: SeedSubject): Promise<SubjectRows> {
    const { tenantId, pseudonymKey } = this;
    const first = input.records[0];
    if (!first) throw new Error('A seeded subject needs records: its aliases are seen with its first one.');
    const identifiers = IDENTIFIER_KINDS.filter((kind) => input.subject[kind] !== undefined).map((kind) => ({
      kind,
      key: hmacWith(pseudonymKey, kind, input.subject[kind]!),
    }));
    // An object id keys the subject; without one, the first alias's own subject holds the records.
    const objectId = identifiers.find((id) => id.kind === 'objectId');
    const holder: Holder = objectId ? 'object' : 'alias';
    const subjectKey = (objectId ?? identifiers[0])?.key;
    if (!subjectKey) throw new Error('A seeded subject needs an identifier.');
    const partitionKey = recordsPartition(tenantId, subjectKey);
    const dataKey = randomBytes(DATA_KEY_BYTES);
    const wrapped = await this.keyProvider.wrapKey(tenantId, dataKey);
    const records: Row[] = [
      { partitionKey, rowKey: SUBJECT_KEY_ROW, ...wrapped, createdAt: new Date().toISOString() },
    ];
    const lookups: Row[] = [];
    const expiries: PendingExpiry[] = [];
    for (const { kind, key } of identifiers) {
      records.push({ partitionKey, rowKey: subjectRows.identifier(key), kind });
      if (kind === 'objectId') continue;
      // A new alias row is seen at the event that created it; its sole holder's row is never moved on.
      const { partitionKey: aliasPartition, prefix } = lookupKeys.identifier(tenantId, key);
      lookups.push({
        partitionKey: aliasPartition,
        rowKey: `${prefix}${subjectKey}`,
        subjectKey,
        holder,
        seenAt: first.occurredAt,
      });
    }
    for (const record of input.records) {
      const recordKey = recordKeyOf(pseudonymKey, record.category, record.recordId);
      const deviceKey = record.deviceName ? deviceKeyOf(pseudonymKey, record.deviceName) : undefined;
      const rowKey = recordRowKey(record.category, recordKey);
      records.push({
        partitionKey,
        rowKey,
        category: record.category,
        occurredAt: record.occurredAt,
        ...(deviceKey ? { deviceKey } : {}),
        sealed: sealContent(dataKey, recordContent(pseudonymKey, record), partitionKey, rowKey),
      });
      lookups.push({ ...lookupKeys.record(tenantId, recordKey), subjectKey });
      if (deviceKey)
        lookups.push({ ...lookupKeys.device(tenantId, deviceKey, subjectKey, rowKey), subjectKey });
      if (recordExpiries(record, { subjectKey, recordRow: rowKey }).length > 0)
        expiries.push({ record, subjectKey, partitionKey, rowKey, deviceKey });
    }
    return { records, lookups, expiries };
  }

  /**
   * Seeds `count` new subjects made by `subjectAt`, a chunk at a time: each subject's partition in its own
   * transactions at once (their ETags kept), then the lookup and expiry rows grouped by partition across the
   * whole tenant and written last.
   */
  async seed(count: number, subjectAt: (index: number) => SeedSubject, chunk = 500): Promise<SeedStats> {
    const started = performance.now();
    const startTransactions = this.transactions;
    const startRows = this.rows;
    const startReads = this.etagsReadBack;
    const lookupsByPartition = new Map<string, Row[]>();
    const expiryByPartition = new Map<string, Row[]>();
    let records = 0;
    for (let first = 0; first < count; first += chunk) {
      const subjects = Array.from({ length: Math.min(chunk, count - first) }, (_, i) => subjectAt(first + i));
      const rows = await Promise.all(subjects.map((s) => this.rowsOf(s)));
      for (const subject of subjects) records += subject.records.length;
      const etags = new Map<string, string>();
      await this.write(
        this.tables.records,
        rows.map((r) => r.records),
        etags,
      );
      for (const { lookups, expiries } of rows) {
        groupInto(lookupsByPartition, lookups);
        groupInto(
          expiryByPartition,
          expiries.flatMap((pending) => this.expiryRows(pending, etags)),
        );
      }
    }
    await this.write(this.tables.lookups, [...lookupsByPartition.values()]);
    await this.write(this.tables.expiry, [...expiryByPartition.values()]);
    return {
      subjects: count,
      records,
      rows: this.rows - startRows,
      transactions: this.transactions - startTransactions,
      etagsReadBack: this.etagsReadBack - startReads,
      ms: Math.round(performance.now() - started),
    };
  }

  /** A written record row's expiry entries, as RecordWriter.write makes them: with the row's ETag. */
  private expiryRows(pending: PendingExpiry, etags: ReadonlyMap<string, string>): Row[] {
    const etag = etags.get(rowId(pending));
    if (!etag) throw new Error(`Seeding: no ETag for record row ${pending.rowKey}.`);
    const target = {
      subjectKey: pending.subjectKey,
      recordRow: pending.rowKey,
      deviceKey: pending.deviceKey,
      etag,
    };
    return recordExpiries(pending.record, target).map((entry) => ({
      ...expiryKeys(this.tenantId, entry),
      entry: JSON.stringify(entry),
    }));
  }

  /**
   * Each group holds rows of one partition; written in transactions of up to 100. With `etags`, the ETag of
   * every row written is put there: from the transaction's sub-responses, which come in the order of its
   * actions, or read back where one has none.
   */
  private async write(table: TableClient, groups: Row[][], etags?: Map<string, string>): Promise<void> {
    const batches: Row[][] = [];
    for (const group of groups) {
      for (let i = 0; i < group.length; i += BATCH_LIMIT) batches.push(group.slice(i, i + BATCH_LIMIT));
    }
    await inPool(batches, this.concurrency, async (batch) => {
      const response = await table.submitTransaction(batch.map((row): TransactionAction => ['create', row]));
      this.transactions++;
      this.rows += batch.length;
      if (!etags) return;
      for (const [i, row] of batch.entries()) {
        // A sub-response that names another row (it never did on Azurite) is not trusted: the row is read.
        const sub = response.subResponses[i];
        let etag = sub && (sub.rowKey === undefined || sub.rowKey === row.rowKey) ? sub.etag : undefined;
        if (!etag) {
          etag = (await table.getEntity(row.partitionKey, row.rowKey)).etag;
          this.etagsReadBack++;
        }
        etags.set(rowId(row), etag);
      }
    });
  }
}

const rowId = (row: { partitionKey: string; rowKey: string }) => `${row.partitionKey}\n${row.rowKey}`;

function groupInto(byPartition: Map<string, Row[]>, rows: readonly Row[]): void {
  for (const row of rows) {
    const list = byPartition.get(row.partitionKey);
    if (list) list.push(row);
    else byPartition.set(row.partitionKey, [row]);
  }
}
