// Integration: the dsr-work steps, delivered as the host delivers them: twice, concurrently, failing
// part-way, failing for good. This file's global account is Azurite's devstoreaccount1, so no local host
// of another test file consumes its queue.
import { randomUUID } from 'node:crypto';

import { dsrWork } from '../../functions/dsrWork';
import { azuriteConnectionString, DEV_ACCOUNT } from '../../local/azurite';
import { createServices } from '../../shared/composition';
import type { PoisonedMessage } from '../../shared/hosting/queueFailures';
import { invokeQueue } from '../../shared/hosting/invoke';
import { SubjectErasure } from '../../shared/records/subjectErasure';
import type { CreateRequestInput } from '../../shared/requests/dataSubjectRequest';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import { CONTAINERS, QUEUES } from '../../shared/storage/names';
import { decodeMessage } from '../../shared/storage/queueMessages';
import { invocationContext } from '../support/invocation';
import { testConfig } from '../support/testStorage';

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
const services = createServices(testConfig({ STORAGE_GLOBAL: azuriteConnectionString(DEV_ACCOUNT, ports) }));
const admin = {
  actor: { type: 'user' as const, id: 'admin', upn: 'admin@contoso.com' },
  correlationId: 'test',
};

async function newTenant(country = 'DE'): Promise<TenantScope> {
  const { entry } = await services.directory.provision({
    tenantId: randomUUID(),
    countryCode: country,
    displayName: 'T',
  });
  return services.directory.scopeOf(entry);
}

const person = () => ({ upn: `p-${randomUUID().slice(0, 8)}@contoso.com`, objectId: randomUUID() });

async function ingest(tenant: TenantScope, subject: { upn: string; objectId: string }) {
  const at = new Date().toISOString();
  await services.records.upsert(tenant, {
    category: 'directory',
    recordId: `d-${subject.objectId}`,
    subject,
    occurredAt: at,
    data: { department: 'Sales' },
  });
  await services.records.upsert(tenant, {
    category: 'device',
    recordId: `v-${subject.objectId}`,
    subject,
    occurredAt: at,
    data: { model: 'X' },
    deviceName: 'PC',
  });
  await services.records.upsert(tenant, {
    category: 'systemLog',
    recordId: `l-${subject.objectId}`,
    subject,
    occurredAt: at,
    data: { m: 'sync' },
  });
}

const step = (tenant: TenantScope, requestId: string, name: 'discover' | 'fulfil', dequeueCount = 1) =>
  invokeQueue(
    dsrWork,
    services,
    { tenantId: tenant.tenantId, requestId, step: name },
    invocationContext('dsrWork', { dequeueCount }),
  );

async function approved(tenant: TenantScope, input: CreateRequestInput) {
  const request = await services.requests.create(tenant, input, admin);
  await step(tenant, request.id, 'discover');
  await services.requests.decide(tenant, request.id, 'approve', admin);
  return request.id;
}

async function actions(tenant: TenantScope, requestId: string) {
  const page = await services.audit.list(tenant, {}, { top: 200 });
  return page.items.filter((e) => e.target.id === requestId).map((e) => e.action);
}

async function packages(tenant: TenantScope): Promise<string[]> {
  const container = await tenant.account.container(CONTAINERS.exportPackages);
  const names: string[] = [];
  for await (const blob of container.listBlobsFlat({ prefix: `${tenant.tenantId}/` })) names.push(blob.name);
  return names;
}

const exportOf = (subject: object): CreateRequestInput => ({
  type: 'export',
  regulation: 'GDPR',
  subject,
  dataSubjectType: 'other',
});

/** Records per category of the subject a request naming these identifiers acts on. */
async function countsOf(tenant: TenantScope, subject: { upn: string; objectId: string }) {
  return services.records.countByCategory(
    tenant,
    (await services.records.subjectOf(tenant, subject)).subjectKey,
  );
}

afterEach(() => jest.restoreAllMocks());

