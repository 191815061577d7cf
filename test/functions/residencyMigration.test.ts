// Data residency end to end (SPEC §8): a Swiss tenant provisioned while CH was closed lives in EU; once CH
// opens it is eligible, a dry run gives the plan, and the move runs over HTTP and the residency-work queue
// to completion: its manifest is in the audit log, the chain verifies, the EU account holds nothing of it
// (listed through the raw SDK), its export link still downloads and new requests work in CH. Writes during
// a move wait (423 over HTTP; queue events come back after the move and land in CH).
import { randomUUID } from 'node:crypto';

import { createServices, type Services } from '../../shared/composition';
import { QUEUES } from '../../shared/storage/names';
import { sendJson } from '../../shared/storage/queueMessages';
import { tenantFootprint } from '../support/tenantFootprint';
import { startTestHost, type TestHost } from '../support/testHost';
import { testConfig } from '../support/testStorage';
import { until as untilWithin } from '../support/until';

const until = <T>(read: () => Promise<T>, done: (value: T) => boolean, what: string) =>
  untilWithin(read, done, what, 40_000);

const FAST_FENCE = { RESIDENCY_FENCE_SECONDS: '0.2', RESIDENCY_RETRY_AFTER_SECONDS: '1' };

let host: TestHost;
beforeAll(async () => {
  host = await startTestHost({ env: FAST_FENCE, migrationSliceMs: 300 });
});
afterAll(() => host.stop());

/** Provisions a tenant of `country` on services whose configuration has CH closed: it lands in EU. */
async function provisionWhileChClosed(country = 'CH'): Promise<string> {
  const closed: Services = createServices(testConfig(FAST_FENCE, ['STORAGE_CH']));
  const tenantId = randomUUID();
  await closed.events.apply({
    type: 'tenant.provisioned',
    tenantId,
    eventId: `provision-${tenantId}`,
    countryCode: country,
    displayName: 'Zürich AG',
  });
  return tenantId;
}

function recordEvent(tenantId: string, subject: { upn: string; objectId: string }, i: number) {
  return {
    type: 'record.upserted',
    tenantId,
    eventId: `e-${tenantId}-${i}`,
    category: (['directory', 'device', 'systemLog', 'alert'] as const)[i % 4],
    recordId: `rec-${i}`,
    subject,
    occurredAt: new Date().toISOString(),
    data: { note: `record ${i}` },
    deviceName: `PC-${i % 3}`,
  };
}

async function seed(tenantId: string, admin: string, subjects: number, perSubject: number) {
  const queue = await host.services.storage.global.queue(QUEUES.personalDataEvents);
  const people = Array.from({ length: subjects }, (_, s) => ({
    upn: `person${s}-${randomUUID().slice(0, 6)}@zurich.ch`,
    objectId: randomUUID(),
  }));
  let n = 0;
  for (const person of people) {
    for (let i = 0; i < perSubject; i++) await sendJson(queue, recordEvent(tenantId, person, n++));
  }
  const tenant = await host.services.directory.resolve(tenantId);
  for (const person of people) {
    await until(
      async () =>
        host.services.records.countByCategory(
          tenant,
          (await host.services.records.subjectOf(tenant, person)).subjectKey,
        ),
      (counts) => Object.values(counts).reduce((a, b) => a + (b ?? 0), 0) === perSubject,
      'the records to be ingested',
    );
  }
  // An export with its package (a blob) and its link.
  const created = await host.call('POST', `/api/tenants/${tenantId}/dsr`, {
    token: admin,
    body: { type: 'export', regulation: 'GDPR', subject: people[0] },
    headers: { 'idempotency-key': `export-${tenantId}` },
  });
  expect(created.status).toBe(202);
  await requestStatus(tenantId, admin, created.body.id, 'awaitingReview');
  await host.call('POST', `/api/tenants/${tenantId}/dsr/${created.body.id}/approve`, { token: admin });
  await requestStatus(tenantId, admin, created.body.id, 'completed');
  return { people, exportId: created.body.id as string };
}

const requestStatus = (tenantId: string, token: string, id: string, status: string) =>
  until(
    async () => (await host.call('GET', `/api/tenants/${tenantId}/dsr/${id}`, { token })).body,
    (body) => body.status === status,
    `request ${id} to be ${status}`,
  );

const migrationDone = (tenantId: string, token: string) =>
  until(
    async () => (await host.call('GET', `/api/tenants/${tenantId}/residency/migration`, { token })).body,
    (body) => body.status === 'completed' || (body.status === 'failed' && body.rolledBack),
    'the migration to finish',
  );

