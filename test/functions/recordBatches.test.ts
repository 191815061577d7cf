// Integration: `records.upserted` batches (SPEC §4, issue 13 point 1) through the personal-data-events queue
// function on Azurite, called as the host calls it: each item applied as if it had come alone, an invalid
// item poisoned on its own (sealed in its tenant's geography) while the valid rest is stored, redelivery
// changing nothing. This file's global account is Azurite's `privacyapac` (geography APAC closed for these
// services): its poison queue is this file's alone, so every poison message here can be counted exactly.
import { randomUUID } from 'node:crypto';

import type { PipelinePolicy } from '@azure/core-rest-pipeline';

import { personalDataEvents } from '../../functions/personalDataEvents';
import { CHECK_IN_CATEGORIES, demoRecordEvents, demoRecordMessages } from '../../local/demoData';
import { accountNameOf, azuriteConnectionString, type AzuritePorts } from '../../local/azurite';
import { createServices, type Services } from '../../shared/composition';
import { invokeQueue } from '../../shared/hosting/invoke';
import { type PoisonedMessage, SCHEMA_MISMATCH } from '../../shared/hosting/queueFailures';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import { CONTAINERS, QUEUES, TABLES } from '../../shared/storage/names';
import { decodeMessage } from '../../shared/storage/queueMessages';
import { EVENT_CATEGORIES } from '../../shared/vocabulary/categories';
import type { DataSubject } from '../../shared/vocabulary/dataSubject';
import { invocationContext } from '../support/invocation';
import { snapshotTenants } from '../support/storageSnapshot';
import { provisionedTenant, testConfig } from '../support/testStorage';

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as AzuritePorts;
const config = testConfig({ STORAGE_GLOBAL: azuriteConnectionString(accountNameOf('APAC'), ports) }, [
  'STORAGE_APAC',
]);
const services = createServices(config);

/** What a device reports when it checks in (as the demo sends it). */
const CHECK_IN = CHECK_IN_CATEGORIES;

const at = (day: number) => new Date(Date.UTC(2026, 2, day, 8)).toISOString();

const personOf = (name: string): Required<Pick<DataSubject, 'upn' | 'objectId'>> => ({
  upn: `${name}-${randomUUID().slice(0, 8)}@contoso.com`,
  objectId: randomUUID(),
});

/** Item `i` of a device's check-in: a record of its own, a day apart from the others. */
function checkInItem(
  device: string,
  subject: DataSubject,
  i: number,
  overrides: Record<string, unknown> = {},
) {
  return {
    eventId: `item-${device}-${i}`,
    category: CHECK_IN[i % CHECK_IN.length],
    recordId: `${device}-${i}`,
    subject,
    occurredAt: at(1 + i),
    data: { reading: i, reportedBy: subject.upn },
    deviceName: device,
    ...overrides,
  };
}

const batchOf = (tenantId: string, records: unknown[], eventId = `batch-${randomUUID()}`) => ({
  type: 'records.upserted',
  tenantId,
  eventId,
  records,
});

const deliver = (message: unknown, svc: Services = services, dequeueCount = 1) =>
  invokeQueue(personalDataEvents, svc, message, invocationContext('personalDataEvents', { dequeueCount }));

/** Every poison message of this file so far (taken off its queue, which is this file's alone), in order. */
const poisonSeen: PoisonedMessage[] = [];
async function poisonedWhere(match: (message: PoisonedMessage) => boolean): Promise<PoisonedMessage[]> {
  const queue = await services.storage.global.queue(QUEUES.personalDataEventsPoison);
  for (;;) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
    if (receivedMessageItems.length === 0) break;
    for (const item of receivedMessageItems) {
      poisonSeen.push(decodeMessage(item.messageText) as PoisonedMessage);
      await queue.deleteMessage(item.messageId, item.popReceipt);
    }
  }
  return poisonSeen.filter(match);
}
const poisonedFor = (tenantId: string) => poisonedWhere((m) => m.tenantId === tenantId);

