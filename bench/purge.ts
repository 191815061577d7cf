// (d) Retention purge throughput: a tenant (AU, a geography no other scenario uses) holds E expired
// short-lived records (`usage`, occurred 40 to 100 days before the bench clock) and L live ones
// (`directory`), ~10 records per subject, seeded by the raw seeder (exactly what upsert writes, expiry
// index entries with their record rows' ETags included). The real purge (`services.retention.purgeTenant`)
// is timed and its requests counted: it deletes the record-id lookups, then the record rows in transactions
// conditional on the ETag each entry names, then the entries (conditional on their own ETags). The floor in
// the same run: raw SDK entity-group deletes (100 per transaction, grouped by partition, 8 partitions at a
// time as the product sends them) of the E expired record rows, from tables of their own in the same account
// seeded with exactly the same rows, live ones included (Azurite's cost of a delete grows with the rows of
// the table). The raw SDK cannot make a delete inside a transaction conditional (it sends `If-Match: *`),
// so the floor's are not: the rows, requests and transactions are the same, and the product's conditions
// (and the body rewriting that puts them in) are part of what it is measured for. A second figure times raw
// deletes of every row the purge must remove (record-id lookup, record, expiry entry, in the product's
// order), to tell the index's cost from the product's overhead.
import { odata, type TableClient, type TransactionAction } from '@azure/data-tables';

import type { UpsertInput } from '../shared/records/recordStore';
import { dueDay } from '../shared/retention/retentionPolicy';
import type { RecordCategory } from '../shared/vocabulary/categories';
import type { TenantScope } from '../shared/residency/tenantDirectory';
import { TABLES } from '../shared/storage/names';
import { PARALLEL_PARTITIONS } from '../shared/storage/tableBatches';
import { type BenchSubject, benchSubject, random, recordData } from './dataset';
import type { Bench } from './environment';
import type { SeedStats, SeedSubject } from './rawSeeder';
import { totalRequests } from './requestCounter';
import type { Scale } from './scale';
import { inPool, now, progress, round } from './util';

const RAW = { records: 'benchPurgeRecords', lookups: 'benchPurgeLookup', expiry: 'benchPurgeExpiry' };
const DAY_MS = 24 * 60 * 60 * 1000;
const BATCH_LIMIT = 100;