describe('a Swiss tenant moves from EU to CH once CH opens', () => {
  it('is not eligible while CH is closed, then moves, verified, with nothing left in EU', async () => {
    const tenantId = await provisionWhileChClosed();
    const admin = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'], upn: 'dpo@zurich.ch' });
    const reader = await host.issuer.token({ tenantId, roles: ['Privacy.Reader'] });
    expect((await host.services.directory.get(tenantId))?.geography).toBe('EU');

    const { exportId, people } = await seed(tenantId, admin, 3, 4);
    const before = await tenantFootprint('EU', tenantId);
    expect(before).toMatchObject({
      records: expect.any(Number),
      audit: expect.any(Number),
      'export-packages': 1,
    });

    const residency = await host.call('GET', `/api/tenants/${tenantId}/residency`, { token: reader });
    expect(residency.body).toMatchObject({
      geography: 'EU',
      countryCode: 'CH',
      bestGeography: 'CH',
      eligible: true,
      migration: null,
    });

    const plan = await host.call('POST', `/api/tenants/${tenantId}/residency/migration`, {
      token: admin,
      body: { dryRun: true },
    });
    expect(plan.status).toBe(200);
    expect(plan.body).toMatchObject({ from: 'EU', to: 'CH' });
    for (const [table, rows] of Object.entries(before)) {
      if (plan.body.tables[table]) expect(plan.body.tables[table].rows).toBe(rows);
    }
    expect(plan.body.containers['export-packages'].blobs).toBe(1);
    expect(plan.body.estimatedSeconds).toBeGreaterThan(0);
    // A dry run changes nothing.
    expect(await tenantFootprint('EU', tenantId)).toEqual(before);
    expect((await host.services.directory.get(tenantId))?.migration).toBeUndefined();

    const readerMove = await host.call('POST', `/api/tenants/${tenantId}/residency/migration`, {
      token: reader,
      body: {},
    });
    expect(readerMove.status).toBe(403);

    const moveKey = { 'Idempotency-Key': `move-${tenantId}` };
    const started = await host.call('POST', `/api/tenants/${tenantId}/residency/migration`, {
      token: admin,
      body: {},
      headers: moveKey,
    });
    expect(started.status).toBe(202);
    // The same key again during the move: 423 as every write then (the key holds; see below).
    const repeated = await host.call('POST', `/api/tenants/${tenantId}/residency/migration`, {
      token: admin,
      body: {},
      headers: moveKey,
    });
    expect(repeated.status).toBe(423);
    // Writes wait from here on: what the source holds now is what moves (the request's audit event included).
    const moving = await tenantFootprint('EU', tenantId);
    const privacyReport = async () =>
      (await host.call('GET', `/api/tenants/${tenantId}/privacy-report`, { token: reader })).body;
    const recordsBefore = (await privacyReport()).records;

    const done = await migrationDone(tenantId, reader);
    expect(done.status).toBe('completed');
    expect(done.switchedAt).toEqual(expect.any(String));
    for (const [table, rows] of Object.entries(moving)) {
      expect({ table, copied: done.progress.copied[table] }).toEqual({ table, copied: rows });
    }

    // The source account holds nothing of the tenant; the target holds what the source held.
    expect(await tenantFootprint('EU', tenantId)).toEqual({});
    const after = await tenantFootprint('CH', tenantId);
    // The move's own audit event adds to the audit table; everything else is as it was.
    expect({ ...after, audit: 0 }).toEqual({ ...moving, audit: 0 });
    expect(after.audit).toBeGreaterThan(moving.audit!);
    expect((await host.services.directory.get(tenantId))?.geography).toBe('CH');

    // The manifest: both sides equal for every table and container, the source empty, in the audit log.
    for (const side of Object.values(done.manifest.tables) as { source: unknown; target: unknown }[]) {
      expect(side.source).toEqual(side.target);
    }
    expect(Object.values(done.manifest.sourceRemaining)).toEqual(
      Object.values(done.manifest.sourceRemaining).map(() => 0),
    );
    const events = await host.call('GET', `/api/tenants/${tenantId}/audit?action=residency.migrated`, {
      token: reader,
    });
    expect(events.body.value).toHaveLength(1);
    expect(events.body.value[0].details.manifest).toEqual(done.manifest);
    expect(
      (await host.call('GET', `/api/tenants/${tenantId}/audit/verify`, { token: reader })).body,
    ).toMatchObject({ valid: true });

    // Where it is now: eligible no more, and another move is refused.
    const now = await host.call('GET', `/api/tenants/${tenantId}/residency`, { token: reader });
    expect(now.body).toMatchObject({ geography: 'CH', bestGeography: 'CH', eligible: false });
    // The privacy report (SPEC §9) names the geography and the move, and its counts moved with the tenant.
    const reported = await privacyReport();
    expect(reported.residency).toMatchObject({
      geography: 'CH',
      countryCode: 'CH',
      migration: { migrationId: started.body.migrationId, status: 'completed', from: 'EU', to: 'CH' },
    });
    expect(reported.records).toEqual(recordsBefore);
    expect(recordsBefore.total).toBeGreaterThan(0);
    // A retry with the first call's key, even now, answers that move (not NotEligible).
    const retried = await host.call('POST', `/api/tenants/${tenantId}/residency/migration`, {
      token: admin,
      body: {},
      headers: moveKey,
    });
    expect(retried.body).toMatchObject({ migrationId: started.body.migrationId, status: 'completed' });
    const again = await host.call('POST', `/api/tenants/${tenantId}/residency/migration`, {
      token: admin,
      body: { dryRun: true },
    });
    expect({ status: again.status, code: again.body.error.code }).toEqual({
      status: 409,
      code: 'NotEligible',
    });

    // The package moved with its keys: its link still downloads. New requests work in CH.
    const link = await host.call('GET', `/api/tenants/${tenantId}/dsr/${exportId}/export`, { token: admin });
    expect(link.status).toBe(200);
    const download = await fetch(link.body.url);
    expect(download.status).toBe(200);
    expect((await download.arrayBuffer()).byteLength).toBeGreaterThan(100);
    const access = await host.call('POST', `/api/tenants/${tenantId}/dsr`, {
      token: admin,
      body: { type: 'delete', regulation: 'GDPR', subject: { upn: 'nobody@zurich.ch' } },
    });
    expect(access.status).toBe(202);
    await requestStatus(tenantId, admin, access.body.id, 'awaitingReview');

    // Retention works on the moved rows (new ETags, same dates): 40 days on, the system logs are purged
    // by the entries that were made for them in EU, and the alerts anonymised.
    const later = new Date(Date.now() + 40 * 86_400_000);
    const purgeServices = createServices(testConfig(FAST_FENCE), { clock: () => later });
    const report = await purgeServices.retention.purgeTenant({
      tenantId,
      day: later.toISOString().slice(0, 10),
    });
    expect(report?.deleted.systemLog).toBe(3);
    const moved = await host.services.directory.resolve(tenantId);
    for (const person of people) {
      const counts = await host.services.records.countByCategory(
        moved,
        (await host.services.records.subjectOf(moved, person)).subjectKey,
      );
      expect(counts.systemLog ?? 0).toBe(0);
    }
    expect(await tenantFootprint('EU', tenantId)).toEqual({});
  }, 120_000);
});

