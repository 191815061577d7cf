// Time travel on Azurite: records ingested with past dates are purged on the day they are due, not a day
// early and not left behind. This file's global account is devstoreaccount1, so no other test's local
// host consumes its retention-work queue.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { PipelinePolicy } from '@azure/core-rest-pipeline';

import { personalDataEvents } from '../../../functions/personalDataEvents';
import { retentionPurge } from '../../../functions/retentionPurge';
import { azuriteConnectionString, DEV_ACCOUNT } from '../../../local/azurite';
import { createServices } from '../../../shared/composition';
import { localKeyFolder } from '../../../shared/crypto/keyProviders';
import { invokeQueue, invokeTimer } from '../../../shared/hosting/invoke';
import type { RecordCategory } from '../../../shared/vocabulary/categories';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { anonymousPartition, RecordRetention } from '../../../shared/records/recordRetention';
import { QUEUES, TABLES } from '../../../shared/storage/names';
import { decodeMessage } from '../../../shared/storage/queueMessages';
import { invocationContext } from '../../support/invocation';
import { TEST_KEY_FOLDER, testConfig } from '../../support/testStorage';

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
let now = new Date('2026-01-01T02:00:00Z');
let requests = 0;
let entitiesRead = 0;
/** Counts requests, and the entities that queries return (what a scan would make grow). */
const counter: PipelinePolicy = {
  name: 'countRequests',
  sendRequest: async (request, next) => {
    requests++;
    const response = await next(request);
    if (request.method === 'GET' && response.bodyAsText) {
      const body = JSON.parse(response.bodyAsText) as { value?: unknown[] };
      // Queries only: what a scan of stored data would make grow (point reads are counted as requests).
      if (Array.isArray(body.value)) entitiesRead += body.value.length;
    }
    return response;
  },
};
const services = createServices(testConfig({ STORAGE_GLOBAL: azuriteConnectionString(DEV_ACCOUNT, ports) }), {
  clock: () => now,
  storage: { tablePolicies: [{ policy: counter, position: 'perCall' }] },
});
const admin = { actor: { type: 'user' as const, id: 'admin' }, correlationId: 'test' };

/** The purge run of a day, at 02:00 UTC as the timer runs it. */
async function purgeOn(tenant: TenantScope, day: string) {
  now = new Date(`${day}T02:00:00Z`);
  return services.retention.purgeTenant({ tenantId: tenant.tenantId, day });
}

async function newTenant(): Promise<TenantScope> {
  now = new Date('2026-01-01T02:00:00Z');
  const { entry } = await services.directory.provision({
    tenantId: randomUUID(),
    countryCode: 'DE',
    displayName: 'T',
  });
  return services.directory.scopeOf(entry);
}

const adele = { upn: 'adele@contoso.com' };

async function put(
  tenant: TenantScope,
  category: RecordCategory,
  occurredAt: string,
  extra: { recordId?: string; subject?: object; data?: Record<string, unknown> } = {},
) {
  const recordId = extra.recordId ?? `${category}-${randomUUID()}`;
  await services.records.upsert(tenant, {
    category,
    recordId,
    subject: (extra.subject as { upn: string }) ?? adele,
    occurredAt,
    data: extra.data ?? { value: 1 },
    deviceName: 'PC-1',
  });
  return recordId;
}

async function held(tenant: TenantScope, subject: object = adele) {
  return services.records.countByCategory(
    tenant,
    (await services.records.subjectOf(tenant, subject as { upn: string })).subjectKey,
  );
}