/** A subject's records in every category, decrypted, in a stable order. */
async function recordsOf(tenant: TenantScope, subject: DataSubject, svc: Services = services) {
  const { subjectKey } = await svc.records.subjectOf(tenant, subject);
  const found = [];
  for (const category of EVENT_CATEGORIES) {
    for await (const record of svc.records.list(tenant, subjectKey, category)) {
      found.push({
        category: record.category,
        recordId: record.recordId,
        occurredAt: record.occurredAt,
        data: record.data,
        ...(record.deletedAt ? { deletedAt: record.deletedAt } : {}),
        ...(record.deviceName ? { deviceName: record.deviceName } : {}),
      });
    }
  }
  return found.sort((a, b) => a.recordId.localeCompare(b.recordId));
}

/**
 * What a tenant holds, without what differs between two tenants or two writes of one version (tenant and
 * subject keys, ETags): its records, counts, expiry entries, lookups, audit trail and sealed blobs.
 */
async function footprint(tenant: TenantScope, subject: DataSubject) {
  const records = await recordsOf(tenant, subject);
  const { subjectKey } = await services.records.subjectOf(tenant, subject);
  const counts = await services.records.countByCategory(tenant, subjectKey);
  const rows = async (table: string) => {
    const client = await tenant.account.table(table);
    const found: Record<string, unknown>[] = [];
    const filter = `PartitionKey ge '${tenant.tenantId}' and PartitionKey lt '${tenant.tenantId}~'`;
    for await (const row of client.listEntities({ queryOptions: { filter } })) found.push(row);
    return found;
  };
  const expiry = (await rows(TABLES.expiry))
    .map((row) => JSON.parse(row.entry as string) as Record<string, unknown>)
    .map(
      ({ kind, action, day, category }) =>
        `${String(kind)}:${String(action)}:${String(day)}:${String(category)}`,
    )
    .sort();
  const lookups = (await rows(TABLES.recordLookup))
    .map((row) => String(row.partitionKey).charAt(tenant.tenantId.length + 1))
    .sort()
    .join('');
  const recordRows = (await rows(TABLES.records)).length;
  const audit = (await services.audit.list(tenant, {}, { top: 50 })).items.map((e) => e.action);
  const container = await tenant.account.container(CONTAINERS.poisonedEvents);
  let sealed = 0;
  for await (const _blob of container.listBlobsFlat({ prefix: `${tenant.tenantId}/` })) sealed++;
  return { records, counts, expiry, lookups, recordRows, audit, sealed };
}

/** Row and blob names (not versions) of a tenant in every account: what exists, whoever wrote it last. */
async function names(tenantId: string, accounts: 'all' | 'global' = 'all') {
  const connections =
    accounts === 'global'
      ? { global: config.storage.global }
      : { global: config.storage.global, ...config.storage.geographies };
  const snapshot = await snapshotTenants(connections, [tenantId]);
  return [...snapshot.rows.keys(), ...snapshot.blobs.keys()].sort();
}

