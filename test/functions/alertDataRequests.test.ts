// Alert data requests (SPEC §9) end to end on the local host, with records sent on the queue: an extraction
// packages exactly the named devices' alerts (not another device's, not their other records, not a
// restricted subject's) behind an audited download link; a deletion anonymises those alerts as the 180-day
// rule does and leaves everything else as it was; redelivered work changes nothing; bad input is refused.
import { createHash, randomUUID } from 'node:crypto';

import { odata } from '@azure/data-tables';

import { alertDataWork } from '../../functions/alertDataWork';
import { alertPackageOwner } from '../../shared/alertRequests/alertDataRequest';
import { PackageStore } from '../../shared/exports/packageStore';
import { invokeQueue } from '../../shared/hosting/invoke';
import { SubjectKeyStore } from '../../shared/records/subjectKeys';
import { ExpiryIndex } from '../../shared/retention/expiryIndex';
import { anonymousPartition } from '../../shared/records/recordRetention';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import { ANONYMOUS_ALERT_FIELDS } from '../../shared/retention/alertAnonymisation';
import { QUEUES, TABLES } from '../../shared/storage/names';
import { sendJson } from '../../shared/storage/queueMessages';
import type { RecordCategory } from '../../shared/vocabulary/categories';
import { invocationContext } from '../support/invocation';
import { startTestHost, type TestHost } from '../support/testHost';
import { until } from '../support/until';
import { readZip } from '../support/zip';

let host: TestHost;
let tenantId: string;
let tenant: TenantScope;
let security: string;
let privacy: string;

const tag = randomUUID().slice(0, 6);
const person = (name: string) => ({ upn: `${name}-${tag}@contoso.com`, objectId: randomUUID() });
const adele = person('adele');
const ben = person('ben');
/** Restricted (GDPR Art. 18) before any alert data request runs. */
const carl = person('carl');
const dora = person('dora');

/** Lists package index rows only (no key is needed for that). */
const packages = new PackageStore(new SubjectKeyStore(), new ExpiryIndex(), () => new Date());

const api = (path: string) => `/api/tenants/${tenantId}${path}`;

interface Sent {
  category: RecordCategory;
  recordId: string;
  subject: { upn: string; objectId: string };
  deviceName?: string;
  data?: Record<string, unknown>;
}

const alertData = (subject: { upn: string }, title: string) => ({
  severity: 'high',
  title,
  category: 'CredentialAccess',
  mitreTechniques: ['T1003'],
  description: `Suspicious sign-in by ${subject.upn}`,
  relatedUser: { userPrincipalName: subject.upn, managerUpn: `boss-${tag}@contoso.com` },
  alertCreationTime: '2025-01-02T03:04:05Z',
});

const RECORDS: Sent[] = [
  // Extraction: ADELE-PC and BEN-LAPTOP are named (GHOST-PC too, which reported nothing), OTHER-PC is not.
  { category: 'alert', recordId: 'a1', subject: adele, deviceName: 'ADELE-PC' },
  { category: 'device', recordId: 'adele-device', subject: adele, deviceName: 'ADELE-PC' },
  { category: 'alert', recordId: 'c1', subject: carl, deviceName: 'ADELE-PC' },
  { category: 'alert', recordId: 'b1', subject: ben, deviceName: 'BEN-LAPTOP' },
  { category: 'alert', recordId: 'o1', subject: ben, deviceName: 'OTHER-PC' },
  // Deletion: DEL-PC is named, KEEP-PC is not.
  { category: 'alert', recordId: 'x1', subject: dora, deviceName: 'DEL-PC' },
  { category: 'alert', recordId: 'x2', subject: ben, deviceName: 'DEL-PC' },
  { category: 'alert', recordId: 'x3', subject: carl, deviceName: 'DEL-PC' },
  { category: 'device', recordId: 'dora-device', subject: dora, deviceName: 'DEL-PC' },
  { category: 'directory', recordId: 'dora-directory', subject: dora },
  { category: 'alert', recordId: 'k1', subject: dora, deviceName: 'KEEP-PC' },
];

