// Integration: records stored encrypted per subject on Azurite, found through HMAC lookups.
import { randomUUID } from 'node:crypto';

import type { PipelinePolicy } from '@azure/core-rest-pipeline';

import { createRecordServices } from '../../../shared/records/recordServices';
import type { UpsertInput } from '../../../shared/records/recordStore';
import type { DataSubject } from '../../../shared/vocabulary/dataSubject';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { TABLES } from '../../../shared/storage/names';
import { testStorage, testTenantScope } from '../../support/testStorage';

let requests = 0;
const counter: PipelinePolicy = {
  name: 'countRequests',
  sendRequest: (request, next) => {
    requests++;
    return next(request);
  },
};
const storage = testStorage({ tablePolicies: [{ policy: counter, position: 'perCall' }] });
const newServices = () => createRecordServices({ transferPackages: async () => undefined });
const services = newServices();
const store = services.records;
const newStore = () => newServices().records;
/** The subject a request naming these identifiers acts on. */
const subjectOf = async (tenant: TenantScope, subject: DataSubject) =>
  (await store.subjectOf(tenant, subject)).subjectKey;

const adele = { upn: 'adele.vance@contoso.com', objectId: randomUUID() };
const record = (extra: Partial<UpsertInput> = {}): UpsertInput => ({
  category: 'device',
  recordId: `rec-${randomUUID()}`,
  subject: adele,
  occurredAt: '2026-10-01T10:00:00.000Z',
  data: { model: 'Surface Laptop 7', primaryUser: 'Adele Vance' },
  deviceName: 'ADELE-LAPTOP',
  ...extra,
});

async function all<T>(source: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of source) items.push(item);
  return items;
}

async function rawEntities(tenantId: string, table: string) {
  const client = await storage.geography('EU').table(table);
  const rows: Record<string, unknown>[] = [];
  for await (const row of client.listEntities()) {
    if (String(row.partitionKey).startsWith(tenantId)) rows.push(row);
  }
  return rows;
}

