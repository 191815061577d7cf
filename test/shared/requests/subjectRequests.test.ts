// Integration on Azurite, through the dsr-work steps as the host runs them: requests act on one person
// (SPEC §4-§5). A recycled UPN, a shared mailbox, alias-only records, restriction named either way, failed
// requests, system logs and the subject's own request history. This file's global account is Azurite's
// devstoreaccount1, so no local host of another test file consumes its queues.
import { randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { dsrWork } from '../../../functions/dsrWork';
import { demoRecordEvents } from '../../../local/demoData';
import { azuriteConnectionString, DEV_ACCOUNT } from '../../../local/azurite';
import { createServices } from '../../../shared/composition';
import { createPackageDecryptor } from '../../../shared/crypto/packageCipher';
import { hmacWith, Pseudonymizer } from '../../../shared/crypto/pseudonymizer';
import { open as openSealed } from '../../../shared/crypto/sealedBox';
import { invokeQueue } from '../../../shared/hosting/invoke';
import type { UpsertInput } from '../../../shared/records/recordStore';
import type { CreateRequestInput } from '../../../shared/requests/dataSubjectRequest';
import type { DataSubject } from '../../../shared/vocabulary/dataSubject';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { TABLES } from '../../../shared/storage/names';
import { invocationContext } from '../../support/invocation';
import { provisionedTenant, testConfig } from '../../support/testStorage';
import { readZip } from '../../support/zip';

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
let now = new Date('2026-03-01T10:00:00Z');
const services = createServices(testConfig({ STORAGE_GLOBAL: azuriteConnectionString(DEV_ACCOUNT, ports) }), {
  clock: () => now,
});
const admin = { actor: { type: 'user' as const, id: 'admin', upn: 'admin@contoso.com' }, correlationId: 't' };

const newTenant = (): Promise<TenantScope> => provisionedTenant(services);

const step = (tenant: TenantScope, requestId: string, name: 'discover' | 'fulfil') =>
  invokeQueue(
    dsrWork,
    services,
    { tenantId: tenant.tenantId, requestId, step: name },
    invocationContext('dsrWork', { dequeueCount: 1 }),
  );

/** Takes a request in, discovers it, approves it and fulfils it, as the queue would. */
async function fulfilled(tenant: TenantScope, type: CreateRequestInput['type'], subject: DataSubject) {
  const request = await services.requests.create(
    tenant,
    { type, regulation: 'GDPR', subject, dataSubjectType: 'other' },
    admin,
  );
  await step(tenant, request.id, 'discover');
  const discovered = await services.requests.get(tenant, request.id);
  await services.requests.decide(tenant, request.id, 'approve', admin);
  await step(tenant, request.id, 'fulfil');
  const done = await services.requests.get(tenant, request.id);
  expect(done.status).toBe('completed');
  return { id: request.id, discovery: discovered.discovery!, result: done.result! };
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The files of a completed request's package, downloaded through its link as the subject would. */
async function packageOf(tenant: TenantScope, requestId: string) {
  const link = await services.downloads.issue(tenant, requestId, admin, 'http://localhost');
  const download = await services.downloads.download(link.url.split('/').pop()!);
  const files = await readZip(await bytesOf(download.stream));
  const text = (name: string) => files.get(name)?.toString('utf8') ?? '';
  return { files, text, json: (name: string) => JSON.parse(text(name)) as Record<string, unknown>[] };
}

const at = (day: number) => new Date(Date.UTC(2026, 1, day, 9)).toISOString();
const upsert = (tenant: TenantScope, input: Partial<UpsertInput> & Pick<UpsertInput, 'subject'>) =>
  services.records.upsert(tenant, {
    category: 'directory',
    recordId: `r-${randomUUID()}`,
    occurredAt: at(1),
    data: {},
    ...input,
  });

afterEach(() => {
  now = new Date('2026-03-01T10:00:00Z');
  jest.restoreAllMocks();
});

describe('a recycled UPN', () => {
  const setUp = async () => {
    const tenant = await newTenant();
    const recycled = `john.smith-${randomUUID().slice(0, 6)}@contoso.com`;
    const former = { objectId: randomUUID(), upn: recycled };
    const hire = { objectId: randomUUID(), upn: recycled };
    await upsert(tenant, {
      subject: former,
      occurredAt: at(1),
      data: { userPrincipalName: recycled, department: 'Finance', manager: 'anna.boss@contoso.com' },
    });
    await upsert(tenant, {
      subject: former,
      category: 'device',
      occurredAt: at(2),
      data: { model: 'Old-PC' },
    });
    await upsert(tenant, {
      subject: hire,
      occurredAt: at(20),
      data: { userPrincipalName: recycled, department: 'Sales', buddy: 'lee.gu@contoso.com' },
    });
    return { tenant, recycled, former, hire };
  };

  it('an export for the new hire holds only theirs; one by the UPN acts on the new hire and counts the earlier holder', async () => {
    const { tenant, recycled, former, hire } = await setUp();
    const byObjectId = await fulfilled(tenant, 'export', { objectId: hire.objectId });
    const hirePackage = await packageOf(tenant, byObjectId.id);
    const directory = hirePackage.json('directory.json');
    expect(directory).toEqual([
      expect.objectContaining({
        data: { userPrincipalName: recycled, department: 'Sales', buddy: '[redacted]' },
      }),
    ]);
    expect(hirePackage.json('device.json')).toEqual([]);
    for (const name of hirePackage.files.keys()) {
      expect(hirePackage.text(name)).not.toContain('Finance');
      expect(hirePackage.text(name)).not.toContain(former.objectId);
    }

    const byUpn = await fulfilled(tenant, 'export', { upn: recycled });
    expect(byUpn.discovery).toMatchObject({ counts: { directory: 1 }, earlierHolders: 1 });
    expect((await packageOf(tenant, byUpn.id)).json('directory.json')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ department: 'Sales' }) }),
    ]);
  });

  it("an export for the former employee holds only theirs, with the UPN they had and everyone else's redacted", async () => {
    const { tenant, recycled, former } = await setUp();
    const request = await fulfilled(tenant, 'export', { objectId: former.objectId });
    expect(request.discovery.counts).toMatchObject({ directory: 1, device: 1 });
    const formerPackage = await packageOf(tenant, request.id);
    expect(formerPackage.json('directory.json')).toEqual([
      expect.objectContaining({
        data: { userPrincipalName: recycled, department: 'Finance', manager: '[redacted]' },
      }),
    ]);
    for (const name of formerPackage.files.keys()) expect(formerPackage.text(name)).not.toContain('Sales');
  });

  it('deleting the former employee leaves the new hire; deleting by the UPN erases the new hire alone', async () => {
    const { tenant, recycled, former, hire } = await setUp();
    const counts = async (subject: DataSubject) =>
      services.records.countByCategory(
        tenant,
        (await services.records.subjectOf(tenant, subject)).subjectKey,
      );
    const first = await fulfilled(tenant, 'delete', { objectId: former.objectId });
    expect(first.result).toMatchObject({ erased: { directory: 1, device: 1 } });
    expect(await counts({ objectId: hire.objectId })).toEqual({ directory: 1 });

    const tenant2 = await setUp();
    const second = await fulfilled(tenant2.tenant, 'delete', { upn: tenant2.recycled });
    expect(second.result).toMatchObject({ erased: { directory: 1 } });
    const left = async (subject: DataSubject) =>
      services.records.countByCategory(
        tenant2.tenant,
        (await services.records.subjectOf(tenant2.tenant, subject)).subjectKey,
      );
    expect(await left({ objectId: tenant2.hire.objectId })).toEqual({});
    expect(await left({ objectId: tenant2.former.objectId })).toEqual({ directory: 1, device: 1 });
    expect(recycled).not.toBe(tenant2.recycled);
  });
});