beforeAll(async () => {
  host = await startTestHost();
  tenantId = await host.provisionTenant('DE');
  tenant = await host.services.directory.resolve(tenantId);
  security = await host.issuer.token({ tenantId, roles: ['Security.Admin'], upn: `soc-${tag}@contoso.com` });
  privacy = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'], upn: `dpo-${tag}@contoso.com` });

  const queue = await host.services.storage.global.queue(QUEUES.personalDataEvents);
  const occurredAt = new Date().toISOString();
  for (const record of RECORDS) {
    await sendJson(queue, {
      type: 'record.upserted',
      tenantId,
      eventId: `e-${record.recordId}-${tag}`,
      category: record.category,
      recordId: record.recordId,
      subject: record.subject,
      occurredAt,
      data:
        record.data ??
        (record.category === 'alert'
          ? alertData(record.subject, `Alert ${record.recordId}`)
          : { note: record.recordId }),
      ...(record.deviceName ? { deviceName: record.deviceName } : {}),
    });
  }
  await until(
    async () => {
      let total = 0;
      for (const subject of [adele, ben, carl, dora]) {
        const { subjectKey } = await host.services.records.subjectOf(tenant, subject);
        total += Object.values(await host.services.records.countByCategory(tenant, subjectKey)).reduce(
          (a, b) => a + (b ?? 0),
          0,
        );
      }
      return total;
    },
    (total) => total === RECORDS.length,
    'the records to be ingested',
  );
  await dsr({ type: 'restrict', regulation: 'GDPR', subject: carl });
}, 90_000);
afterAll(() => host.stop());

/** A data subject request taken in, reviewed and (unless `review` only) approved and completed. */
async function dsr(body: Record<string, unknown>, reviewOnly = false) {
  const created = await host.call('POST', api('/dsr'), { token: privacy, body });
  expect(created.status).toBe(202);
  const read = () => host.call('GET', api(`/dsr/${created.body.id}`), { token: privacy });
  const reviewed = await until(read, (r) => r.body.status === 'awaitingReview', 'review');
  if (reviewOnly) return reviewed.body;
  await host.call('POST', api(`/dsr/${created.body.id}/approve`), { token: privacy });
  return (await until(read, (r) => r.body.status === 'completed', 'completion')).body;
}

const read = (id: string) => host.call('GET', api(`/alert-data-requests/${id}`), { token: security });
const finished = (id: string) =>
  until(
    () => read(id),
    (r) => r.body.status === 'completed' || r.body.status === 'failed',
    `alert data request ${id} to finish`,
  );

const deliver = (requestId: string, dequeueCount = 1) =>
  invokeQueue(
    alertDataWork,
    host.services,
    { tenantId, requestId },
    invocationContext('alertDataWork', { dequeueCount }),
  );

async function auditOf(requestId: string) {
  const events = (await host.call('GET', api('/audit?top=200'), { token: privacy })).body.value as {
    action: string;
    target: { type: string; id: string };
    actor: { type: string; id: string };
    correlationId: string;
    details: Record<string, unknown>;
  }[];
  return events.filter((event) => event.target.id === requestId);
}

async function alertIdsOf(subject: { upn: string; objectId: string }, category: RecordCategory = 'alert') {
  const { subjectKey } = await host.services.records.subjectOf(tenant, subject);
  const ids: string[] = [];
  for await (const record of host.services.records.list(tenant, subjectKey, category))
    ids.push(record.recordId);
  return ids.sort();
}

async function anonymousRows() {
  const table = await tenant.account.table(TABLES.records);
  const rows: { rowKey?: string; category: string; anonymised: string }[] = [];
  for await (const row of table.listEntities<{ category: string; anonymised: string }>({
    queryOptions: { filter: odata`PartitionKey eq ${anonymousPartition(tenantId)}` },
  })) {
    rows.push(row);
  }
  return rows;
}