describe('RecordStore on Azurite', () => {
  it('stores a record sealed: no personal value appears in any raw entity, yet it reads back whole', async () => {
    const tenant = testTenantScope(storage);
    const input = record();
    await store.upsert(tenant, input);
    const raw = JSON.stringify([
      ...(await rawEntities(tenant.tenantId, TABLES.records)),
      ...(await rawEntities(tenant.tenantId, TABLES.recordLookup)),
    ]);
    for (const secret of ['adele', 'Adele', 'ADELE-LAPTOP', 'Surface', adele.objectId, input.recordId]) {
      expect(raw).not.toContain(secret);
    }
    const subjectKey = await subjectOf(tenant, { upn: 'ADELE.VANCE@contoso.com' });
    expect(await all(store.list(tenant, subjectKey, 'device'))).toEqual([
      {
        category: 'device',
        recordId: input.recordId,
        occurredAt: input.occurredAt,
        deviceName: 'ADELE-LAPTOP',
        subject: adele,
        data: input.data,
      },
    ]);
  });

  it('keeps the newer occurrence; an older or repeated event changes nothing', async () => {
    const tenant = testTenantScope(storage);
    const base = record();
    await store.upsert(tenant, { ...base, occurredAt: '2026-10-02T00:00:00.000Z', data: { v: 2 } });
    expect(
      await store.upsert(tenant, { ...base, occurredAt: '2026-10-01T00:00:00.000Z', data: { v: 1 } }),
    ).toBe('stale');
    await store.upsert(tenant, { ...base, occurredAt: '2026-10-02T00:00:00.000Z', data: { v: 2 } });
    const subjectKey = await subjectOf(tenant, adele);
    expect((await all(store.list(tenant, subjectKey, 'device'))).map((r) => r.data)).toEqual([{ v: 2 }]);
  });

  it('links identifiers: records sent with the UPN only and with the object id belong to one subject', async () => {
    const tenant = testTenantScope(storage);
    await store.upsert(tenant, record({ subject: { upn: adele.upn } }));
    await store.upsert(tenant, record({ subject: { objectId: adele.objectId, upn: adele.upn } }));
    await store.upsert(tenant, record({ subject: { objectId: adele.objectId } }));
    const subjectKey = await subjectOf(tenant, { objectId: adele.objectId });
    expect(await subjectOf(tenant, { upn: adele.upn })).toBe(subjectKey);
    expect(await store.countByCategory(tenant, subjectKey)).toEqual({ device: 3 });
  });

  it('stores system logs pseudonymised, and still finds them for the subject', async () => {
    const tenant = testTenantScope(storage);
    await store.upsert(tenant, record({ category: 'systemLog', data: { event: 'sync' } }));
    const subjectKey = await subjectOf(tenant, { upn: adele.upn });
    const [log] = await all(store.list(tenant, subjectKey, 'systemLog'));
    expect(log?.subject).toEqual({
      pseudonymous: true,
      upn: expect.stringMatching(/^[0-9a-f]{32}$/),
      objectId: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    expect(JSON.stringify(log?.subject)).not.toContain('adele');
  });

  it('soft-deletes a record, and a delete that arrives first marks the record when it comes', async () => {
    const tenant = testTenantScope(storage);
    const early = record();
    expect(await store.softDeleteRecord(tenant, 'device', early.recordId, '2026-10-05T00:00:00.000Z')).toBe(
      'tombstoned',
    );
    await store.upsert(tenant, early);
    const late = record();
    await store.upsert(tenant, late);
    expect(await store.softDeleteRecord(tenant, 'device', late.recordId, '2026-10-06T00:00:00.000Z')).toBe(
      'deleted',
    );
    expect(await store.softDeleteRecord(tenant, 'device', late.recordId, '2026-10-06T00:00:00.000Z')).toBe(
      'unchanged',
    );
    const subjectKey = await subjectOf(tenant, adele);
    const listed = await all(store.list(tenant, subjectKey, 'device'));
    expect(listed.map((r) => [r.recordId, r.deletedAt]).sort()).toEqual(
      [
        [early.recordId, '2026-10-05T00:00:00.000Z'],
        [late.recordId, '2026-10-06T00:00:00.000Z'],
      ].sort(),
    );
    // Soft-deleted records are still held: discovery counts them.
    expect(await store.countByCategory(tenant, subjectKey)).toEqual({ device: 2 });
  });

  it('soft-deletes every record of a subject, and every record of a retired device', async () => {
    const tenant = testTenantScope(storage);
    const other = { upn: 'megan@contoso.com' };
    await store.upsert(tenant, record({ category: 'usage' }));
    await store.upsert(tenant, record({ category: 'policy', deviceName: 'SHARED-KIOSK' }));
    await store.upsert(tenant, record({ subject: other, deviceName: 'SHARED-KIOSK' }));
    await store.upsert(tenant, record({ subject: other, deviceName: 'MEGAN-PC' }));
    expect(await store.softDeleteDevice(tenant, 'shared-kiosk', '2026-10-07T00:00:00.000Z')).toBe(2);
    expect(await store.softDeleteSubject(tenant, adele, '2026-10-08T00:00:00.000Z')).toBe(1);
    expect(await store.softDeleteSubject(tenant, adele, '2026-10-08T00:00:00.000Z')).toBe(0);
    const megan = await subjectOf(tenant, other);
    const meganRecords = await all(store.list(tenant, megan, 'device'));
    expect(meganRecords.map((r) => [r.deviceName, r.deletedAt]).sort()).toEqual([
      ['MEGAN-PC', undefined],
      ['SHARED-KIOSK', '2026-10-07T00:00:00.000Z'],
    ]);
  });

  it('erases a subject: key destroyed, records and lookups gone; the same person in another tenant untouched', async () => {
    const tenant = testTenantScope(storage);
    const otherTenant = testTenantScope(storage);
    await store.upsert(tenant, record());
    await store.upsert(tenant, record({ category: 'systemLog' }));
    await store.upsert(otherTenant, record());
    const subjectKey = await subjectOf(tenant, adele);
    expect((await services.erasure.erase(tenant, subjectKey)).records).toBe(2);
    expect((await services.erasure.erase(tenant, subjectKey)).records).toBe(0);
    expect(await store.countByCategory(tenant, await subjectOf(tenant, { upn: adele.upn }))).toEqual({});
    expect(await rawEntities(tenant.tenantId, TABLES.records)).toEqual([]);
    expect(await rawEntities(tenant.tenantId, TABLES.recordLookup)).toEqual([]);
    expect(await all(newStore().list(tenant, subjectKey, 'device'))).toEqual([]);
    const otherKey = await subjectOf(otherTenant, adele);
    expect(await all(store.list(otherTenant, otherKey, 'device'))).toHaveLength(1);
  });

  it('finds a subject with storage requests in proportion to their records, not to the tenant size', async () => {
    const measure = async (othersCount: number) => {
      const tenant = testTenantScope(storage);
      const subject = { upn: `someone-${randomUUID()}@contoso.com` };
      for (let i = 0; i < 5; i++) await store.upsert(tenant, record({ subject }));
      for (let i = 0; i < othersCount; i++) {
        await store.upsert(tenant, record({ subject: { upn: `other-${i}@contoso.com` } }));
      }
      requests = 0;
      const found = (await newStore().subjectOf(tenant, subject)).subjectKey;
      const counts = await store.countByCategory(tenant, found);
      expect(counts).toEqual({ device: 5 });
      return requests;
    };
    const small = await measure(2);
    const large = await measure(60);
    expect(large).toBe(small);
  });
  it('lists a category in slices of a storage page, every record once', async () => {
    const tenant = testTenantScope(storage);
    const inputs = Array.from({ length: 250 }, (_, n) =>
      record({ category: 'usage', recordId: `usage-${String(n).padStart(4, '0')}`, data: { n } }),
    );
    for (let i = 0; i < inputs.length; i += 50) {
      await Promise.all(inputs.slice(i, i + 50).map((input) => store.upsert(tenant, input)));
    }
    const subjectKey = await subjectOf(tenant, adele);
    const slices = await all(store.listPages(tenant, subjectKey, 'usage'));
    // A storage page is handed on in slices of at most 100 decrypted records.
    expect(slices.map((slice) => slice.length)).toEqual([100, 100, 50]);
    const listed = slices.flat();
    expect(new Set(listed.map((r) => r.recordId)).size).toBe(inputs.length);
    expect(listed.map((r) => r.data.n).sort((a, b) => Number(a) - Number(b))).toEqual(
      inputs.map((_, n) => n),
    );
    expect(await all(store.list(tenant, subjectKey, 'usage'))).toEqual(listed);
    expect(await all(store.listPages(tenant, subjectKey, 'device'))).toEqual([]);
  });
});
