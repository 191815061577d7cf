// The privacy report (SPEC §9) on the local host, every figure proven on seeded data whose answer is known:
// requests by status, type and regulation, overdue and due soon, median and mean days to complete, the CCPA
// metrics per type with denial reasons, records per category (counters that follow writes, redeliveries,
// erasure and purges), purges due in 7 and 30 days, restricted subjects, geography and migration; and a
// cost that does not grow with the number of records.
import { randomUUID } from 'node:crypto';

import type { PipelinePolicy } from '@azure/core-rest-pipeline';

import { createServices } from '../../shared/composition';
import type { DataSubjectRequest } from '../../shared/requests/dataSubjectRequest';
import { newRequestId, RequestRepository } from '../../shared/requests/requestRepository';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import { startTestHost, type TestHost } from '../support/testHost';
import { provisionedTenant, testConfig } from '../support/testStorage';
import { until } from '../support/until';

const DAY = 86_400_000;
let host: TestHost;

beforeAll(async () => {
  host = await startTestHost();
});
afterAll(() => host.stop());

const at = (now: number, days: number) => new Date(now + days * DAY).toISOString();

/** A request as stored, received `received` days from now (negative: ago). */
function seeded(
  tenantId: string,
  now: number,
  fields: {
    type: DataSubjectRequest['type'];
    regulation: DataSubjectRequest['regulation'];
    received: number;
    status: DataSubjectRequest['status'];
    due?: number;
    completed?: number;
    declined?: string;
    result?: Record<string, unknown>;
  },
): DataSubjectRequest {
  const receivedAt = at(now, fields.received);
  const actor = { type: 'user' as const, id: 'dpo' };
  const history: DataSubjectRequest['history'] = [
    { action: 'create', to: 'received', at: receivedAt, actor },
  ];
  if (fields.completed !== undefined) {
    history.push({
      action: 'complete',
      from: 'inProgress',
      to: 'completed',
      at: at(now, fields.completed),
      actor,
    });
  }
  if (fields.declined) {
    history.push({
      action: 'decline',
      from: 'awaitingReview',
      to: 'declined',
      at: at(now, fields.received + 1),
      actor,
      reason: fields.declined,
    });
  }
  return {
    id: newRequestId(new Date(receivedAt)),
    tenantId,
    type: fields.type,
    regulation: fields.regulation,
    subject: { upn: `someone-${randomUUID().slice(0, 6)}@contoso.com` },
    dataSubjectType: 'customer',
    ...(fields.type === 'rectify'
      ? { rectifications: [{ category: 'directory', field: 'jobTitle', value: 'CTO' }] }
      : {}),
    status: fields.status,
    receivedAt,
    dueAt: at(now, fields.due ?? fields.received + 30),
    history,
    createdBy: actor,
    ...(fields.declined ? { decision: { reason: fields.declined } } : {}),
    ...(fields.result ? { result: fields.result } : {}),
  };
}

const report = (tenantId: string, token: string, query = '') =>
  host.call('GET', `/api/tenants/${tenantId}/privacy-report${query}`, { token });