describe('retention purge, by the calendar', () => {
  it('deletes short-lived categories 30 days after they occurred, on that day and not before', async () => {
    const tenant = await newTenant();
    for (const category of ['usage', 'windowsDiagnostic', 'deviceDiagnostics', 'systemLog'] as const) {
      await put(tenant, category, '2026-01-05T18:00:00Z');
    }
    await put(tenant, 'directory', '2026-01-05T18:00:00Z');
    expect((await purgeOn(tenant, '2026-02-03'))?.deleted).toEqual({});
    expect(await held(tenant)).toEqual({
      usage: 1,
      windowsDiagnostic: 1,
      deviceDiagnostics: 1,
      systemLog: 1,
      directory: 1,
    });
    const report = await purgeOn(tenant, '2026-02-04');
    expect(report?.deleted).toEqual({ usage: 1, windowsDiagnostic: 1, deviceDiagnostics: 1, systemLog: 1 });
    expect(await held(tenant)).toEqual({ directory: 1 });
    // Live records of other categories are kept, years later too.
    await purgeOn(tenant, '2029-01-01');
    expect(await held(tenant)).toEqual({ directory: 1 });
  });

  it('purges a soft-deleted record 30 days after its deletion', async () => {
    const tenant = await newTenant();
    const recordId = await put(tenant, 'device', '2025-06-01T00:00:00Z');
    await services.records.softDeleteRecord(tenant, 'device', recordId, '2026-01-10T09:00:00Z');
    await purgeOn(tenant, '2026-02-08');
    expect(await held(tenant)).toEqual({ device: 1 });
    expect((await purgeOn(tenant, '2026-02-09'))?.deleted).toEqual({ device: 1 });
    expect(await held(tenant)).toEqual({});
  });

  it('does not purge a record brought back to life, nor one that occurred again', async () => {
    const tenant = await newTenant();
    const revived = await put(tenant, 'device', '2026-01-01T00:00:00Z');
    await services.records.softDeleteRecord(tenant, 'device', revived, '2026-01-02T00:00:00Z');
    await put(tenant, 'device', '2026-01-03T00:00:00Z', { recordId: revived });
    const usage = await put(tenant, 'usage', '2026-01-01T00:00:00Z');
    await put(tenant, 'usage', '2026-01-20T00:00:00Z', { recordId: usage });
    await purgeOn(tenant, '2026-02-05');
    expect(await held(tenant)).toEqual({ device: 1, usage: 1 });
    await purgeOn(tenant, '2026-02-19');
    expect(await held(tenant)).toEqual({ device: 1 });
  });

  it('anonymises alerts at 180 days (requests no longer find them) and deletes them at 2 years', async () => {
    const tenant = await newTenant();
    await put(tenant, 'alert', '2026-01-01T08:00:00Z', {
      data: {
        title: 'Malware blocked',
        severity: 'high',
        user: 'adele@contoso.com',
        reportedBy: 'Megan Bowen',
        note: 'seen by megan@contoso.com',
      },
    });
    await purgeOn(tenant, '2026-06-29');
    expect(await held(tenant)).toEqual({ alert: 1 });
    expect((await purgeOn(tenant, '2026-06-30'))?.anonymised).toBe(1);
    expect(await held(tenant)).toEqual({});
    const table = await tenant.account.table(TABLES.records);
    const anonymous = [];
    for await (const row of table.listEntities({
      queryOptions: { filter: `PartitionKey eq '${anonymousPartition(tenant.tenantId)}'` },
    })) {
      anonymous.push(row);
    }
    expect(anonymous).toHaveLength(1);
    const text = JSON.stringify(anonymous[0]);
    for (const personal of ['adele', 'Megan', 'megan', 'PC-1']) expect(text).not.toContain(personal);
    expect(JSON.parse(String(anonymous[0]!.anonymised))).toMatchObject({
      title: 'Malware blocked',
      severity: 'high',
    });
    expect((await purgeOn(tenant, '2027-12-31'))?.anonymisedDeleted).toBe(0);
    expect((await purgeOn(tenant, '2028-01-01'))?.anonymisedDeleted).toBe(1);
  });

  it('waits while the subject has an open export or delete request', async () => {
    const tenant = await newTenant();
    await put(tenant, 'usage', '2026-01-01T00:00:00Z');
    const request = await services.requests.create(
      tenant,
      { type: 'export', regulation: 'GDPR', subject: adele, dataSubjectType: 'other' },
      admin,
    );
    const report = await purgeOn(tenant, '2026-02-01');
    expect(report).toMatchObject({ deleted: {}, subjectsSkipped: 1 });
    expect(await held(tenant)).toEqual({ usage: 1 });
    await services.requests.decide(tenant, request.id, 'cancel', admin);
    expect((await purgeOn(tenant, '2026-02-02'))?.deleted).toEqual({ usage: 1 });
  });

  it('deletes an export package 30 days after its request completed', async () => {
    const tenant = await newTenant();
    await put(tenant, 'directory', '2026-01-01T00:00:00Z');
    now = new Date('2026-01-10T10:00:00Z');
    const request = await services.requests.create(
      tenant,
      { type: 'export', regulation: 'GDPR', subject: adele, dataSubjectType: 'other' },
      admin,
    );
    await services.fulfilment.run({ tenantId: tenant.tenantId, requestId: request.id, step: 'discover' });
    await services.requests.decide(tenant, request.id, 'approve', admin);
    await services.fulfilment.run({ tenantId: tenant.tenantId, requestId: request.id, step: 'fulfil' });
    await purgeOn(tenant, '2026-02-08');
    const link = () => services.downloads.issue(tenant, request.id, admin, 'http://localhost:7071');
    await expect(link()).resolves.toMatchObject({ sha256: expect.any(String) });
    expect((await purgeOn(tenant, '2026-02-09'))?.packagesDeleted).toBe(1);
    await expect(link()).rejects.toMatchObject({ code: 'NotFound' });
  });

  it('purges all data of an ended subscription 30 days after it ended, and the tenant is then gone', async () => {
    const tenant = await newTenant();
    await put(tenant, 'directory', '2026-01-01T00:00:00Z');
    await services.requests.create(
      tenant,
      { type: 'access', regulation: 'GDPR', subject: adele, dataSubjectType: 'other' },
      admin,
    );
    await services.directory.endSubscription(tenant.tenantId, '2026-03-01T12:00:00Z');
    const tenantKeyFile = join(localKeyFolder(TEST_KEY_FOLDER, tenant.geography), `${tenant.tenantId}.key`);
    expect((await purgeOn(tenant, '2026-03-30'))?.tenantPurged).toBe(false);
    expect(await held(tenant)).toEqual({ directory: 1 });
    expect(existsSync(tenantKeyFile)).toBe(true);
    expect(await purgeOn(tenant, '2026-03-31')).toMatchObject({
      tenantPurged: true,
      tenantKeyDestroyed: true,
    });
    // The tenant key that wrapped its data keys is gone too: no lingering copy of them opens again.
    expect(existsSync(tenantKeyFile)).toBe(false);
    for (const name of Object.values(TABLES)) {
      const table = await tenant.account.table(name);
      const left = [];
      for await (const row of table.listEntities({
        queryOptions: {
          filter: `PartitionKey ge '${tenant.tenantId}' and PartitionKey lt '${tenant.tenantId}~'`,
        },
      })) {
        left.push(row);
      }
      expect({ name, left }).toEqual({ name, left: [] });
    }
    await expect(services.directory.resolve(tenant.tenantId)).rejects.toMatchObject({
      code: 'TenantNotFound',
    });
  });
});