export async function purgeScenario(bench: Bench, scale: Scale) {
  const { expired, live, recordsPerSubject } = scale.purge;
  const { services } = bench;
  const clock = services.clock();
  const tenant = await bench.newTenant('AU');

  // Expired subjects hold only `usage` records, live subjects only `directory` ones: the expired records
  // sit ~10 to a partition, as the floor's do.
  const expiredSubjects = Math.ceil(expired / recordsPerSubject);
  const liveSubjects = Math.ceil(live / recordsPerSubject);
  const subjectsOf = (seed: number, category: RecordCategory, total: number) => {
    const rng = random(seed);
    return (index: number): SeedSubject => {
      const owner = benchSubject(rng, `purge.${category}${index}`);
      const count = Math.min(recordsPerSubject, total - index * recordsPerSubject);
      return { subject: owner.subject, records: records(rng, owner, category, count, index) };
    };
  };
  const records = (
    rng: () => number,
    owner: BenchSubject,
    category: RecordCategory,
    count: number,
    index: number,
  ): UpsertInput[] =>
    Array.from({ length: count }, (_, i) => ({
      category,
      recordId: `${category}-${index}-${i}`,
      subject: owner.subject,
      occurredAt: new Date(
        clock.getTime() - (category === 'usage' ? 40 + rng() * 60 : rng() * 300) * DAY_MS,
      ).toISOString(),
      data: recordData(rng, scale.recordBytes, owner),
    }));

  progress(`purge: seeding ${expired} expired and ${live} live records`);
  const seeder = await bench.seeder(tenant, scale.seedConcurrency);
  const seeding: Record<string, SeedStats> = {
    expired: await seeder.seed(expiredSubjects, subjectsOf(21, 'usage', expired)),
    live: await seeder.seed(liveSubjects, subjectsOf(22, 'directory', live)),
  };
  const rawSeeder = await bench.seeder(tenant, scale.seedConcurrency, RAW);
  seeding.rawExpired = await rawSeeder.seed(expiredSubjects, subjectsOf(21, 'usage', expired));
  seeding.rawLive = await rawSeeder.seed(liveSubjects, subjectsOf(22, 'directory', live));
  const rawRecords = await bench.rawTable(tenant.geography, RAW.records);
  const rawLookups = await bench.rawTable(tenant.geography, RAW.lookups);
  const rawExpiry = await bench.rawTable(tenant.geography, RAW.expiry);
  const rawKeys = await recordKeysOf(rawRecords, tenant.tenantId, 'usage');
  const rawLookupKeys = await recordLookupKeysOf(
    rawLookups,
    tenant.tenantId,
    new Set(rawKeys.map((key) => key.partitionKey.slice(tenant.tenantId.length + 1))),
  );
  const rawExpiryKeys = await expiryKeysOf(rawExpiry, tenant.tenantId);
  if (rawKeys.length !== expired || rawLookupKeys.length !== expired || rawExpiryKeys.length !== expired) {
    throw new Error(
      `Purge: the floor holds ${rawKeys.length} expired records, ${rawLookupKeys.length} of their lookups, ${rawExpiryKeys.length} expiry entries.`,
    );
  }
  if ((await recordKeysOf(rawRecords, tenant.tenantId)).length !== expired + live) {
    throw new Error('Purge: the floor does not hold the live records.');
  }
  const before = await storedCounts(bench, tenant);
  if (before.expired !== expired || before.live !== live || before.expiryEntries !== expired) {
    throw new Error(`Purge: seeded ${JSON.stringify(before)}.`);
  }

  progress(`purge: product purge of ${expired} expired records`);
  const day = dueDay(clock);
  const counts = bench.counter.snapshot();
  const stopTrace = bench.counter.startTrace();
  const started = now();
  const report = await services.retention.purgeTenant({ tenantId: tenant.tenantId, day });
  const productMs = now() - started;
  const trace = stopTrace();
  const productCounts = bench.counter.since(counts);
  if (!report) throw new Error('Purge: the tenant was not purged (no report).');
  progress(`purge: product ${round(productMs)} ms; raw deletes next`);

  // In the product's order: the record-id lookups, the record rows (the floor proper), the expiry entries.
  // The lookups and entries are the other rows the purge removes, timed the same way: the index's floor.
  const lookupStarted = now();
  const lookupTransactions = await deleteInBatches(rawLookups, rawLookupKeys);
  const lookupMs = now() - lookupStarted;
  const rawCounts = bench.counter.snapshot();
  const rawStarted = now();
  const rawTransactions = await deleteInBatches(rawRecords, rawKeys);
  const rawMs = now() - rawStarted;
  const rawRequests = bench.counter.since(rawCounts);
  const expiryStarted = now();
  const expiryTransactions = await deleteInBatches(rawExpiry, rawExpiryKeys);
  const expiryMs = now() - expiryStarted;
  const indexMs = lookupMs + expiryMs;
  const indexTransactions = lookupTransactions + expiryTransactions;

  const after = await storedCounts(bench, tenant);
  const rawLeft = (await recordKeysOf(rawRecords, tenant.tenantId, 'usage')).length;
  const verified =
    after.expired === 0 &&
    after.live === live &&
    after.expiryEntries === 0 &&
    after.recordLookups === live &&
    report.deleted.usage === expired &&
    rawLeft === 0;
  const productRps = expired / (productMs / 1000);
  const rawRps = expired / (rawMs / 1000);
  const ratio = productRps / rawRps;
  const allRowsRps = expired / ((rawMs + indexMs) / 1000);
  progress(
    `purge: product ${round(productRps)} records/s, raw ${round(rawRps)} records/s, verified ${verified}`,
  );
  const { tenantId: _tenantId, ...reportCounts } = report;
  return {
    seeding,
    result: {
      expired,
      live,
      subjects: { expired: expiredSubjects, live: liveSubjects, recordsPerSubject },
      ms: round(productMs),
      recordsPerSecond: round(productRps),
      requests: totalRequests(productCounts),
      requestsPerExpiredRecord: round(totalRequests(productCounts) / expired, 2),
      requestsByService: productCounts,
      /** Table requests by kind (transactions by the table and action inside), with the time they took. */
      tableRequests: Object.fromEntries(
        Object.entries(trace)
          .sort(([, a], [, b]) => b.ms - a.ms)
          .map(([kind, t]) => [kind, { requests: t.requests, rows: t.rows, ms: round(t.ms) }]),
      ),
      tableRequestMs: round(Object.values(trace).reduce((sum, t) => sum + t.ms, 0)),
      report: reportCounts,
      raw: {
        ms: round(rawMs),
        recordsPerSecond: round(rawRps),
        requests: totalRequests(rawRequests),
        transactions: rawTransactions,
        concurrency: PARALLEL_PARTITIONS,
      },
      rawAllRows: {
        rows: 'record + record-id lookup + expiry entry per expired record',
        ms: round(rawMs + indexMs),
        msByTable: {
          records: round(rawMs),
          recordLookup: round(lookupMs),
          expiry: round(expiryMs),
        },
        recordsPerSecond: round(allRowsRps),
        transactions: rawTransactions + indexTransactions,
      },
      ratio: round(ratio, 2),
      ratioToAllRows: round(productRps / allRowsRps, 2),
      goal: 'ratio >= 0.8',
      meetsGoal: ratio >= 0.8,
      verified,
      stored: { before, after, rawRecordsLeft: rawLeft },
    },
  };
}