describe('an extraction', () => {
  it('packages exactly the named devices’ alerts behind an audited link, once however often it is delivered', async () => {
    const created = await host.call('POST', api('/alert-data-requests'), {
      token: security,
      body: {
        action: 'extract',
        deviceNames: ['ADELE-PC', 'ben-laptop', 'GHOST-PC', 'adele-pc'],
        reason: 'Incident 4711: lateral movement',
      },
    });
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    expect(created.headers.get('location')).toBe(`/api/tenants/${tenantId}/alert-data-requests/${id}`);
    // Duplicated deliveries race the host's own: one package stays, and one completion.
    await Promise.all([deliver(id), deliver(id)]);
    const done = (await finished(id)).body;
    expect(done).toMatchObject({
      id,
      action: 'extract',
      status: 'completed',
      // The same device named twice (names are not case-sensitive) is one device.
      deviceNames: ['ADELE-PC', 'ben-laptop', 'GHOST-PC'],
      deviceCount: 3,
      reason: 'Incident 4711: lateral movement',
      requestedBy: { type: 'user', upn: `soc-${tag}@contoso.com` },
      result: {
        alerts: 2,
        restrictedAlertsLeftOut: 1,
        devicesWithoutAlerts: 1,
        package: { sha256: expect.any(String), sizeBytes: expect.any(Number) },
      },
    });
    expect(done.history.map((h: { to: string }) => h.to)).toEqual(['received', 'inProgress', 'completed']);
    expect(done.package).toBeUndefined();
    expect(done.progress).toBeUndefined();
    const owner = alertPackageOwner(id);
    await until(
      () => packages.list(tenant, owner),
      (packages) => packages.length === 1,
      'the losing attempts’ packages to be removed',
    );

    const link = await host.call('GET', api(`/alert-data-requests/${id}/export`), { token: security });
    expect(link.status).toBe(200);
    expect(Object.keys(link.body).sort()).toEqual(['expiresAt', 'sha256', 'sizeBytes', 'url']);
    expect(link.body).toMatchObject({
      sha256: done.result.package.sha256,
      sizeBytes: done.result.package.sizeBytes,
    });
    expect(link.body.url.startsWith(`${host.baseUrl}/api/package-downloads/`)).toBe(true);
    const response = await fetch(link.body.url);
    expect(response.status).toBe(200);
    const zip = Buffer.from(await response.arrayBuffer());
    expect(createHash('sha256').update(zip).digest('hex')).toBe(link.body.sha256);
    expect(zip.length).toBe(link.body.sizeBytes);
    const files = await readZip(zip);
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    expect(manifest.request).toEqual({
      id,
      tenantId,
      type: 'alertExtract',
      receivedAt: done.receivedAt,
      deviceNames: ['ADELE-PC', 'ben-laptop', 'GHOST-PC'],
    });
    expect(manifest.counts).toMatchObject({ alert: 2 });
    expect([...files.keys()].sort()).toEqual(['alert.json', 'audit-events.json', 'manifest.json']);
    for (const file of manifest.files) {
      expect(createHash('sha256').update(files.get(file.name)!).digest('hex')).toBe(file.sha256);
    }
    const alerts = JSON.parse(files.get('alert.json')!.toString('utf8'));
    expect(alerts.map((a: { recordId: string }) => a.recordId).sort()).toEqual(['a1', 'b1']);
    // Security data for the tenant's own security admin: nobody's identifiers are redacted.
    const a1 = alerts.find((a: { recordId: string }) => a.recordId === 'a1');
    expect(a1).toMatchObject({
      deviceName: 'ADELE-PC',
      subject: { upn: adele.upn },
      data: alertData(adele, 'Alert a1'),
    });

    const trail = await auditOf(id);
    const issued = trail.filter((e) => e.action === 'export.linkIssued');
    const downloaded = trail.filter((e) => e.action === 'export.downloaded');
    expect(issued).toEqual([
      expect.objectContaining({
        target: { type: 'alertDataRequest', id },
        details: { linkId: expect.any(String), expiresAt: link.body.expiresAt, sha256: link.body.sha256 },
      }),
    ]);
    expect(downloaded).toEqual([
      expect.objectContaining({
        actor: { type: 'app', id: 'package-download-link' },
        target: { type: 'alertDataRequest', id },
        correlationId: issued[0]!.details.linkId,
      }),
    ]);
    expect(
      trail
        .filter((e) => e.action.startsWith('alertDataRequest.'))
        .map((e) => e.action)
        .sort(),
    ).toEqual(['alertDataRequest.completed', 'alertDataRequest.created', 'alertDataRequest.started']);
    expect((await host.call('GET', api('/audit/verify'), { token: privacy })).body).toMatchObject({
      valid: true,
    });

    // Redelivered after completion: nothing changes, one package stays.
    await deliver(id);
    await deliver(id, 5);
    expect((await read(id)).body).toEqual(done);
    expect(await packages.list(tenant, owner)).toHaveLength(1);
    expect((await auditOf(id)).filter((e) => e.action === 'alertDataRequest.completed')).toHaveLength(1);

    // The package's own data key is no subject's: the operator's record browser and discovery see no
    // records of it, and the subjects' records are as they were.
    expect(await alertIdsOf(adele)).toEqual(['a1']);
    expect(await alertIdsOf(carl)).toEqual(['c1', 'x3']);
    expect(await host.services.records.countByCategory(tenant, owner)).toEqual({});
  }, 90_000);
});