describe('the lifecycle of a tenant', () => {
  const deliver = (message: Record<string, unknown>) =>
    invokeQueue(personalDataEvents, services, message, invocationContext('personalDataEvents'));
  const rowsOf = async (tenant: TenantScope) => {
    let count = 0;
    for (const name of Object.values(TABLES)) {
      const table = await tenant.account.table(name);
      for await (const _row of table.listEntities({
        queryOptions: {
          filter: `PartitionKey ge '${tenant.tenantId}' and PartitionKey lt '${tenant.tenantId}~'`,
        },
      })) {
        count++;
      }
    }
    return count;
  };

  it('a tenant provisioned again after its subscription ended is active again: the passive deletion is cancelled and audited', async () => {
    const tenant = await newTenant();
    await put(tenant, 'directory', '2026-01-01T00:00:00Z');
    await services.directory.endSubscription(tenant.tenantId, '2026-03-01T12:00:00Z');
    now = new Date('2026-03-10T09:00:00Z');
    const provisioned = {
      type: 'tenant.provisioned',
      tenantId: tenant.tenantId,
      countryCode: 'DE',
      displayName: 'T',
    };
    await deliver({ ...provisioned, eventId: `again-${tenant.tenantId}` });
    await deliver({ ...provisioned, eventId: `again-${tenant.tenantId}` });
    expect(await services.directory.get(tenant.tenantId)).toMatchObject({ status: 'active' });
    expect(await services.directory.get(tenant.tenantId)).not.toHaveProperty('subscriptionEndedAt');
    const audited = await services.audit.list(tenant, { action: 'tenant.reactivated' }, { top: 10 });
    expect(audited.items.map((e) => e.details)).toEqual([
      expect.objectContaining({ subscriptionEndedAt: '2026-03-01T12:00:00Z', passiveDeletion: 'cancelled' }),
    ]);
    expect(await purgeOn(tenant, '2026-04-01')).toMatchObject({ tenantPurged: false });
    expect(await held(tenant)).toEqual({ directory: 1 });
  });

  it('refuses, before any write, events for a tenant being purged or purged, and its provisioning again', async () => {
    const tenant = await newTenant();
    await put(tenant, 'directory', '2026-01-01T00:00:00Z');
    await services.directory.endSubscription(tenant.tenantId, '2026-03-01T12:00:00Z');
    now = new Date('2026-03-31T02:00:00Z');
    expect(await services.directory.beginPurge(tenant.tenantId)).toBe(true);
    const upsert = (eventId: string) => ({
      type: 'record.upserted',
      tenantId: tenant.tenantId,
      eventId,
      category: 'directory',
      recordId: `late-${eventId}`,
      subject: adele,
      occurredAt: '2026-03-30T00:00:00Z',
      data: { late: true },
    });
    const before = await rowsOf(tenant);
    await deliver(upsert(`during-${tenant.tenantId}`));
    expect(await rowsOf(tenant)).toBe(before);
    expect(await purgeOn(tenant, '2026-03-31')).toMatchObject({ tenantPurged: true });
    await deliver(upsert(`after-${tenant.tenantId}`));
    await deliver({
      type: 'tenant.provisioned',
      tenantId: tenant.tenantId,
      eventId: `p2-${tenant.tenantId}`,
      countryCode: 'DE',
      displayName: 'T',
    });
    expect(await rowsOf(tenant)).toBe(0);
    expect(await services.directory.get(tenant.tenantId)).toMatchObject({ status: 'purged' });
    const poison = await services.storage.global.queue(QUEUES.personalDataEventsPoison);
    const { peekedMessageItems } = await poison.peekMessages({ numberOfMessages: 32 });
    const reasons = peekedMessageItems
      .map((m) => decodeMessage(m.messageText) as { reason: string; eventId?: string })
      .filter((m) => String(m.eventId).endsWith(tenant.tenantId))
      .map((m) => m.reason.split(':')[0]);
    expect(reasons.sort()).toEqual(['NotEligible', 'TenantNotFound', 'TenantNotFound']);
  });
});