describe('alias-only records and restriction', () => {
  it('an export requested by UPN before any record, then records with the object id, then a delete by object id: no key the service holds opens the old package', async () => {
    const tenant = await newTenant();
    const name = `megan-${randomUUID().slice(0, 6)}@contoso.com`;
    const objectId = randomUUID();
    // Someone else, with records and a package of their own: their keys stay and must not open it either.
    const neighbour = { objectId: randomUUID() };
    await upsert(tenant, { subject: neighbour, data: { department: 'Legal' } });
    await fulfilled(tenant, 'export', neighbour);
    const early = await fulfilled(tenant, 'export', { upn: name });
    // Where the package is stored is internal: the request as stored knows, the API does not say.
    const earlyResult = (await services.requests.load(tenant, early.id)).result as {
      package: { blobName: string };
    };
    expect(early.result).toMatchObject({
      package: { sha256: expect.any(String), sizeBytes: expect.any(Number) },
    });
    expect(early.result.package).not.toHaveProperty('blobName');
    const container = await tenant.account.container('export-packages');
    // What a soft-delete restore would give back: the stored bytes as they are.
    const raw = (await container.getBlobClient(earlyResult.package.blobName).downloadToBuffer()) as Buffer;
    expect(raw.subarray(0, 4).toString('latin1')).not.toBe('PK\u0003\u0004');
    // Before the erasure, the subject's keys open it: the check below would see a key that still works.
    await expect(packageOf(tenant, early.id)).resolves.toBeDefined();

    await upsert(tenant, { subject: { objectId, upn: name }, data: { department: 'Sales' } });
    const erased = await fulfilled(tenant, 'delete', { objectId });
    expect(erased.result).toMatchObject({ erased: { directory: 1 }, packagesDeleted: 1 });
    await expect(services.downloads.issue(tenant, early.id, admin, 'http://localhost')).rejects.toMatchObject(
      {
        code: 'NotFound',
      },
    );
    expect(await container.getBlobClient(earlyResult.package.blobName).exists()).toBe(false);
    await expectNoKeyOpens(tenant, raw, `${tenant.tenantId}|${early.id}|${earlyResult.package.blobName}`);
  });

  it('a request naming an object id and an alias nobody holds takes the alias-only records; one naming an alias someone else holds does not', async () => {
    const tenant = await newTenant();
    const loose = `loose-${randomUUID().slice(0, 6)}@contoso.com`;
    const taken = `taken-${randomUUID().slice(0, 6)}@contoso.com`;
    const holder = { objectId: randomUUID(), upn: taken };
    await upsert(tenant, { subject: { upn: loose }, data: { note: 'alias only' } });
    await upsert(tenant, { subject: holder, data: { note: 'the holder' } });
    const person = randomUUID();
    await upsert(tenant, { subject: { objectId: person }, data: { note: 'by object id' } });

    const access = await fulfilled(tenant, 'access', { objectId: person, upn: taken });
    expect(access.discovery.counts).toMatchObject({ directory: 1 });
    const notes = (await packageOf(tenant, access.id)).json('directory.json').map((r) => r.data);
    expect(notes).toEqual([{ note: 'by object id' }]);
    expect((await services.records.subjectOf(tenant, { upn: taken })).subjectKey).toBe(
      (await services.records.subjectOf(tenant, { objectId: holder.objectId })).subjectKey,
    );

    const erased = await fulfilled(tenant, 'delete', { objectId: person, upn: loose });
    expect(erased.result).toMatchObject({ erased: { directory: 2 } });
    expect(
      await services.records.countByCategory(
        tenant,
        (await services.records.subjectOf(tenant, { objectId: holder.objectId })).subjectKey,
      ),
    ).toEqual({ directory: 1 });
  });

  it('a restriction made by UPN before any record is lifted by the object id, and one made by object id by the UPN', async () => {
    const tenant = await newTenant();
    const name = `lee-${randomUUID().slice(0, 6)}@contoso.com`;
    const objectId = randomUUID();
    await fulfilled(tenant, 'restrict', { upn: name });
    await upsert(tenant, { subject: { objectId, upn: name } });
    const listed = await services.restrictions.list(tenant, { top: 10 });
    expect(listed.items).toHaveLength(1);
    await fulfilled(tenant, 'unrestrict', { objectId });
    expect((await services.restrictions.list(tenant, { top: 10 })).items).toEqual([]);

    await fulfilled(tenant, 'restrict', { objectId });
    await fulfilled(tenant, 'unrestrict', { upn: name });
    expect((await services.restrictions.list(tenant, { top: 10 })).items).toEqual([]);
  });

  it('a restricted subject is kept by the purge, as under a hold, and purged once the restriction is lifted', async () => {
    const tenant = await newTenant();
    const person = { objectId: randomUUID(), upn: `kept-${randomUUID().slice(0, 6)}@contoso.com` };
    const other = { objectId: randomUUID() };
    now = new Date('2026-01-01T10:00:00Z');
    await upsert(tenant, { subject: person, category: 'usage', occurredAt: '2026-01-01T08:00:00Z' });
    await upsert(tenant, { subject: other, category: 'usage', occurredAt: '2026-01-01T08:00:00Z' });
    await fulfilled(tenant, 'restrict', { upn: person.upn });
    now = new Date('2026-02-01T02:00:00Z');
    const report = await services.retention.purgeTenant({ tenantId: tenant.tenantId, day: '2026-02-01' });
    expect(report).toMatchObject({ deleted: { usage: 1 }, subjectsSkipped: 1 });
    const held = async () =>
      services.records.countByCategory(tenant, (await services.records.subjectOf(tenant, person)).subjectKey);
    expect(await held()).toEqual({ usage: 1 });
    await fulfilled(tenant, 'unrestrict', { objectId: person.objectId });
    now = new Date('2026-02-02T02:00:00Z');
    await services.retention.purgeTenant({ tenantId: tenant.tenantId, day: '2026-02-02' });
    expect(await held()).toEqual({});
  });
});