describe('records.upserted: each item as if it had come alone', () => {
  it("stores all 10 items of a device's check-in, each readable as a record of its person", async () => {
    const tenant = await provisionedTenant(services);
    const adele = personOf('adele');
    const items = Array.from({ length: 10 }, (_, i) => checkInItem('CONTOSO-PC-10', adele, i));
    await deliver(batchOf(tenant.tenantId, items));

    const stored = await recordsOf(tenant, adele);
    expect(stored).toHaveLength(10);
    expect(stored).toEqual(
      items
        .map(({ category, recordId, occurredAt, data, deviceName }) => ({
          category,
          recordId,
          occurredAt,
          data,
          deviceName,
        }))
        .sort((a, b) => a.recordId.localeCompare(b.recordId)),
    );
    const { subjectKey } = await services.records.subjectOf(tenant, { objectId: adele.objectId });
    expect(await services.records.countByCategory(tenant, subjectKey)).toEqual({
      device: 2,
      deviceSecurity: 2,
      deviceHealth: 2,
      deviceDiagnostics: 2,
      windowsDiagnostic: 1,
      policy: 1,
    });
    expect(await poisonedFor(tenant.tenantId)).toEqual([]);
  });

  it("writes what depends on the batch's rows at its end: device lookups, expiry entries and counts", async () => {
    const tenant = await provisionedTenant(services);
    const megan = personOf('megan');
    const items = Array.from({ length: 10 }, (_, i) => checkInItem('CONTOSO-PC-11', megan, i));
    await deliver(batchOf(tenant.tenantId, items));
    const report = await services.privacyReports.report(tenant, {});
    // Counted, in one change for the batch: 10 records.
    expect(report.records.total).toBe(10);
    expect(report.records.byCategory).toMatchObject({
      device: 2,
      deviceDiagnostics: 2,
      windowsDiagnostic: 1,
    });
    // The short-lived ones (2 device diagnostics, 1 Windows diagnostic, dated March 2026) have their expiry
    // entries, due already.
    expect(report.purgeForecast.next7Days.records).toEqual({ delete: 3, anonymise: 0, purgeDeleted: 0 });
    // Every item has its device lookup: retiring the device soft-deletes all ten.
    await deliver({
      type: 'device.retired',
      tenantId: tenant.tenantId,
      eventId: `retire-${randomUUID()}`,
      deviceName: 'CONTOSO-PC-11',
      deletedAt: at(20),
    });
    const { subjectKey } = await services.records.subjectOf(tenant, { objectId: megan.objectId });
    let deleted = 0;
    for (const category of CHECK_IN) {
      for await (const record of services.records.list(tenant, subjectKey, category)) {
        if (record.deletedAt) deleted++;
      }
    }
    expect(deleted).toBe(10);
  });

  it('items out of order, two versions of one record among them: the newer occurredAt wins whatever the order', async () => {
    const tenant = await provisionedTenant(services);
    const megan = personOf('megan');
    const device = 'CONTOSO-PC-ORDER';
    const version = (recordId: string, day: number, value: string, n: number) =>
      checkInItem(device, megan, 0, {
        eventId: `order-${n}`,
        category: 'deviceHealth',
        recordId,
        occurredAt: at(day),
        data: { value },
      });
    await deliver(
      batchOf(tenant.tenantId, [
        version('r1', 5, 'r1 newest', 1),
        version('r2', 3, 'r2 older', 2),
        version('r1', 2, 'r1 older', 3),
        version('r3', 1, 'r3 only', 4),
        version('r2', 4, 'r2 newest', 5),
      ]),
    );
    expect((await recordsOf(tenant, megan)).map((r) => [r.recordId, r.data.value, r.occurredAt])).toEqual([
      ['r1', 'r1 newest', at(5)],
      ['r2', 'r2 newest', at(4)],
      ['r3', 'r3 only', at(1)],
    ]);
  });

  it('a newer single event, a deletion known for a record, and the identity rules still apply to batch items', async () => {
    const tenant = await provisionedTenant(services);
    const lee = personOf('lee');
    const device = 'CONTOSO-PC-ALONE';
    const single = (recordId: string, day: number, value: string) => ({
      type: 'record.upserted',
      tenantId: tenant.tenantId,
      eventId: `single-${recordId}`,
      category: 'device',
      recordId,
      subject: lee,
      occurredAt: at(day),
      data: { value },
      deviceName: device,
    });
    await deliver(single('newer-alone', 9, 'came alone, newer'));
    await deliver(single('deleted', 1, 'stored, then deleted'));
    await deliver({
      type: 'record.deleted',
      tenantId: tenant.tenantId,
      eventId: 'delete-deleted',
      category: 'device',
      recordId: 'deleted',
      deletedAt: at(6),
    });
    await deliver(
      batchOf(tenant.tenantId, [
        checkInItem(device, lee, 0, { recordId: 'newer-alone', occurredAt: at(5), data: { value: 'older' } }),
        checkInItem(device, lee, 0, {
          recordId: 'deleted',
          occurredAt: at(3),
          data: { value: 'before the deletion' },
        }),
        // Known by its alias only at first: the next item links the alias to Lee's object id.
        checkInItem(device, { upn: lee.upn }, 0, {
          recordId: 'alias-only',
          occurredAt: at(4),
          data: { value: 'x' },
        }),
        checkInItem(device, lee, 0, { recordId: 'linking', occurredAt: at(7), data: { value: 'y' } }),
      ]),
    );
    const stored = await recordsOf(tenant, { objectId: lee.objectId });
    expect(stored.map((r) => [r.recordId, r.data.value, r.deletedAt ?? null])).toEqual([
      ['alias-only', 'x', null],
      ['deleted', 'before the deletion', at(6)],
      ['linking', 'y', null],
      ['newer-alone', 'came alone, newer', null],
    ]);
  });
  it("the local demo sends each person's device check-in as one batch, and every demo record is stored", async () => {
    const tenant = await provisionedTenant(services);
    const now = new Date('2026-03-20T10:00:00Z');
    const messages = demoRecordMessages(tenant.tenantId, now);
    const batches = messages.filter((m) => m.type === 'records.upserted');
    expect(batches.map((b) => (b.records as unknown[]).length)).toEqual([6, 6, 6]);
    for (const message of messages) await deliver(message);
    const events = demoRecordEvents(tenant.tenantId, now);
    const people = [...new Set(events.map((e) => JSON.stringify(e.subject)))].map(
      (s) => JSON.parse(s) as DataSubject,
    );
    let stored = 0;
    for (const person of people) stored += (await recordsOf(tenant, person)).length;
    expect(stored).toBe(events.length);
    expect(await poisonedFor(tenant.tenantId)).toEqual([]);
  });
});