describe('retention purge, as a process', () => {
  it('writes one audit event per run with its counts; a repeated run that finds the same writes none; the chain stays valid', async () => {
    const tenant = await newTenant();
    await put(tenant, 'usage', '2026-01-01T00:00:00Z');
    await purgeOn(tenant, '2026-02-01');
    await purgeOn(tenant, '2026-02-01');
    await purgeOn(tenant, '2026-02-01');
    await purgeOn(tenant, '2026-02-02');
    const events = await services.audit.list(tenant, { action: 'retention.purged' }, { top: 10 });
    expect(events.items.map((e) => [e.details.day, e.details.deleted])).toEqual([
      ['2026-02-01', { usage: 1 }],
      ['2026-02-01', {}],
      ['2026-02-02', {}],
    ]);
    expect(await services.audit.verify(tenant)).toMatchObject({ valid: true });
  });

  it('two overlapping runs delete everything due once, between them', async () => {
    const tenant = await newTenant();
    for (let i = 0; i < 40; i++)
      await put(tenant, 'usage', '2026-01-01T00:00:00Z', { subject: { upn: `u${i}@contoso.com` } });
    const [a, b] = await Promise.all([purgeOn(tenant, '2026-02-01'), purgeOn(tenant, '2026-02-01')]);
    expect((a?.deleted.usage ?? 0) + (b?.deleted.usage ?? 0)).toBe(40);
  });

  it('a run killed part-way finishes on the next delivery', async () => {
    const tenant = await newTenant();
    for (let i = 0; i < 5; i++)
      await put(tenant, 'usage', '2026-01-01T00:00:00Z', { subject: { upn: `k${i}@contoso.com` } });
    await put(tenant, 'alert', '2025-07-01T00:00:00Z');
    jest.spyOn(RecordRetention.prototype, 'anonymiseAlerts').mockRejectedValueOnce(new Error('killed'));
    await expect(purgeOn(tenant, '2026-02-01')).rejects.toThrow('killed');
    const report = await purgeOn(tenant, '2026-02-01');
    expect(report?.anonymised).toBe(1);
    expect(await held(tenant)).toEqual({});
    for (let i = 0; i < 5; i++) expect(await held(tenant, { upn: `k${i}@contoso.com` })).toEqual({});
  });

  it('reads in proportion to what expires, not to what is stored', async () => {
    const measure = async (live: number) => {
      const tenant = await newTenant();
      for (let i = 0; i < live; i++)
        await put(tenant, 'directory', '2026-01-01T00:00:00Z', { subject: { upn: `live${i}@contoso.com` } });
      for (let i = 0; i < 20; i++)
        await put(tenant, 'usage', '2026-01-01T00:00:00Z', { subject: { upn: `old${i}@contoso.com` } });
      requests = 0;
      entitiesRead = 0;
      const report = await purgeOn(tenant, '2026-02-01');
      expect(report?.deleted).toEqual({ usage: 20 });
      return { requests, entitiesRead };
    };
    const small = await measure(10);
    const large = await measure(150);
    // What is read does not grow with what is stored; the requests vary only with how the expired
    // records' lookup rows fall into the 256 lookup partitions (batch deletes group by partition).
    expect(large.entitiesRead).toBe(small.entitiesRead);
    expect(large.entitiesRead).toBeLessThan(40);
    expect(Math.abs(large.requests - small.requests)).toBeLessThanOrEqual(6);
  });

  it('the timer puts one message per active tenant on retention-work', async () => {
    const tenant = await newTenant();
    const queue = await services.storage.global.queue(QUEUES.retentionWork);
    await queue.clearMessages();
    const timer = { isPastDue: false, schedule: { adjustForDST: false } } as never;
    await invokeTimer(retentionPurge, services, timer, invocationContext('retentionPurge'));
    const messages: { tenantId: string; day: string }[] = [];
    for (;;) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
      if (receivedMessageItems.length === 0) break;
      messages.push(
        ...receivedMessageItems.map((m) => decodeMessage(m.messageText) as { tenantId: string; day: string }),
      );
    }
    expect(messages.filter((m) => m.tenantId === tenant.tenantId)).toEqual([
      { tenantId: tenant.tenantId, day: '2026-01-01' },
    ]);
    expect(new Set(messages.map((m) => m.tenantId)).size).toBe(messages.length);
  });
});
