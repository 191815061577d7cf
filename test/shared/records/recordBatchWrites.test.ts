// Integration (Azurite): the rows of a check-in batch go in one entity-group transaction per subject
// (RecordStore.upsertAll); a transaction storage refuses because a row changed meanwhile leaves every item to
// be decided on its own; an event that loses a race for a new record to another subject leaves no row behind.
import { randomUUID } from 'node:crypto';

import type { PipelinePolicy } from '@azure/core-rest-pipeline';

import { createRecordServices } from '../../../shared/records/recordServices';
import type { RecordStore, UpsertInput } from '../../../shared/records/recordStore';
import { RecordWriter } from '../../../shared/records/recordWriter';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import type { DataSubject } from '../../../shared/vocabulary/dataSubject';
import { testStorage, testTenantScope } from '../../support/testStorage';

/** Table requests to the `records` table that write record rows, by kind. */
const rowWrites = { transactions: 0, single: 0 };
const counting: PipelinePolicy = {
  name: 'countRowWrites',
  sendRequest: (request, next) => {
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
const newStore = () => createRecordServices({ transferPackages: async () => undefined }).records;

const checkIn = (subject: DataSubject, device: string, at: string, version: number): UpsertInput[] =>
  Array.from({ length: 10 }, (_, i) => ({
    category: i % 3 === 0 ? 'deviceHealth' : i % 3 === 1 ? 'device' : 'alert',
    recordId: `${device}-${i}`,
    subject,
    occurredAt: at,
    deviceName: device,
    data: { version, item: i },
  }));

async function dataOf(store: RecordStore, tenant: TenantScope, subject: DataSubject) {
  const { subjectKey } = await store.subjectOf(tenant, subject);
  const found: Record<string, unknown> = {};
  for (const category of ['deviceHealth', 'device', 'alert'] as const) {
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
});