describe('privacy report: requests', () => {
  let tenant: TenantScope;
  let reader: string;
  let now: number;

  beforeAll(async () => {
    tenant = await provisionedTenant(host.services);
    reader = await host.issuer.token({ tenantId: tenant.tenantId, roles: ['Privacy.Reader'] });
    now = Date.now();
    const id = tenant.tenantId;
    const repository = new RequestRepository();
    const requests = [
      // Completed in 3, 10, 20 and 1 days: median 6.5, mean 8.5.
      seeded(id, now, {
        type: 'access',
        regulation: 'GDPR',
        received: -100,
        completed: -97,
        status: 'completed',
      }),
      seeded(id, now, {
        type: 'export',
        regulation: 'GDPR',
        received: -50,
        completed: -40,
        status: 'completed',
      }),
      seeded(id, now, {
        type: 'delete',
        regulation: 'CCPA',
        received: -60,
        completed: -40,
        status: 'completed',
      }),
      seeded(id, now, {
        type: 'rectify',
        regulation: 'CCPA',
        received: -30,
        completed: -29,
        status: 'completed',
        result: {
          rectifications: [
            { category: 'directory', field: 'jobTitle', value: 'CTO', outcome: 'applied' },
            { category: 'device', field: 'model', value: 'X', outcome: 'DeviceReported' },
          ],
        },
      }),
      seeded(id, now, {
        type: 'delete',
        regulation: 'CCPA',
        received: -20,
        status: 'declined',
        declined: 'Identity could not be verified',
      }),
      seeded(id, now, {
        type: 'delete',
        regulation: 'CCPA',
        received: -15,
        status: 'declined',
        declined: 'Identity could not be verified',
      }),
      seeded(id, now, {
        type: 'access',
        regulation: 'CCPA',
        received: -10,
        status: 'declined',
        declined: 'Manifestly unfounded',
      }),
      // Open: one overdue, one due in 3 days, one long ago (outside the period, still overdue).
      seeded(id, now, {
        type: 'access',
        regulation: 'GDPR',
        received: -40,
        due: -5,
        status: 'awaitingReview',
      }),
      seeded(id, now, { type: 'export', regulation: 'CCPA', received: -40, due: 3, status: 'inProgress' }),
      seeded(id, now, { type: 'delete', regulation: 'GDPR', received: -400, due: -370, status: 'received' }),
      seeded(id, now, { type: 'access', regulation: 'GDPR', received: -200, status: 'cancelled' }),
    ];
    for (const request of requests) await repository.insert(tenant, request, []);
  });

  it('counts the last 12 months by default, each figure as seeded', async () => {
    const response = await report(tenant.tenantId, reader);
    expect(response.status).toBe(200);
    const { requests, ccpa, period } = response.body;
    expect(Date.parse(period.to) - Date.parse(period.from)).toBeGreaterThanOrEqual(365 * DAY);
    expect(requests.received).toBe(10);
    expect(requests.byStatus).toEqual({
      received: 0,
      discovering: 0,
      awaitingReview: 1,
      inProgress: 1,
      completed: 4,
      declined: 3,
      cancelled: 1,
      failed: 0,
    });
    expect(requests.byType).toEqual({
      access: 4,
      export: 2,
      delete: 3,
      rectify: 1,
      restrict: 0,
      unrestrict: 0,
    });
    expect(requests.byRegulation).toEqual({ GDPR: 4, CCPA: 6 });
    expect(requests.byTypeAndStatus.delete).toMatchObject({ completed: 1, declined: 2, received: 0 });
    expect(requests.byTypeAndStatus.access).toMatchObject({
      completed: 1,
      declined: 1,
      awaitingReview: 1,
      cancelled: 1,
    });
    expect(requests.byTypeAndStatus.export).toMatchObject({ completed: 1, inProgress: 1 });
    expect(requests.completion).toEqual({ completed: 4, medianDays: 6.5, meanDays: 8.5 });
    // Deadlines concern every open request, whenever received.
    expect(requests.overdue.count).toBe(2);
    expect(requests.overdue.requests.map((r: { type: string }) => r.type)).toEqual(['delete', 'access']);
    expect(requests.dueSoon.count).toBe(1);
    expect(requests.dueSoon.requests[0]).toMatchObject({ type: 'export', status: 'inProgress', daysLeft: 3 });

    expect(ccpa.delete).toEqual({
      received: 3,
      compliedInWhole: 1,
      compliedInPart: 0,
      denied: 2,
      denialReasons: [{ reason: 'Identity could not be verified', count: 2 }],
      pending: 0,
      cancelled: 0,
    });
    expect(ccpa.rectify).toMatchObject({ received: 1, compliedInWhole: 0, compliedInPart: 1, denied: 0 });
    expect(ccpa.access).toMatchObject({
      received: 1,
      denied: 1,
      denialReasons: [{ reason: 'Manifestly unfounded', count: 1 }],
    });
    expect(ccpa.export).toMatchObject({ received: 1, pending: 1, compliedInWhole: 0 });
    expect(ccpa.restrict).toMatchObject({ received: 0 });
  });

  it('narrows to from/to', async () => {
    const from = encodeURIComponent(at(now, -55));
    const response = await report(tenant.tenantId, reader, `?from=${from}`);
    expect(response.status).toBe(200);
    const { requests } = response.body;
    // Received 50, 30, 20, 15, 10, 40 and 40 days ago.
    expect(requests.received).toBe(7);
    expect(requests.completion).toEqual({ completed: 2, medianDays: 5.5, meanDays: 5.5 });
    const window = await report(
      tenant.tenantId,
      reader,
      `?from=${encodeURIComponent(at(now, -105))}&to=${encodeURIComponent(at(now, -45))}`,
    );
    // 100, 50 and 60 days ago.
    expect(window.body.requests.received).toBe(3);
    expect(window.body.ccpa.delete.received).toBe(1);
  });

  it('is for Privacy.Admin and Privacy.Reader, and refuses a bad period', async () => {
    const admin = await host.issuer.token({ tenantId: tenant.tenantId, roles: ['Privacy.Admin'] });
    expect((await report(tenant.tenantId, admin)).status).toBe(200);
    const security = await host.issuer.token({ tenantId: tenant.tenantId, roles: ['Security.Admin'] });
    expect((await report(tenant.tenantId, security)).status).toBe(403);
    for (const query of [
      `?from=${encodeURIComponent(at(now, 0))}&to=${encodeURIComponent(at(now, -1))}`,
      '?from=yesterday',
      '?top=5',
    ]) {
      const refused = await report(tenant.tenantId, reader, query);
      expect({ query, status: refused.status, code: refused.body.error.code }).toEqual({
        query,
        status: 400,
        code: 'ValidationFailed',
      });
    }
  });
});