describe('dsr-work: at-least-once delivery', () => {
  it('discovery delivered three times at once counts once and audits each transition once', async () => {
    const tenant = await newTenant();
    const subject = person();
    await ingest(tenant, subject);
    const request = await services.requests.create(tenant, exportOf(subject), admin);
    await Promise.all([1, 2, 3].map(() => step(tenant, request.id, 'discover')));
    const read = await services.requests.get(tenant, request.id);
    expect(read.status).toBe('awaitingReview');
    // The subject's own request history is theirs too: this request's intake and start so far.
    expect(read.discovery?.counts).toEqual({ directory: 1, device: 1, systemLog: 1, auditEvents: 2 });
    expect(await actions(tenant, request.id)).toEqual([
      'dsr.created',
      'dsr.discoveryStarted',
      'dsr.discoveryCompleted',
    ]);
  });

  it('an export delivered twice at once leaves one package and one completion', async () => {
    const tenant = await newTenant();
    const subject = person();
    await ingest(tenant, subject);
    const id = await approved(tenant, exportOf(subject));
    await Promise.all([step(tenant, id, 'fulfil'), step(tenant, id, 'fulfil')]);
    await step(tenant, id, 'fulfil'); // and once more, late
    const read = await services.requests.get(tenant, id);
    expect(read.status).toBe('completed');
    const blobs = await packages(tenant);
    const stored = await services.requests.load(tenant, id);
    expect(blobs).toEqual([(stored.result as { package: { blobName: string } }).package.blobName]);
    expect((await actions(tenant, id)).filter((a) => a === 'dsr.completed')).toHaveLength(1);
  });

  it('an export that stopped after writing its package finishes on redelivery with a single package', async () => {
    const tenant = await newTenant();
    const subject = person();
    await ingest(tenant, subject);
    const id = await approved(tenant, exportOf(subject));
    const change = services.requests.change.bind(services.requests);
    jest.spyOn(services.requests, 'change').mockImplementationOnce(async () => {
      throw new Error('crash after the upload');
    });
    await expect(step(tenant, id, 'fulfil')).rejects.toThrow('crash after the upload');
    expect(await packages(tenant)).toHaveLength(1);
    expect((await services.requests.get(tenant, id)).status).toBe('inProgress');
    jest.spyOn(services.requests, 'change').mockImplementation(change);
    await step(tenant, id, 'fulfil', 2);
    expect((await services.requests.get(tenant, id)).status).toBe('completed');
    expect(await packages(tenant)).toHaveLength(1);
  });

  it('a delete that crashed part-way finishes with the counts it found before erasing', async () => {
    const tenant = await newTenant();
    const subject = person();
    await ingest(tenant, subject);
    const id = await approved(tenant, {
      type: 'delete',
      regulation: 'GDPR',
      subject: { upn: subject.upn },
      dataSubjectType: 'other',
    });
    const erase = SubjectErasure.prototype.erase;
    jest.spyOn(SubjectErasure.prototype, 'erase').mockImplementationOnce(async function (
      this: SubjectErasure,
      ...args
    ) {
      await erase.apply(this, args);
      throw new Error('crash after erasing');
    });
    await expect(step(tenant, id, 'fulfil')).rejects.toThrow('crash after erasing');
    await step(tenant, id, 'fulfil', 2);
    const read = await services.requests.get(tenant, id);
    expect(read).toMatchObject({
      status: 'completed',
      result: { erased: { directory: 1, device: 1, systemLog: 1 } },
    });
    expect(read).not.toHaveProperty('progress');
    expect(await countsOf(tenant, subject)).toEqual({});
  });

  it('after five failed deliveries the request is failed with the reason, the message poisoned, and retry resumes it', async () => {
    const tenant = await newTenant();
    const subject = person();
    await ingest(tenant, subject);
    const id = await approved(tenant, exportOf(subject));
    jest.spyOn(services.records, 'listPages').mockImplementation(() => {
      throw new Error('storage is on fire');
    });
    for (let attempt = 1; attempt < 5; attempt++) {
      await expect(step(tenant, id, 'fulfil', attempt)).rejects.toThrow('storage is on fire');
    }
    await step(tenant, id, 'fulfil', 5);
    const failed = await services.requests.get(tenant, id);
    // The request tells people what happened in words of theirs; the raw error went to the log.
    expect(failed).toMatchObject({ status: 'failed', failure: { step: 'fulfil', code: 'Internal' } });
    expect(failed.failure?.reason).toMatch(/^This step failed unexpectedly\. Retry the request/);
    expect(JSON.stringify(failed)).not.toContain('fire');
    const poison = await services.storage.global.queue(QUEUES.dsrWorkPoison);
    const { peekedMessageItems } = await poison.peekMessages({ numberOfMessages: 32 });
    const kept = peekedMessageItems
      .map((m) => decodeMessage(m.messageText) as PoisonedMessage)
      .find((m) => (m.message as { requestId?: string } | undefined)?.requestId === id);
    expect(kept?.reason).toBe('Failed 5 times: storage is on fire');

    jest.restoreAllMocks();
    const retried = await services.requests.decide(tenant, id, 'retry', admin);
    expect(retried.status).toBe('inProgress');
    await step(tenant, id, 'fulfil');
    expect((await services.requests.get(tenant, id)).status).toBe('completed');
    expect(await actions(tenant, id)).toEqual([
      'dsr.created',
      'dsr.discoveryStarted',
      'dsr.discoveryCompleted',
      'dsr.approved',
      'dsr.failed',
      'dsr.retried',
      'dsr.completed',
    ]);
  });

  it('a step failing for good on a storage fault says so in words, without the storage error', async () => {
    const tenant = await newTenant();
    const subject = person();
    await ingest(tenant, subject);
    const id = await approved(tenant, exportOf(subject));
    const fault = Object.assign(new Error('connect ECONNREFUSED 10.0.0.7:443 (table.core.windows.net)'), {
      code: 'ECONNREFUSED',
    });
    jest.spyOn(services.records, 'listPages').mockImplementation(() => {
      throw fault;
    });
    await step(tenant, id, 'fulfil', 5);
    const failed = await services.requests.get(tenant, id);
    expect(failed.failure).toMatchObject({ step: 'fulfil', code: 'StorageUnavailable' });
    expect(JSON.stringify(failed)).not.toMatch(/ECONNREFUSED|10\.0\.0\.7|windows\.net/);
  });

  it('a malformed message or one for an unknown request is poisoned at once with its reason', async () => {
    const tenant = await newTenant();
    await invokeQueue(dsrWork, services, { step: 'explode' }, invocationContext('dsrWork'));
    await step(tenant, '0000000000000000000000000', 'discover');
    const poison = await services.storage.global.queue(QUEUES.dsrWorkPoison);
    const { peekedMessageItems } = await poison.peekMessages({ numberOfMessages: 32 });
    const reasons = peekedMessageItems.map((m) => (decodeMessage(m.messageText) as PoisonedMessage).reason);
    expect(reasons).toEqual(
      expect.arrayContaining([
        'The message does not match the schema.',
        expect.stringMatching(/^NotFound: /),
      ]),
    );
  });
});