describe('writes during a move wait, from every entry point', () => {
  it('answers 423 over HTTP and brings queue events back after the move, written in CH', async () => {
    const tenantId = await provisionWhileChClosed();
    const admin = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'] });
    const person = { upn: `late-${randomUUID().slice(0, 6)}@zurich.ch`, objectId: randomUUID() };
    // The flag held long enough to try things: a fence of 2 s makes the copy wait 4 s.
    const slow = createServices(testConfig({ ...FAST_FENCE, RESIDENCY_FENCE_SECONDS: '2' }));
    const tenant = await slow.directory.resolve(tenantId);
    const job = await slow.residency.start(tenant, { type: 'user', id: 'admin' }, 'test');
    expect(job.status).toBe('validating');

    const refused = await host.call('POST', `/api/tenants/${tenantId}/dsr`, {
      token: admin,
      body: { type: 'access', regulation: 'GDPR', subject: person },
    });
    expect(refused.status).toBe(423);
    expect(refused.body.error.code).toBe('TenantMigrating');
    expect(refused.headers.get('retry-after')).toBe('1');
    // Reads keep working.
    expect((await host.call('GET', `/api/tenants/${tenantId}/residency`, { token: admin })).status).toBe(200);
    expect((await host.call('GET', `/api/tenants/${tenantId}/dsr`, { token: admin })).status).toBe(200);

    // A record event for the tenant arrives during the move: it is not written to EU, and not lost.
    const queue = await host.services.storage.global.queue(QUEUES.personalDataEvents);
    await sendJson(queue, recordEvent(tenantId, person, 1));
    const done = await migrationDone(tenantId, admin);
    expect(done.status).toBe('completed');
    const moved = await host.services.directory.resolve(tenantId);
    expect(moved.geography).toBe('CH');
    await until(
      async () =>
        host.services.records.countByCategory(
          moved,
          (await host.services.records.subjectOf(moved, person)).subjectKey,
        ),
      (counts) => counts.device === 1,
      'the event to come back after the move',
    );
    expect(await tenantFootprint('EU', tenantId)).toEqual({});
  }, 120_000);
});