describe('failed requests hold nothing back', () => {
  it('a failed delete request does not keep its subject from the purge, and can be cancelled or declined', async () => {
    const tenant = await newTenant();
    const person = { objectId: randomUUID() };
    now = new Date('2026-01-01T10:00:00Z');
    await upsert(tenant, { subject: person, category: 'usage', occurredAt: '2026-01-01T08:00:00Z' });
    const failing = async () => {
      const request = await services.requests.create(
        tenant,
        { type: 'delete', regulation: 'GDPR', subject: person, dataSubjectType: 'other' },
        admin,
      );
      await step(tenant, request.id, 'discover');
      await services.requests.decide(tenant, request.id, 'approve', admin);
      await services.fulfilment.fail(
        { tenantId: tenant.tenantId, requestId: request.id, step: 'fulfil' },
        'boom',
      );
      expect((await services.requests.get(tenant, request.id)).status).toBe('failed');
      return request.id;
    };
    const first = await failing();
    now = new Date('2026-02-01T02:00:00Z');
    const report = await services.retention.purgeTenant({ tenantId: tenant.tenantId, day: '2026-02-01' });
    expect(report).toMatchObject({ deleted: { usage: 1 }, subjectsSkipped: 0 });
    expect((await services.requests.decide(tenant, first, 'cancel', admin)).status).toBe('cancelled');
    const second = await failing();
    const declined = await services.requests.decide(tenant, second, 'decline', {
      ...admin,
      reason: 'the requester withdrew',
    });
    expect(declined).toMatchObject({ status: 'declined', decision: { reason: 'the requester withdrew' } });
  });
});