type Key = { partitionKey: string; rowKey: string };

/** The keys of the rows a raw query returns that `keep` accepts (only the columns `keep` reads are fetched). */
async function keysOf(
  table: TableClient,
  filter: string,
  columns: string[] = [],
  keep: (row: Record<string, unknown>) => boolean = () => true,
): Promise<Key[]> {
  const keys: Key[] = [];
  for await (const row of table.listEntities({
    queryOptions: { filter, select: ['PartitionKey', 'RowKey', ...columns] },
  })) {
    if (keep(row)) keys.push({ partitionKey: row.partitionKey!, rowKey: row.rowKey! });
  }
  return keys;
}

/** The record rows (not `~key`, `~id_`) of the tenant in a records table, of one category or all. */
const recordKeysOf = (table: TableClient, tenantId: string, category?: string) =>
  keysOf(
    table,
    odata`PartitionKey gt ${`${tenantId}_`} and PartitionKey lt ${`${tenantId}\u0060`} and RowKey lt '~'`,
    ['category'],
    (row) => !category || row.category === category,
  );

/** The record-id lookups (`_r`) of the tenant that point at one of these subjects. */
const recordLookupKeysOf = (table: TableClient, tenantId: string, subjectKeys: ReadonlySet<string>) =>
  keysOf(
    table,
    odata`PartitionKey ge ${`${tenantId}_r`} and PartitionKey lt ${`${tenantId}_s`}`,
    ['subjectKey'],
    (row) => typeof row.subjectKey === 'string' && subjectKeys.has(row.subjectKey),
  );

const expiryKeysOf = (table: TableClient, tenantId: string) =>
  keysOf(table, odata`PartitionKey ge ${`${tenantId}_x`} and PartitionKey lt ${`${tenantId}_y`}`);

/** The floor: deletes grouped by partition, 100 per transaction, as many partitions at once as the product. */
async function deleteInBatches(table: TableClient, keys: readonly Key[]): Promise<number> {
  const byPartition = new Map<string, Key[]>();
  for (const key of keys) {
    const group = byPartition.get(key.partitionKey);
    if (group) group.push(key);
    else byPartition.set(key.partitionKey, [key]);
  }
  const transactions = await inPool([...byPartition.values()], PARALLEL_PARTITIONS, async (group) => {
    for (let i = 0; i < group.length; i += BATCH_LIMIT) {
      await table.submitTransaction(
        group.slice(i, i + BATCH_LIMIT).map((key): TransactionAction => ['delete', key]),
      );
    }
    return Math.ceil(group.length / BATCH_LIMIT);
  });
  return transactions.reduce((sum, n) => sum + n, 0);
}

/** What the tenant holds (raw queries, not counted in the timed parts). */
async function storedCounts(bench: Bench, tenant: TenantScope) {
  const t = tenant.tenantId;
  const count = async (table: string, filter: string, select: string[]) => {
    const rows: Record<string, unknown>[] = [];
    const client = await bench.rawTable(tenant.geography, table);
    for await (const row of client.listEntities({ queryOptions: { filter, select } })) rows.push(row);
    return rows;
  };
  const records = await count(
    TABLES.records,
    odata`PartitionKey gt ${`${t}_`} and PartitionKey lt ${`${t}\u0060`} and RowKey lt '~'`,
    ['category'],
  );
  const lookups = await count(
    TABLES.recordLookup,
    odata`PartitionKey ge ${`${t}_r`} and PartitionKey lt ${`${t}_s`}`,
    ['RowKey'],
  );
  const expiry = await count(
    TABLES.expiry,
    odata`PartitionKey ge ${`${t}_x`} and PartitionKey lt ${`${t}_y`}`,
    ['RowKey'],
  );
  return {
    expired: records.filter((row) => row.category === 'usage').length,
    live: records.filter((row) => row.category === 'directory').length,
    recordLookups: lookups.length,
    expiryEntries: expiry.length,
  };
}