describe('a deletion', () => {
  it('anonymises the named device’s alerts as the 180-day rule does, and nothing else', async () => {
    const before = (await anonymousRows()).length;
    const created = await host.call('POST', api('/alert-data-requests'), {
      token: security,
      body: { action: 'delete', deviceNames: ['DEL-PC'], reason: 'Device was shared; retire its alerts' },
    });
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    const done = (await finished(id)).body;
    expect(done).toMatchObject({
      status: 'completed',
      deviceCount: 1,
      result: { alerts: 2, restrictedAlertsLeftOut: 1, devicesWithoutAlerts: 0 },
    });
    expect(done.result.package).toBeUndefined();

    // Gone from their subjects: requests no longer find them; other categories and devices untouched.
    expect(await alertIdsOf(dora)).toEqual(['k1']);
    expect(await alertIdsOf(dora, 'device')).toEqual(['dora-device']);
    expect(await alertIdsOf(dora, 'directory')).toEqual(['dora-directory']);
    expect(await alertIdsOf(ben)).toEqual(['b1', 'o1']);
    const discovered = await dsr({ type: 'access', regulation: 'GDPR', subject: dora }, true);
    expect(discovered.discovery.counts).toMatchObject({ alert: 1, device: 1, directory: 1 });
    await host.call('POST', api(`/dsr/${discovered.id}/cancel`), { token: privacy });

    // The restricted subject's alert is left exactly as it was.
    const { subjectKey: carlKey } = await host.services.records.subjectOf(tenant, carl);
    const carlAlerts = [];
    for await (const record of host.services.records.list(tenant, carlKey, 'alert')) carlAlerts.push(record);
    expect(carlAlerts.find((r) => r.recordId === 'x3')).toMatchObject({
      deviceName: 'DEL-PC',
      data: alertData(carl, 'Alert x3'),
    });

    // What remains: anonymous rows with allow-listed fields only, naming no one.
    const rows = await anonymousRows();
    expect(rows).toHaveLength(before + 2);
    const allowed = new Set(ANONYMOUS_ALERT_FIELDS.map((field) => field.name));
    for (const row of rows) {
      expect(row.category).toBe('alert');
      const kept = JSON.parse(row.anonymised) as Record<string, unknown>;
      for (const field of Object.keys(kept)) expect(allowed.has(field)).toBe(true);
      expect(row.anonymised).not.toMatch(/contoso|DEL-PC|dora|ben/i);
    }
    expect(rows.map((row) => JSON.parse(row.anonymised))).toEqual(
      expect.arrayContaining([
        {
          severity: 'high',
          title: 'Alert x1',
          category: 'CredentialAccess',
          mitreTechniques: ['T1003'],
          alertCreationTime: '2025-01-02T03:04:05Z',
        },
      ]),
    );

    // No package to link to.
    const link = await host.call('GET', api(`/alert-data-requests/${id}/export`), { token: security });
    expect({ status: link.status, code: link.body.error.code }).toEqual({
      status: 409,
      code: 'InvalidState',
    });

    // Redelivered: the same counts, the same rows.
    await deliver(id);
    expect((await read(id)).body).toEqual(done);
    expect(await anonymousRows()).toHaveLength(before + 2);
    expect((await auditOf(id)).map((e) => e.action).sort()).toEqual([
      'alertDataRequest.completed',
      'alertDataRequest.created',
      'alertDataRequest.started',
    ]);
  }, 90_000);
});