describe('system logs and request history', () => {
  it("stores the demo data's system log pseudonymised, and still finds, exports and erases it", async () => {
    const tenant = await newTenant();
    const adeleLog = demoRecordEvents(tenant.tenantId, now).find(
      (event) => event.category === 'systemLog' && String(event.recordId).includes('4f1d3a52'),
    )!;
    const subject = adeleLog.subject as DataSubject;
    await services.records.upsert(tenant, adeleLog as unknown as UpsertInput);
    const { subjectKey } = await services.records.subjectOf(tenant, subject);
    const [stored] = await (async () => {
      const found = [];
      for await (const record of services.records.list(tenant, subjectKey, 'systemLog')) found.push(record);
      return found;
    })();
    const pseudonymKey = await new Pseudonymizer().keyFor(tenant);
    expect(stored!.data).toEqual({
      message: `Enrollment sync completed for [upn:${hmacWith(pseudonymKey, 'upn', subject.upn!)}]`,
    });
    expect(stored!.deviceName).toBe(`[device:${hmacWith(pseudonymKey, 'device', 'CONTOSO-ADELE-01')}]`);
    expect(JSON.stringify(stored)).not.toMatch(/adele|CONTOSO-ADELE/i);

    const access = await fulfilled(tenant, 'access', { upn: subject.upn! });
    expect(access.discovery.counts).toMatchObject({ systemLog: 1 });
    expect((await packageOf(tenant, access.id)).json('systemLog.json')).toHaveLength(1);
    const erased = await fulfilled(tenant, 'delete', { objectId: subject.objectId! });
    expect(erased.result).toMatchObject({ erased: { systemLog: 1 } });
  });

  it("discovers and packages the subject's own earlier requests, found by their pseudonymous reference", async () => {
    const tenant = await newTenant();
    const person = { objectId: randomUUID(), upn: `history-${randomUUID().slice(0, 6)}@contoso.com` };
    const someoneElse = { objectId: randomUUID() };
    await upsert(tenant, { subject: person });
    const restricted = await fulfilled(tenant, 'restrict', { upn: person.upn });
    await fulfilled(tenant, 'restrict', someoneElse);
    const access = await fulfilled(tenant, 'access', { objectId: person.objectId });
    const events = (await packageOf(tenant, access.id)).json('audit-events.json') as {
      target: { id: string };
      action: string;
    }[];
    const requests = new Set(events.map((event) => event.target.id));
    expect(requests.has(restricted.id)).toBe(true);
    expect(events.filter((event) => event.target.id === restricted.id).map((e) => e.action)).toEqual([
      'dsr.created',
      'dsr.discoveryStarted',
      'dsr.discoveryCompleted',
      'dsr.approved',
      'dsr.completed',
    ]);
    // Nobody else's requests, and the audit events carry no identifier of the person in clear for this.
    expect(events.every((event) => requests.has(event.target.id))).toBe(true);
    expect(access.discovery.counts.auditEvents).toBeGreaterThanOrEqual(5);
    const other = await services.audit.list(tenant, { action: 'dsr.created' }, { top: 50 });
    expect(other.items.filter((e) => !requests.has(e.target.id))).toHaveLength(1);
  });
});