describe('privacy report: records, purges, restrictions, residency', () => {
  it('counts records per category through writes, redeliveries, erasure and purges, and forecasts purges', async () => {
    const tenantId = await host.provisionTenant('DE');
    const tenant = await host.services.directory.resolve(tenantId);
    const admin = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'] });
    const now = Date.now();
    const alice = { objectId: randomUUID(), upn: `alice-${randomUUID().slice(0, 6)}@contoso.com` };
    const bob = { objectId: randomUUID(), upn: `bob-${randomUUID().slice(0, 6)}@contoso.com` };
    const upsert = (subject: typeof alice, category: string, recordId: string, days: number) =>
      host.services.records.upsert(tenant, {
        category: category as 'device',
        recordId,
        subject,
        occurredAt: at(now, days),
        data: { note: `${subject.upn} ${category}` },
      });
    await upsert(alice, 'device', 'd1', -1);
    await upsert(alice, 'device', 'd2', -1);
    await upsert(alice, 'alert', 'a1', -175); // anonymised in 5 days
    await upsert(alice, 'systemLog', 's1', -25); // deleted in 5 days
    await upsert(alice, 'usage', 'u1', -10); // deleted in 20 days
    await upsert(alice, 'directory', 'dir1', -2);
    await host.services.records.softDeleteRecord(tenant, 'directory', 'dir1', at(now, -0.5)); // purged in ~30
    await upsert(bob, 'device', 'd3', -1);
    await upsert(bob, 'alert', 'a2', -1);
    // A redelivery and a newer version change no count.
    await upsert(alice, 'device', 'd1', -1);
    await upsert(alice, 'device', 'd1', -0.1);

    const first = (await report(tenantId, admin)).body;
    expect(first.records).toEqual({
      byCategory: {
        device: 3,
        deviceSecurity: 0,
        deviceHealth: 0,
        deviceDiagnostics: 0,
        directory: 1,
        policy: 0,
        alert: 2,
        windowsDiagnostic: 0,
        usage: 1,
        systemLog: 1,
        adminContact: 0,
        termsAcceptance: 0,
      },
      total: 8,
      source: 'counters',
    });
    expect(first.purgeForecast.next7Days).toEqual({
      records: { delete: 1, anonymise: 1, purgeDeleted: 0 },
      anonymisedAlerts: 0,
      packages: 0,
      poisonedEvents: 0,
      total: 2,
    });
    expect(first.purgeForecast.next30Days).toMatchObject({
      records: { delete: 2, anonymise: 1, purgeDeleted: 1 },
      total: 4,
    });
    expect(first.restrictedSubjects).toBe(0);
    expect(first.residency).toEqual({ geography: 'EU', countryCode: 'DE', migration: null });

    // Bob restricted: counted; then Bob erased by a request (which lifts the restriction): his records go.
    const bobKey = (await host.services.records.subjectOf(tenant, bob)).subjectKey;
    await host.services.restrictions.restrict(tenant, {
      subjectKey: bobKey,
      subject: bob,
      requestId: 'test',
      restrictedAt: new Date().toISOString(),
    });
    expect((await report(tenantId, admin)).body.restrictedSubjects).toBe(1);
    const erase = await host.call('POST', `/api/tenants/${tenantId}/dsr`, {
      token: admin,
      body: { type: 'delete', regulation: 'GDPR', subject: { objectId: bob.objectId } },
    });
    const status = () => host.call('GET', `/api/tenants/${tenantId}/dsr/${erase.body.id}`, { token: admin });
    await until(status, (r) => r.body.status === 'awaitingReview', 'review');
    await host.call('POST', `/api/tenants/${tenantId}/dsr/${erase.body.id}/approve`, { token: admin });
    await until(status, (r) => r.body.status === 'completed', 'erasure');
    const erased = (await report(tenantId, admin)).body;
    expect(erased.records.byCategory).toMatchObject({ device: 2, alert: 1 });
    expect(erased.records.total).toBe(6);
    expect(erased.restrictedSubjects).toBe(0);
    expect(erased.requests.byStatus.completed).toBe(1);

    // The purge 31 days on: the system log, the usage record and the soft-deleted directory record go, the
    // alert is anonymised (no longer a record of anyone).
    const later = new Date(now + 31 * DAY);
    const purge = await createServices(testConfig(), { clock: () => later }).retention.purgeTenant({
      tenantId,
      day: later.toISOString().slice(0, 10),
    });
    expect(purge).toMatchObject({ anonymised: 1 });
    const purged = (await report(tenantId, admin)).body;
    expect(purged.records.byCategory).toMatchObject({
      device: 2,
      alert: 0,
      systemLog: 0,
      usage: 0,
      directory: 0,
    });
    expect(purged.records.total).toBe(2);
  });

  it('reads as many storage rows for a tenant of 120 records as for one of 4', async () => {
    let tableRequests = 0;
    const counting: PipelinePolicy = {
      name: 'countTableRequests',
      sendRequest: (request, next) => {
        tableRequests++;
        return next(request);
      },
    };
    const services = createServices(testConfig(), {
      storage: { tablePolicies: [{ policy: counting, position: 'perCall' }] },
    });
    const costOf = async (records: number) => {
      const tenant = await provisionedTenant(services);
      for (let i = 0; i < records; i++) {
        await services.records.upsert(tenant, {
          category: i % 2 ? 'device' : 'policy',
          recordId: `r${i}`,
          subject: { objectId: randomUUID() },
          occurredAt: new Date().toISOString(),
          data: { n: i },
        });
      }
      await services.privacyReports.report(tenant, {}); // the first call of a client also makes sure of its table
      tableRequests = 0;
      const figures = await services.privacyReports.report(tenant, {});
      expect(figures.records.total).toBe(records);
      return tableRequests;
    };
    const small = await costOf(4);
    const large = await costOf(120);
    expect(large).toBe(small);
  }, 60_000);
});