describe('taking in', () => {
  const post = (body: unknown, options: { token?: string; headers?: Record<string, string> } = {}) =>
    host.call('POST', api('/alert-data-requests'), { token: options.token ?? security, body, ...options });
  const valid = { action: 'extract', deviceNames: ['NOPE-PC'], reason: 'test' };

  it('refuses what is not a request, and callers without the role or tenant', async () => {
    const invalid = [
      { ...valid, deviceNames: [] },
      { ...valid, deviceNames: Array.from({ length: 101 }, (_, i) => `PC-${i}`) },
      { ...valid, deviceNames: [''] },
      { ...valid, deviceNames: ['x'.repeat(254)] },
      { ...valid, action: 'purge' },
      { action: 'extract', deviceNames: ['PC'] },
      { ...valid, reason: '   ' },
      { ...valid, reason: 'x'.repeat(1001) },
      { ...valid, extra: true },
    ];
    for (const body of invalid) {
      const answer = await post(body);
      expect({ status: answer.status, code: answer.body.error.code }).toEqual({
        status: 400,
        code: 'ValidationFailed',
      });
    }
    expect(
      (await post({ ...valid, deviceNames: Array.from({ length: 100 }, (_, i) => `PC-${i}`) })).status,
    ).toBe(202);

    expect((await post(valid, { token: privacy })).status).toBe(403);
    expect((await host.call('GET', api('/alert-data-requests'), { token: privacy })).status).toBe(403);

    const mine = (await post(valid)).body.id as string;
    const otherTenant = await host.provisionTenant('DE');
    const otherSecurity = await host.issuer.token({ tenantId: otherTenant, roles: ['Security.Admin'] });
    const elsewhere = await host.call('GET', `/api/tenants/${otherTenant}/alert-data-requests/${mine}`, {
      token: otherSecurity,
    });
    expect({ status: elsewhere.status, code: elsewhere.body.error.code }).toEqual({
      status: 404,
      code: 'NotFound',
    });
    expect(
      (await host.call('GET', api(`/alert-data-requests/${mine}`), { token: otherSecurity })).status,
    ).toBe(403);
  });

  it('returns the same request for a repeated Idempotency-Key, and lists requests newest first', async () => {
    const key = randomUUID();
    const first = await post(valid, { headers: { 'Idempotency-Key': key } });
    const again = await post(valid, { headers: { 'Idempotency-Key': key } });
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    const otherBody = await post({ ...valid, reason: 'another' }, { headers: { 'Idempotency-Key': key } });
    expect({ status: otherBody.status, code: otherBody.body.error.code }).toEqual({
      status: 409,
      code: 'Conflict',
    });
    const page = await host.call('GET', api('/alert-data-requests?top=1'), { token: security });
    expect(page.status).toBe(200);
    expect(page.body.value).toHaveLength(1);
    expect(page.body.nextLink).toEqual(expect.stringContaining('skipToken='));
    const next = await host.call('GET', page.body.nextLink, { token: security });
    expect(next.body.value[0].id).not.toBe(page.body.value[0].id);
    const created = (await auditOf(first.body.id)).filter((e) => e.action === 'alertDataRequest.created');
    expect(created).toHaveLength(1);
    expect(created[0]!.details).toMatchObject({ action: 'extract', deviceCount: 1, reason: 'test' });
  });
});