/**
 * Every key the service still holds for the tenant fails to open the package bytes: each subject's data key,
 * the pseudonymisation key, and every package key still wrapped in an index row.
 */
async function expectNoKeyOpens(tenant: TenantScope, raw: Buffer, context: string) {
  const records = await tenant.account.table(TABLES.records);
  const dataKeys = new Map<string, Buffer>();
  const wrappedPackages: { partitionKey: string; rowKey: string; wrappedKey: string }[] = [];
  for await (const row of records.listEntities<Record<string, string>>({
    queryOptions: {
      filter: `PartitionKey ge '${tenant.tenantId}' and PartitionKey lt '${tenant.tenantId}~'`,
    },
  })) {
    if (row.rowKey === '~key') {
      const { provider, keyId, value } = row as unknown as { provider: string; keyId: string; value: string };
      dataKeys.set(
        row.partitionKey!,
        await tenant.keys.unwrapKey(tenant.tenantId, { provider, keyId, value }),
      );
    } else if (row.rowKey!.startsWith('~pkg_')) {
      wrappedPackages.push(row as unknown as { partitionKey: string; rowKey: string; wrappedKey: string });
    }
  }
  const keys = [...dataKeys.values(), await new Pseudonymizer().keyFor(tenant)];
  for (const row of wrappedPackages) {
    const dataKey = dataKeys.get(row.partitionKey);
    if (dataKey) keys.push(openSealed(dataKey, row.wrappedKey, `${row.partitionKey}|${row.rowKey}`));
  }
  const outcomes = await Promise.all(
    keys.map((key) =>
      pipeline(Readable.from([raw]), createPackageDecryptor(key, context), new PassThrough()).then(
        () => 'opened',
        () => 'refused',
      ),
    ),
  );
  // The neighbour's data key and package key, and the pseudonymisation key.
  expect(outcomes.length).toBeGreaterThanOrEqual(3);
  expect(new Set(outcomes)).toEqual(new Set(['refused']));
}