describe('records.upserted: redelivery changes nothing', () => {
  it('the same batch delivered twice: the same rows, records, expiry entries and audit trail', async () => {
    const tenant = await provisionedTenant(services);
    const nestor = personOf('nestor');
    const message = batchOf(
      tenant.tenantId,
      Array.from({ length: 10 }, (_, i) => checkInItem('CONTOSO-PC-TWICE', nestor, i)),
    );
    await deliver(message);
    const first = { names: await names(tenant.tenantId), state: await footprint(tenant, nestor) };
    await deliver(message, createServices(config), 2);
    const second = { names: await names(tenant.tenantId), state: await footprint(tenant, nestor) };
    expect(second).toEqual(first);
    expect(first.state.recordRows).toBeGreaterThanOrEqual(10);
    expect(first.state.records).toHaveLength(10);
  });

  it('a delivery that dies right after its rows transaction, redelivered to another instance, ends as a clean delivery does', async () => {
    const grady = personOf('grady');
    const items = Array.from({ length: 6 }, (_, i) => checkInItem('CONTOSO-PC-CRASH', grady, i));
    // Two versions of one record: the older one comes after the crash, the newer one before it.
    items.push(checkInItem('CONTOSO-PC-CRASH', grady, 1, { eventId: 'older-again', occurredAt: at(1) }));

    const clean = await provisionedTenant(services);
    await deliver(batchOf(clean.tenantId, items));
    const expected = await footprint(clean, grady);

    const crashed = await provisionedTenant(services);
    const message = batchOf(crashed.tenantId, items);
    // The instance stops right after the transaction of the subject's rows: its records are stored, their
    // lookups, expiry entries, device lookups and counts are not, and no request is sent afterwards.
    let dead = false;
    const dieAfterRows: PipelinePolicy = {
      name: 'dieAfterRows',
      sendRequest: async (request, next) => {
        if (dead) throw new Error('The instance died after its rows transaction.');
        const response = await next(request);
        // The records table's transaction of record rows (the subject's identifier rows have no `sealed`).
        const body = String(request.body);
        if (request.url.includes('$batch') && /\/records[ (]/.test(body) && body.includes('"sealed"'))
          dead = true;
        return response;
      },
    };
    const dying = createServices(config, {
      storage: { tablePolicies: [{ policy: dieAfterRows, position: 'perCall' }] },
    });
    await expect(deliver(message, dying)).rejects.toThrow('died after its rows transaction');
    // Record 1 is named twice in the batch: both its items go one by one, after the transaction.
    expect(await recordsOf(crashed, grady)).toHaveLength(5);

    await deliver(message, createServices(config), 2);
    expect(await footprint(crashed, grady)).toEqual(expected);
    expect(expected.records).toHaveLength(6);
    expect(await poisonedFor(crashed.tenantId)).toEqual([]);
  });
});

describe('records.upserted: an invalid item is poisoned on its own, the valid rest stored', () => {
  const MARK = 'batchsecret';

  /** A batch of 7: valid items at 0, 2, 4, 6 and, between them, one invalid item of each kind. */
  function mixedBatch(tenantId: string, otherTenantId: string, person: DataSubject) {
    const device = `CONTOSO-${MARK}`;
    const item = (i: number, overrides: Record<string, unknown> = {}) =>
      checkInItem(device, person, i, { eventId: `mixed-${i}`, data: { note: `${MARK} ${i}` }, ...overrides });
    return batchOf(tenantId, [
      item(0),
      item(1, { category: 'browserHistory', recordId: `${MARK}-history` }),
      item(2),
      item(3, { occurredAt: 'yesterday', recordId: `${MARK}-when` }),
      item(4),
      item(5, { data: { text: `${MARK} ${'x'.repeat(17 * 1024)}` }, recordId: `${MARK}-large` }),
      item(6),
      item(7, { tenantId: otherTenantId, recordId: `${MARK}-elsewhere` }),
    ]);
  }
  const INVALID = [
    [1, 'category'],
    [3, 'occurredAt'],
    [5, 'data'],
    [7, 'tenantId'],
  ] as const;

  it("stores the valid items; one poison message per invalid item, with its reason, sealed in the tenant's geography", async () => {
    const tenant = await provisionedTenant(services);
    const other = await provisionedTenant(services);
    const megan = personOf('megan');
    const message = mixedBatch(tenant.tenantId, other.tenantId, megan);
    const globalBefore = await names(tenant.tenantId, 'global');
    const otherBefore = await names(other.tenantId);
    await deliver(message);

    expect((await recordsOf(tenant, megan)).map((r) => r.recordId)).toEqual(
      [0, 2, 4, 6].map((i) => `CONTOSO-${MARK}-${i}`),
    );
    const kept = await poisonedFor(tenant.tenantId);
    expect(kept.map((m) => [m.eventId, m.batch])).toEqual(
      INVALID.map(([i]) => [`mixed-${i}`, { eventId: message.eventId, item: i }]),
    );
    for (const [n, [i, field]] of INVALID.entries()) {
      const poisoned = kept[n]!;
      expect(poisoned).toMatchObject({
        queue: QUEUES.personalDataEvents,
        reason: SCHEMA_MISMATCH,
        tenantId: tenant.tenantId,
      });
      expect(poisoned.details).toEqual([expect.objectContaining({ target: field })]);
      // Sealed in the tenant's geography as the single event it stands for, under the batch's tenant.
      expect(poisoned.reference).toMatch(new RegExp(`^poisoned-events/${tenant.tenantId}/`));
      const { type: _type, tenantId: _tenantId, ...item } = message.records[i] as Record<string, unknown>;
      expect(await services.poisonedEvents.read(tenant, poisoned.reference!)).toEqual({
        type: 'record.upserted',
        ...item,
        tenantId: tenant.tenantId,
      });
      const blob = await (
        await tenant.account.container(CONTAINERS.poisonedEvents)
      )
        .getBlobClient(poisoned.reference!.slice('poisoned-events/'.length))
        .downloadToBuffer();
      expect(blob.toString('utf8')).not.toContain(MARK);
    }
    // Nothing of the invalid items in the global account: not in its poison messages, not in its tables.
    expect(JSON.stringify(kept)).not.toContain(MARK);
    expect(JSON.stringify(kept)).not.toContain(megan.upn);
    expect(await names(tenant.tenantId, 'global')).toEqual(globalBefore);
    // Nor anything in the tenant the last item named.
    expect(await poisonedFor(other.tenantId)).toEqual([]);
    expect(await names(other.tenantId)).toEqual(otherBefore);
  });

  it('redelivered: the valid items change nothing; each invalid item is poisoned again under the same reference', async () => {
    const tenant = await provisionedTenant(services);
    const other = await provisionedTenant(services);
    const megan = personOf('megan');
    const message = mixedBatch(tenant.tenantId, other.tenantId, megan);
    await deliver(message);
    const first = await poisonedFor(tenant.tenantId);
    const state = await footprint(tenant, megan);
    await deliver(message, createServices(config), 2);
    const both = await poisonedFor(tenant.tenantId);
    expect(await footprint(tenant, megan)).toEqual(state);
    expect(state.sealed).toBe(INVALID.length);
    // A second copy of each, recognisable: the same item, batch and reference (one sealed blob each).
    const copies = both.slice(first.length);
    expect(copies.map((m) => [m.eventId, m.batch, m.reference])).toEqual(
      first.map((m) => [m.eventId, m.batch, m.reference]),
    );
    expect(new Set(both.map((m) => m.reference)).size).toBe(INVALID.length);
  });

  it('a transient failure of a valid item after an invalid one: nothing poisoned until a delivery finishes, then once', async () => {
    const tenant = await provisionedTenant(services);
    const other = await provisionedTenant(services);
    const lee = personOf('lee');
    const message = mixedBatch(tenant.tenantId, other.tenantId, lee);
    const flaky = createServices(config);
    const upsertAll = flaky.records.upsertAll.bind(flaky.records);
    // The first delivery stores the first valid item, then storage answers 503 for the next.
    jest.spyOn(flaky.records, 'upsertAll').mockImplementationOnce(async (scope, inputs) => {
      await upsertAll(scope, inputs.slice(0, 1));
      throw Object.assign(new Error('Server busy (503).'), { statusCode: 503 });
    });
    await expect(deliver(message, flaky)).rejects.toThrow('Server busy');
    expect(await poisonedFor(tenant.tenantId)).toEqual([]);
    await deliver(message, flaky, 2);
    expect((await poisonedFor(tenant.tenantId)).map((m) => m.batch?.item)).toEqual(INVALID.map(([i]) => i));
    expect(await recordsOf(tenant, lee)).toHaveLength(4);
  });
});

describe('records.upserted: a batch whose envelope or tenant is refused is poisoned whole', () => {
  it('a batch of a tenant that does not exist: one poison message with the reason, nothing stored anywhere', async () => {
    const tenantId = randomUUID();
    const message = batchOf(tenantId, [checkInItem('PC-NOWHERE', personOf('nobody'), 0)]);
    await deliver(message);
    const kept = await poisonedFor(tenantId);
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatchObject({
      eventId: message.eventId,
      reason: expect.stringMatching(/^TenantNotFound: /),
    });
    expect(kept[0]).not.toHaveProperty('batch');
    expect(kept[0]).not.toHaveProperty('reference');
    expect(await names(tenantId)).toEqual([]);
  });

  it.each([
    ['101 items', (items: unknown[]) => [...items, ...items].slice(0, 101), 'records', /at most 100 items/],
    ['no items', () => [], 'records', /./],
    ['records that are no list', () => ({ 0: 'x' }), 'records', /./],
  ])(
    '%s: one poison message naming the envelope, no item stored',
    async (_name, recordsOfBatch, target, message) => {
      const tenant = await provisionedTenant(services);
      const person = personOf('many');
      const items = Array.from({ length: 60 }, (_, i) =>
        checkInItem('PC-MANY', person, i, { data: {}, eventId: `m${i}` }),
      );
      const batch = batchOf(tenant.tenantId, recordsOfBatch(items) as unknown[]);
      await deliver(batch);
      const kept = await poisonedFor(tenant.tenantId);
      expect(kept).toHaveLength(1);
      expect(kept[0]).toMatchObject({ eventId: batch.eventId, reason: SCHEMA_MISMATCH });
      expect(kept[0]!.details).toEqual([
        expect.objectContaining({ target, message: expect.stringMatching(message) }),
      ]);
      expect(kept[0]).not.toHaveProperty('batch');
      const { subjectKey } = await services.records.subjectOf(tenant, person);
      expect(await services.records.countByCategory(tenant, subjectKey)).toEqual({});
    },
  );

  it('a batch without a tenant: poisoned whole, its payload dropped (no tenant to seal it for)', async () => {
    const eventId = `no-tenant-${randomUUID()}`;
    await deliver({ type: 'records.upserted', eventId, records: [checkInItem('PC-X', personOf('x'), 0)] });
    const poisoned = await poisonedWhere((m) => m.eventId === eventId);
    expect(poisoned).toHaveLength(1);
    expect(poisoned[0]).toMatchObject({ reason: SCHEMA_MISMATCH });
    expect(poisoned[0]!.details).toEqual(
      expect.arrayContaining([expect.objectContaining({ target: 'tenantId' })]),
    );
    expect(poisoned[0]).not.toHaveProperty('reference');
  });
});