describe('dsr-work: rectify, restrict, isolation', () => {
  it('rectifies what may be corrected and says why the rest is refused', async () => {
    const tenant = await newTenant();
    const subject = person();
    await ingest(tenant, subject);
    const id = await approved(tenant, {
      type: 'rectify',
      regulation: 'GDPR',
      subject,
      dataSubjectType: 'other',
      rectifications: [
        { category: 'directory', field: 'department', value: 'Marketing' },
        { category: 'device', field: 'model', value: 'Y' },
        { category: 'systemLog', field: 'm', value: 'x' },
        { category: 'directory', recordId: 'no-such-record', field: 'department', value: 'x' },
      ],
    });
    await step(tenant, id, 'fulfil');
    const read = await services.requests.get(tenant, id);
    expect(
      (read.result as { rectifications: { outcome: string }[] }).rectifications.map((r) => r.outcome),
    ).toEqual(['applied', 'DeviceReported', 'SystemGeneratedLog', 'NotFound']);
    const subjectKey = (await services.records.subjectOf(tenant, subject)).subjectKey;
    const directory = [];
    for await (const record of services.records.list(tenant, subjectKey, 'directory'))
      directory.push(record.data);
    expect(directory).toEqual([{ department: 'Marketing' }]);
  });

  it('restricts and lifts the restriction of a subject', async () => {
    const tenant = await newTenant();
    const subject = person();
    await ingest(tenant, subject);
    const restrict = await approved(tenant, {
      type: 'restrict',
      regulation: 'GDPR',
      subject,
      dataSubjectType: 'other',
    });
    await step(tenant, restrict, 'fulfil');
    const listed = await services.restrictions.list(tenant, { top: 10 });
    expect(listed.items).toEqual([expect.objectContaining({ subject, requestId: restrict })]);
    const lift = await approved(tenant, {
      type: 'unrestrict',
      regulation: 'GDPR',
      subject,
      dataSubjectType: 'other',
    });
    await step(tenant, lift, 'fulfil');
    expect((await services.restrictions.list(tenant, { top: 10 })).items).toEqual([]);
  });

  it('a delete in one tenant leaves the same person in another tenant untouched', async () => {
    const [tenantA, tenantB] = [await newTenant('DE'), await newTenant('DE')];
    const subject = person();
    await ingest(tenantA, subject);
    await ingest(tenantB, subject);
    const id = await approved(tenantA, {
      type: 'delete',
      regulation: 'GDPR',
      subject,
      dataSubjectType: 'other',
    });
    await step(tenantA, id, 'fulfil');
    expect(await countsOf(tenantA, subject)).toEqual({});
    expect(await countsOf(tenantB, subject)).toEqual({
      directory: 1,
      device: 1,
      systemLog: 1,
    });
    const exportB = await approved(tenantB, exportOf(subject));
    await step(tenantB, exportB, 'fulfil');
    expect((await services.requests.get(tenantB, exportB)).result).toMatchObject({
      counts: { directory: 1, device: 1, systemLog: 1 },
    });
  });
});
