// Integration (Azurite): the rows of a check-in batch go in one entity-group transaction per subject
// (RecordStore.upsertAll); a transaction storage refuses because a row changed meanwhile leaves every item to
// be decided on its own; an event that loses a race for a new record to another subject leaves no row behind.
import { randomUUID } from 'node:crypto';

import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { TableClient } from '@azure/data-tables';

import { createRecordServices } from '../../../shared/records/recordServices';
import type { RecordStore, UpsertInput } from '../../../shared/records/recordStore';
import { RecordWriter } from '../../../shared/records/recordWriter';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import type { DataSubject } from '../../../shared/vocabulary/dataSubject';
import { lookupKeys, recordRowKey } from '../../../shared/records/recordKeys';
import { recordKeyOf } from '../../../shared/records/recordRows';
import { TABLES } from '../../../shared/storage/names';
import * as tableBatches from '../../../shared/storage/tableBatches';
import { testStorage, testTenantScope } from '../../support/testStorage';

/** Table requests to the `records` table that write record rows, by kind. */
const rowWrites = { transactions: 0, single: 0 };
/** Point reads of record-id lookups (`recordLookup`, partitions `<tenant>_r..`). */
let lookupReads = 0;
const counting: PipelinePolicy = {
  name: 'countRowWrites',
  sendRequest: (request, next) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    if (request.method === 'GET' && /\/recordLookup\(PartitionKey='[^']*_r[0-9a-f]{2}'/.test(path))
      lookupReads++;
    const body = typeof request.body === 'string' ? request.body : '';
    // Record rows carry `sealed`; a subject's own rows (its key, its identifiers) do not.
    if (!body.includes('"sealed"')) return next(request);
    if (request.url.includes('$batch')) {
      if (/\/records[ (]/.test(body)) rowWrites.transactions++;
    } else if (/\/records(\(|$|\?)/.test(new URL(request.url).pathname)) {
      rowWrites.single++;
    }
    return next(request);
  },
};
const storage = testStorage({ tablePolicies: [{ policy: counting, position: 'perCall' }] });
const newServices = () => createRecordServices({ transferPackages: async () => undefined });
const newStore = () => newServices().records;

const checkIn = (subject: DataSubject, device: string, at: string, version: number): UpsertInput[] =>
  Array.from({ length: 10 }, (_, i) => ({
    // Every third a short-lived category (deleted 30 days after it occurred).
    category: i % 3 === 0 ? 'systemLog' : i % 3 === 1 ? 'device' : 'alert',
    recordId: `${device}-${i}`,
    subject,
    occurredAt: at,
    deviceName: device,
    data: { version, item: i },
  }));

async function dataOf(store: RecordStore, tenant: TenantScope, subject: DataSubject) {
  const { subjectKey } = await store.subjectOf(tenant, subject);
  const found: Record<string, unknown> = {};
  for (const category of ['systemLog', 'device', 'alert'] as const) {
    for await (const record of store.list(tenant, subjectKey, category)) found[record.recordId] = record.data;
  }
  return found;
}

afterEach(() => jest.restoreAllMocks());

describe('RecordStore.upsertAll on Azurite', () => {
  it("writes a check-in's rows in one transaction, the first one and the next", async () => {
    const store = newStore();
    const tenant = testTenantScope(storage);
    const megan = { objectId: randomUUID(), upn: 'megan.bowen@contoso.com' };
    Object.assign(rowWrites, { transactions: 0, single: 0 });
    const first = await store.batch(tenant, () =>
      store.upsertAll(tenant, checkIn(megan, 'MEGAN-PC', '2026-11-01T08:00:00.000Z', 1)),
    );
    expect(first).toEqual(Array(10).fill({ outcome: 'stored' }));
    expect(rowWrites).toEqual({ transactions: 1, single: 0 });

    const next = await store.batch(tenant, () =>
      store.upsertAll(tenant, checkIn(megan, 'MEGAN-PC', '2026-11-01T16:00:00.000Z', 2)),
    );
    expect(next).toEqual(Array(10).fill({ outcome: 'stored' }));
    expect(rowWrites).toEqual({ transactions: 2, single: 0 });
    const stored = await dataOf(store, tenant, megan);
    expect(Object.keys(stored)).toHaveLength(10);
    expect(Object.values(stored).every((data) => (data as { version: number }).version === 2)).toBe(true);
  });

  it('decides every item on its own when a row changed between its read and the transaction', async () => {
    const store = newStore();
    const rival = newStore();
    const tenant = testTenantScope(storage);
    const lynne = { objectId: randomUUID() };
    await store.batch(tenant, () =>
      store.upsertAll(tenant, checkIn(lynne, 'LYNNE-PC', '2026-11-01T08:00:00.000Z', 1)),
    );
    // Right after the batch has read its rows, another instance stores a newer version of item 3.
    const read = RecordWriter.prototype.current;
    jest.spyOn(RecordWriter.prototype, 'current').mockImplementationOnce(async function (
      this: RecordWriter,
      ...args
    ) {
      const rows = await read.apply(this, args);
      const [newer] = checkIn(lynne, 'LYNNE-PC', '2026-11-02T08:00:00.000Z', 3).slice(3, 4);
      await rival.upsert(tenant, newer!);
      return rows;
    });
    Object.assign(rowWrites, { transactions: 0, single: 0 });
    const outcomes = await store.batch(tenant, () =>
      store.upsertAll(tenant, checkIn(lynne, 'LYNNE-PC', '2026-11-01T16:00:00.000Z', 2)),
    );
    // The refused transaction wrote nothing; the items went one by one, the rival's newer version kept.
    expect(rowWrites.transactions).toBe(1);
    expect(rowWrites.single).toBeGreaterThanOrEqual(10); // the rival's, and nine replacements
    expect(outcomes.map((o) => ('outcome' in o ? o.outcome : 'failed'))).toEqual(
      Array.from({ length: 10 }, (_, i) => (i === 3 ? 'stale' : 'stored')),
    );
    expect(await dataOf(store, tenant, lynne)).toEqual(
      Object.fromEntries(
        Array.from({ length: 10 }, (_, i) => [`LYNNE-PC-${i}`, { version: i === 3 ? 3 : 2, item: i }]),
      ),
    );
  });

  it('leaves no row at the subject of an event that lost a new record to a newer event for another', async () => {
    const store = newStore();
    const rival = newStore();
    const tenant = testTenantScope(storage);
    const before = { objectId: randomUUID() };
    const after = { objectId: randomUUID() };
    const record = (subject: DataSubject, occurredAt: string): UpsertInput => ({
      category: 'device',
      recordId: 'SHARED-PC-record',
      subject,
      occurredAt,
      deviceName: 'SHARED-PC',
      data: { owner: subject.objectId },
    });
    // The older event has written its row and is about to create the lookup when the newer one, for
    // another person, runs whole: it finds no lookup, stores its row and takes the lookup.
    const proto = Object.getPrototypeOf(store) as { pointLookup: (...args: unknown[]) => Promise<boolean> };
    const point = proto.pointLookup;
    jest.spyOn(proto, 'pointLookup').mockImplementationOnce(async function (this: unknown, ...args) {
      await rival.upsert(tenant, record(after, '2026-11-02T08:00:00.000Z'));
      return point.apply(this, args);
    });
    expect(await store.upsert(tenant, record(before, '2026-11-01T08:00:00.000Z'))).toBe('stale');
    expect(await dataOf(store, tenant, before)).toEqual({});
    expect(await dataOf(store, tenant, after)).toEqual({ 'SHARED-PC-record': { owner: after.objectId } });
  });

  const days = (n: number) => new Date(Date.now() + n * 24 * 3600 * 1000).toISOString();

  it('reads no record lookup from the check-in after next: the rows are located', async () => {
    const store = newStore();
    const tenant = testTenantScope(storage);
    const joni = { objectId: randomUUID() };
    const run = async (at: string, version: number) => {
      lookupReads = 0;
      const outcomes = await store.batch(tenant, () =>
        store.upsertAll(tenant, checkIn(joni, 'JONI-PC', at, version)),
      );
      expect(outcomes).toEqual(Array(10).fill({ outcome: 'stored' }));
      return lookupReads;
    };
    expect(await run(days(-2), 1)).toBe(10); // created: each lookup read (absent) and created
    expect(await run(days(-1), 2)).toBe(10); // replaced: each lookup read, found here, rows located
    expect(await run(days(0), 3)).toBe(0);
    const stored = await dataOf(store, tenant, joni);
    expect(Object.values(stored).map((data) => (data as { version: number }).version)).toEqual(
      Array(10).fill(3),
    );

    // A replacement by the one-by-one path (a single event) drops `located`: that record's lookup is read again.
    await store.upsert(tenant, checkIn(joni, 'JONI-PC', days(0.1), 4)[4]!);
    expect(await run(days(0.2), 5)).toBe(1);
  });

  it('reads the lookup of a located row that is due within two days (the purge may be taking its lookup)', async () => {
    const store = newStore();
    const tenant = testTenantScope(storage);
    const patti = { objectId: randomUUID() };
    for (const [n, at] of [days(-31), days(-29)].entries()) {
      await store.batch(tenant, () => store.upsertAll(tenant, checkIn(patti, 'PATTI-PC', at, n)));
    }
    lookupReads = 0;
    await store.batch(tenant, () => store.upsertAll(tenant, checkIn(patti, 'PATTI-PC', days(0), 2)));
    // The four system logs of days(-29) fall due (30 days) tomorrow; the others are months away.
    expect(lookupReads).toBe(4);
  });

  it('moves located records to the person who has the device now, and back, one copy each time', async () => {
    const store = newStore();
    const tenant = testTenantScope(storage);
    const first = { objectId: randomUUID() };
    const second = { objectId: randomUUID() };
    const device = (subject: DataSubject, at: string, version: number) =>
      checkIn(subject, 'SHARED-PC', at, version);
    for (const [n, at] of [days(-3), days(-2), days(-1)].entries()) {
      await store.batch(tenant, () => store.upsertAll(tenant, device(first, at, n)));
    }
    // The device changes hands: the records move, located rows at the first person included.
    await store.batch(tenant, () => store.upsertAll(tenant, device(second, days(0), 10)));
    expect(await dataOf(store, tenant, first)).toEqual({});
    expect(Object.keys(await dataOf(store, tenant, second))).toHaveLength(10);
    // A late check-in of the first person (older) changes nothing; a newer one takes them back.
    const late = await store.batch(tenant, () => store.upsertAll(tenant, device(first, days(-0.5), 11)));
    expect(late).toEqual(Array(10).fill({ outcome: 'stale' }));
    expect(await dataOf(store, tenant, first)).toEqual({});
    await store.batch(tenant, () => store.upsertAll(tenant, device(first, days(0.5), 12)));
    expect(await dataOf(store, tenant, second)).toEqual({});
    const back = await dataOf(store, tenant, first);
    expect(Object.values(back).map((data) => (data as { version: number }).version)).toEqual(
      Array(10).fill(12),
    );
  });

  it('un-locates a row the purge left when a lookup was put there meanwhile: the next check-in reads it', async () => {
    const services = newServices();
    const store = services.records;
    const tenant = testTenantScope(storage);
    const diego = { objectId: randomUUID() };
    for (const [n, at] of [days(-3), days(-2), days(-1)].entries()) {
      await store.batch(tenant, () => store.upsertAll(tenant, checkIn(diego, 'DIEGO-PC', at, n)));
    }
    const { subjectKey } = await store.subjectOf(tenant, diego);
    const table = await tenant.account.table(TABLES.records);
    const partitionKey = `${tenant.tenantId}_${subjectKey}`;
    const pseudonymKey = await services.pseudonymizer.keyFor(tenant);
    const rowKey = recordRowKey('device', recordKeyOf(pseudonymKey, 'device', 'DIEGO-PC-1'));
    const locatedOf = async () =>
      (await table.getEntity<{ located?: boolean }>(partitionKey, rowKey)).located;
    expect(await locatedOf()).toBe(true);
    // A stale entry of an older version falls due: the purge takes the lookups away, finds the row changed,
    // and puts them back; meanwhile a deletion of that record came and left a lookup of its own.
    const proto = Object.getPrototypeOf(services.retention) as {
      restoreLookups: (...args: unknown[]) => Promise<void>;
    };
    const restore = proto.restoreLookups;
    jest.spyOn(proto, 'restoreLookups').mockImplementationOnce(async function (this: unknown, ...args) {
      expect(await store.softDeleteRecord(tenant, 'device', 'DIEGO-PC-1', days(-1.5))).toBe('tombstoned');
      return restore.apply(this, args);
    });
    await services.retention.deleteRecords(tenant, [
      { subjectKey, recordRow: rowKey, etag: 'W/"datetime\'2020-01-01T00%3A00%3A00.000Z\'"' },
    ]);
    expect(await locatedOf()).toBe(false);
    // The next check-in reads that record's lookup, and settles it at the person's subject again.
    lookupReads = 0;
    await store.batch(tenant, () => store.upsertAll(tenant, checkIn(diego, 'DIEGO-PC', days(0), 3)));
    expect(lookupReads).toBeGreaterThan(0);
    expect(await store.softDeleteRecord(tenant, 'device', 'DIEGO-PC-1', days(0.5))).toBe('deleted');
  });
  // Found by review: the purge took away the lookup of a record that had moved on (to a located row).
  it('keeps the lookup of a record that moved on when a stale entry at its old subject falls due', async () => {
    const services = newServices();
    const store = services.records;
    const tenant = testTenantScope(storage);
    const first = { objectId: randomUUID() };
    const second = { objectId: randomUUID() };
    const run = (subject: DataSubject, at: string, version: number) =>
      store.batch(tenant, () => store.upsertAll(tenant, checkIn(subject, 'SHARED-PC', at, version)));
    await run(first, days(-3), 0);
    const { subjectKey } = await store.subjectOf(tenant, first);
    const rowKey = recordRowKey(
      'device',
      recordKeyOf(await services.pseudonymizer.keyFor(tenant), 'device', 'SHARED-PC-1'),
    );
    const records = await tenant.account.table(TABLES.records);
    const staleEtag = (await records.getEntity(`${tenant.tenantId}_${subjectKey}`, rowKey)).etag;
    await run(first, days(-2), 1);
    await run(second, days(0), 2); // the device changes hands: the records move
    await run(second, days(0.1), 3); // located at the second person
    // An entry of the first person's oldest version was left (a crash before its batch's end) and falls due.
    await services.retention.deleteRecords(tenant, [
      { subjectKey, recordRow: rowKey, etag: staleEtag, due: { action: 'delete', day: '2026-01-01' } },
    ]);
    // The record's deletion still finds it, and a version older than the deletion is stored deleted.
    const deletedAt = days(0.3);
    expect(await store.softDeleteRecord(tenant, 'device', 'SHARED-PC-1', deletedAt)).toBe('deleted');
    await run(second, days(0.2), 4);
    const stored = await store.subjectOf(tenant, second);
    const listed = [];
    for await (const record of store.list(tenant, stored.subjectKey, 'device')) listed.push(record);
    expect(listed.find((r) => r.recordId === 'SHARED-PC-1')).toMatchObject({
      deletedAt,
      data: { version: 4, item: 1 },
    });
  });

  // Found by review: the purge's restore judged `located` on a row read before a batch wrote it located.
  it('un-locates a row the purge restores even when it read it before a batch located it', async () => {
    const services = newServices();
    const store = services.records;
    const tenant = testTenantScope(storage);
    const diego = { objectId: randomUUID() };
    const run = (at: string, version: number) =>
      store.batch(tenant, () => store.upsertAll(tenant, checkIn(diego, 'DIEGO-PC', at, version)));
    await run(days(-2), 0); // created, not located
    const { subjectKey } = await store.subjectOf(tenant, diego);
    const recordKey = recordKeyOf(await services.pseudonymizer.keyFor(tenant), 'device', 'DIEGO-PC-1');
    const rowKey = recordRowKey('device', recordKey);
    const lookup = lookupKeys.record(tenant.tenantId, recordKey);
    const records = await tenant.account.table(TABLES.records);
    const deletedAt = days(0.5);

    // The batch has read its rows and lookups (here, no deletion) when a purge of a stale entry of this
    // record starts: it takes the lookup away, finds the row changed and goes to put the lookup back; just
    // before it does, a deletion of the record leaves a lookup of its own, and the batch writes its rows.
    let restoring = false;
    let atRestore!: () => void;
    const restoreReached = new Promise<void>((resolve) => (atRestore = resolve));
    let goOn!: () => void;
    const written = new Promise<void>((resolve) => (goOn = resolve));
    const create = TableClient.prototype.createEntity;
    jest.spyOn(TableClient.prototype, 'createEntity').mockImplementation(async function (
      this: TableClient,
      entity,
      options,
    ) {
      const keys = entity as { partitionKey: string; rowKey: string };
      if (restoring && keys.partitionKey === lookup.partitionKey && keys.rowKey === lookup.rowKey) {
        restoring = false;
        expect(await store.softDeleteRecord(tenant, 'device', 'DIEGO-PC-1', deletedAt)).toBe('tombstoned');
        atRestore();
        await written;
      }
      return create.call(this, entity as never, options) as never;
    });
    const proto = Object.getPrototypeOf(services.retention) as {
      restoreLookups: (...args: unknown[]) => Promise<void>;
    };
    const restore = proto.restoreLookups;
    jest.spyOn(proto, 'restoreLookups').mockImplementationOnce(async function (this: unknown, ...args) {
      restoring = true;
      return restore.apply(this, args);
    });
    const writeTogether = RecordWriter.prototype.writeTogether;
    jest.spyOn(RecordWriter.prototype, 'writeTogether').mockImplementationOnce(async function (
      this: RecordWriter,
      ...args
    ) {
      const purge = services.retention.deleteRecords(tenant, [
        { subjectKey, recordRow: rowKey, etag: 'W/"datetime\'2020-01-01T00%3A00%3A00.000Z\'"' },
      ]);
      await restoreReached;
      const result = await writeTogether.apply(this, args);
      goOn();
      await purge;
      return result;
    });
    await run(days(0), 1);
    jest.restoreAllMocks();
    const row = await records.getEntity<{ located?: boolean; deletedAt?: string }>(
      `${tenant.tenantId}_${subjectKey}`,
      rowKey,
    );
    expect(row.located).toBe(false);
    // The deletion that came while the lookup was away is not lost: the restore names this subject in the
    // lookup it left and marks the row (found by the third review; before, only the record's next event did).
    expect(row.deletedAt).toBe(deletedAt);
    const lookups = await tenant.account.table(TABLES.recordLookup);
    expect(
      (await lookups.getEntity<{ subjectKey?: string }>(lookup.partitionKey, lookup.rowKey)).subjectKey,
    ).toBe(subjectKey);
    // The next check-in reads the lookup, and stores a version the deletion covers deleted.
    await run(days(0.2), 2);
    const listed = [];
    for await (const record of store.list(tenant, subjectKey, 'device')) listed.push(record);
    expect(listed.find((r) => r.recordId === 'DIEGO-PC-1')).toMatchObject({
      deletedAt,
      data: { version: 2 },
    });
  });

  // Found by review: two due entries of one row (a deletion and a soft-delete's purge on one day) made the
  // purge's transactions name the row twice, which storage refuses, and stopped the tenant's purge.
  it('deletes a row that has two entries due at once', async () => {
    const services = newServices();
    const store = services.records;
    const tenant = testTenantScope(storage);
    const megan = { objectId: randomUUID() };
    const input = checkIn(megan, 'MEGAN-PC', days(-40), 1)[0]!; // a system log, deleted after 30 days
    await store.upsert(tenant, input);
    await store.softDeleteRecord(tenant, 'systemLog', 'MEGAN-PC-0', days(-40));
    const { subjectKey } = await store.subjectOf(tenant, megan);
    const rowKey = recordRowKey(
      'systemLog',
      recordKeyOf(await services.pseudonymizer.keyFor(tenant), 'systemLog', 'MEGAN-PC-0'),
    );
    const { etag } = await (
      await tenant.account.table(TABLES.records)
    ).getEntity(`${tenant.tenantId}_${subjectKey}`, rowKey);
    const target = { subjectKey, recordRow: rowKey, etag };
    expect(
      await services.retention.deleteRecords(tenant, [
        { ...target, due: { action: 'delete', day: days(-10).slice(0, 10) } },
        { ...target, due: { action: 'purgeDeleted', day: days(-10).slice(0, 10) } },
      ]),
    ).toEqual({ systemLog: 1 });
    const listed = [];
    for await (const record of store.list(tenant, subjectKey, 'systemLog')) listed.push(record);
    expect(listed).toEqual([]);
  });

  // Found by the third review: an alert data request anonymises alerts before they fall due, so the located
  // path's margin does not cover them; a crash after their lookups went left a located row without one.
  it('un-locates an alert a request anonymises before its lookups go, so a crash in between loses nothing', async () => {
    const services = newServices();
    const store = services.records;
    const tenant = testTenantScope(storage);
    const joni = { objectId: randomUUID() };
    const alerts = (at: string, version: number) =>
      checkIn(joni, 'JONI-PC', at, version).map((input) => ({ ...input, category: 'alert' as const }));
    for (const [n, at] of [days(-3), days(-2), days(-1)].entries()) {
      await store.batch(tenant, () => store.upsertAll(tenant, alerts(at, n)));
    }
    const { subjectKey } = await store.subjectOf(tenant, joni);
    const recordKey = recordKeyOf(await services.pseudonymizer.keyFor(tenant), 'alert', 'JONI-PC-1');
    const rowKey = recordRowKey('alert', recordKey);
    const records = await tenant.account.table(TABLES.records);
    const row = await records.getEntity<{ located?: boolean; deviceKey: string }>(
      `${tenant.tenantId}_${subjectKey}`,
      rowKey,
    );
    expect(row.located).toBe(true);
    // The request's anonymisation (targets without a due rule) stops after the lookups went, before the row.
    const deleteVersions = tableBatches.deleteVersions;
    let calls = 0;
    jest.spyOn(tableBatches, 'deleteVersions').mockImplementation(async (table, rows) => {
      if (++calls === 2) throw new Error('The instance stopped.');
      return deleteVersions(table, rows);
    });
    await expect(
      services.retention.anonymiseAlerts(tenant, [
        { subjectKey, recordRow: rowKey, deviceKey: row.deviceKey, etag: row.etag },
      ]),
    ).rejects.toThrow('stopped');
    jest.restoreAllMocks();
    // The next check-in reads the record's lookup (the row is no longer located) and puts it back ...
    lookupReads = 0;
    await store.batch(tenant, () => store.upsertAll(tenant, alerts(days(0), 3)));
    expect(lookupReads).toBeGreaterThan(0);
    const lookup = lookupKeys.record(tenant.tenantId, recordKey);
    const lookups = await tenant.account.table(TABLES.recordLookup);
    expect(
      (await lookups.getEntity<{ subjectKey?: string }>(lookup.partitionKey, lookup.rowKey)).subjectKey,
    ).toBe(subjectKey);
    // ... so a deletion of the record still finds it.
    expect(await store.softDeleteRecord(tenant, 'alert', 'JONI-PC-1', days(0.5))).toBe('deleted');
  });
});
