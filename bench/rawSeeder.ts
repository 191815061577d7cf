// Fast seeding: writes, with entity-group transactions, exactly the rows RecordStore.upsert writes for a new
// subject's new records (see layoutCheck.ts, which compares the two on every run). It uses the store's own
// key helpers, sealed boxes, pseudonyms and key provider, so only the number of round trips differs:
// - `records`, partition `${tenantId}_${subjectKey}`: one row per record (category, occurredAt, deviceKey,
//   sealed), `~key` (the subject's data key wrapped by the tenant key), `~id_<identifier HMAC>` per identifier;
// - `recordLookup`: `_i` identifier → subject, `_r` record → subject, `_d` device → record;
// - `expiry`: the retention entries of each record (short-lived categories, alerts), by due month.
import { randomBytes } from 'node:crypto';

import type { TableClient, TableEntity, TransactionAction } from '@azure/data-tables';

import type { KeyProvider } from '../shared/crypto/keyProvider';
import { hmacWith } from '../shared/crypto/pseudonymizer';
import { seal } from '../shared/crypto/sealedBox';
import { DATA_KEY_BYTES, SUBJECT_KEY_ROW } from '../shared/crypto/subjectKeys';
import { lookupKeys, recordRowKey, recordsPartition } from '../shared/records/recordKeys';
import type { UpsertInput } from '../shared/records/recordStore';
import { expiryKeys, recordExpiries } from '../shared/retention/expiryIndex';
import type { DataSubject } from '../shared/requests/dataSubjectRequest';
import { inPool } from './util';

/** RecordStore's order of identifier kinds: the first present one keys a new subject. */
const IDENTIFIER_KINDS = ['objectId', 'upn', 'email'] as const;
/** RecordStore's prefix of the rows listing a subject's identifiers. */
const IDENTIFIER_ROW = '~id_';
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
  ms: number;
}

export interface SeedSubject {
  subject: DataSubject;
  records: UpsertInput[];
}

export class RawSeeder {
  private transactions = 0;
  private rows = 0;

  constructor(
    private readonly tenantId: string,
    private readonly pseudonymKey: Buffer,
    private readonly keyProvider: KeyProvider,
    private readonly tables: SeedTables,
    private readonly concurrency = 8,
  ) {}

  /** The rows RecordStore.upsert writes for a subject never seen before and records never seen before. */
  async rowsOf(input: SeedSubject): Promise<{ records: Row[]; lookups: Row[]; expiry: Row[] }> {
    const { tenantId, pseudonymKey } = this;
    const idKeys = IDENTIFIER_KINDS.filter((kind) => input.subject[kind] !== undefined).map((kind) =>
      hmacWith(pseudonymKey, kind, input.subject[kind]!),
    );
    const subjectKey = idKeys[0]!;
    const partitionKey = recordsPartition(tenantId, subjectKey);
    const dataKey = randomBytes(DATA_KEY_BYTES);
    const wrapped = await this.keyProvider.wrapKey(tenantId, dataKey);
    const records: Row[] = [
      { partitionKey, rowKey: SUBJECT_KEY_ROW, ...wrapped, createdAt: new Date().toISOString() },
    ];
    const lookups: Row[] = [];
    const expiry: Row[] = [];
    for (const idKey of idKeys) {
      const { partitionKey: idPartition, prefix } = lookupKeys.identifier(tenantId, idKey);
      lookups.push({ partitionKey: idPartition, rowKey: `${prefix}${subjectKey}`, subjectKey });
      records.push({ partitionKey, rowKey: `${IDENTIFIER_ROW}${idKey}` });
    }
    for (const record of input.records) {
      const recordKey = hmacWith(pseudonymKey, 'record', `${record.category}:${record.recordId}`);
      const deviceKey = record.deviceName ? hmacWith(pseudonymKey, 'device', record.deviceName) : undefined;
      const rowKey = recordRowKey(record.category, recordKey);
      const content = {
        recordId: record.recordId,
        subject: record.category === 'systemLog' ? this.pseudonymous(record.subject) : record.subject,
        ...(record.deviceName ? { deviceName: record.deviceName } : {}),
        data: record.data,
      };
      records.push({
        partitionKey,
        rowKey,
        category: record.category,
        occurredAt: record.occurredAt,
        ...(deviceKey ? { deviceKey } : {}),
        sealed: seal(dataKey, JSON.stringify(content), `${partitionKey}|${rowKey}`),
      });
      lookups.push({ ...lookupKeys.record(tenantId, recordKey), subjectKey });
      if (deviceKey)
        lookups.push({ ...lookupKeys.device(tenantId, deviceKey, subjectKey, rowKey), subjectKey });
      for (const entry of recordExpiries(record, { subjectKey, recordRow: rowKey, deviceKey })) {
        expiry.push({ ...expiryKeys(tenantId, entry), entry: JSON.stringify(entry) });
      }
    }
    return { records, lookups, expiry };
  }

  /**
   * Seeds `count` new subjects made by `subjectAt`, a chunk at a time: each subject's partition in its own
   * transactions at once, the lookup and expiry rows grouped by partition across the whole tenant and
   * written last.
   */
  async seed(count: number, subjectAt: (index: number) => SeedSubject, chunk = 500): Promise<SeedStats> {
    const started = performance.now();
    const startTransactions = this.transactions;
    const startRows = this.rows;
    const lookupsByPartition = new Map<string, Row[]>();
    const expiryByPartition = new Map<string, Row[]>();
    let records = 0;
    for (let first = 0; first < count; first += chunk) {
      const subjects = Array.from({ length: Math.min(chunk, count - first) }, (_, i) => subjectAt(first + i));
      const rows = await Promise.all(subjects.map((s) => this.rowsOf(s)));
      for (const subject of subjects) records += subject.records.length;
      for (const { lookups, expiry } of rows) {
        groupInto(lookupsByPartition, lookups);
        groupInto(expiryByPartition, expiry);
      }
      await this.write(
        this.tables.records,
        rows.map((r) => r.records),
      );
    }
    await this.write(this.tables.lookups, [...lookupsByPartition.values()]);
    await this.write(this.tables.expiry, [...expiryByPartition.values()]);
    return {
      subjects: count,
      records,
      rows: this.rows - startRows,
      transactions: this.transactions - startTransactions,
      ms: Math.round(performance.now() - started),
    };
  }

  /** Each group holds rows of one partition; written in transactions of up to 100. */
  private async write(table: TableClient, groups: Row[][]): Promise<void> {
    const batches: Row[][] = [];
    for (const group of groups) {
      for (let i = 0; i < group.length; i += BATCH_LIMIT) batches.push(group.slice(i, i + BATCH_LIMIT));
    }
    await inPool(batches, this.concurrency, async (batch) => {
      await table.submitTransaction(batch.map((row): TransactionAction => ['create', row]));
      this.transactions++;
      this.rows += batch.length;
    });
  }

  private pseudonymous(subject: DataSubject) {
    const result: Record<string, unknown> = { pseudonymous: true };
    for (const kind of IDENTIFIER_KINDS) {
      const value = subject[kind];
      if (value !== undefined) result[kind] = hmacWith(this.pseudonymKey, kind, value);
    }
    return result;
  }
}

function groupInto(byPartition: Map<string, Row[]>, rows: readonly Row[]): void {
  for (const row of rows) {
    const list = byPartition.get(row.partitionKey);
    if (list) list.push(row);
    else byPartition.set(row.partitionKey, [row]);
  }
}
