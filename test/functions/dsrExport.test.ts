// End to end on the local host: a record sent to the queue is found by a request, exported, downloaded
// through the link (the ZIP opens and its manifest hashes match), then erased by a delete request, with
// the audit chain valid throughout.
import { createHash, randomUUID } from 'node:crypto';

import { QUEUES } from '../../shared/storage/names';
import { sendJson } from '../../shared/storage/queueMessages';
import { startTestHost, type TestHost } from '../support/testHost';
import { readZip } from '../support/zip';

let host: TestHost;
let tenantId: string;
let admin: string;
const subject = { upn: `adele-${randomUUID().slice(0, 8)}@contoso.com`, objectId: randomUUID() };

beforeAll(async () => {
  host = await startTestHost();
  tenantId = await host.provisionTenant('DE');
  admin = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'], upn: 'privacy@contoso.com' });
});
afterAll(() => host.stop());

const api = (path: string) => `/api/tenants/${tenantId}${path}`;

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 25_000;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

const requestStatus = (id: string, status: string) =>
  until(
    async () => (await host.call('GET', api(`/dsr/${id}`), { token: admin })).body,
    (body) => body.status === status,
    `request ${id} to be ${status}`,
  );

async function verifyAudit() {
  const verify = await host.call('GET', api('/audit/verify'), { token: admin });
  expect(verify.body).toMatchObject({ valid: true });
}

describe('a request from record to erasure', () => {
  it('finds, exports, links, and erases a record sent on the queue', async () => {
    const queue = await host.services.storage.global.queue(QUEUES.personalDataEvents);
    const recordIds = ['dir-1', 'dev-1', 'log-1'];
    for (const [i, category] of (['directory', 'device', 'systemLog'] as const).entries()) {
      await sendJson(queue, {
        type: 'record.upserted',
        tenantId,
        eventId: `e-${recordIds[i]}`,
        category,
        recordId: recordIds[i],
        subject,
        occurredAt: new Date().toISOString(),
        data: { note: `record ${i}`, manager: 'someone.else@contoso.com' },
        deviceName: 'ADELE-PC',
      });
    }
    const tenant = await host.services.directory.resolve(tenantId);
    await until(
      async () =>
        host.services.records.countByCategory(
          tenant,
          await host.services.records.findSubjects(tenant, subject),
        ),
      (counts) => Object.values(counts).reduce((a, b) => a + (b ?? 0), 0) === 3,
      'the records to be ingested',
    );

    // Export: discovery counts every category, pseudonymised system logs included.
    const created = await host.call('POST', api('/dsr'), {
      token: admin,
      body: { type: 'export', regulation: 'GDPR', subject },
    });
    expect(created.status).toBe(202);
    const reviewed = await requestStatus(created.body.id, 'awaitingReview');
    expect(reviewed.discovery.counts).toMatchObject({ directory: 1, device: 1, systemLog: 1 });
    await verifyAudit();

    const notYet = await host.call('GET', api(`/dsr/${created.body.id}/export`), { token: admin });
    expect({ status: notYet.status, code: notYet.body.error.code }).toEqual({
      status: 409,
      code: 'InvalidState',
    });

    expect((await host.call('POST', api(`/dsr/${created.body.id}/approve`), { token: admin })).status).toBe(
      202,
    );
    const completed = await requestStatus(created.body.id, 'completed');
    expect(completed.result.counts).toMatchObject({ directory: 1, device: 1, systemLog: 1 });

    const link = await host.call('GET', api(`/dsr/${created.body.id}/export`), { token: admin });
    expect(link.status).toBe(200);
    expect(Date.parse(link.body.expiresAt) - Date.now()).toBeGreaterThan(14 * 60 * 1000);
    expect(Date.parse(link.body.expiresAt) - Date.now()).toBeLessThanOrEqual(15 * 60 * 1000);
    const download = Buffer.from(await (await fetch(link.body.url)).arrayBuffer());
    expect(createHash('sha256').update(download).digest('hex')).toBe(link.body.sha256);
    expect(download.length).toBe(link.body.sizeBytes);
    const files = await readZip(download);
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    for (const file of manifest.files) {
      expect(createHash('sha256').update(files.get(file.name)!).digest('hex')).toBe(file.sha256);
    }
    const directory = JSON.parse(files.get('directory.json')!.toString('utf8'));
    expect(directory).toEqual([
      expect.objectContaining({ recordId: 'dir-1', data: { note: 'record 0', manager: '[redacted]' } }),
    ]);
    const audit = await host.call('GET', api('/audit?action=export.linkIssued'), { token: admin });
    expect(audit.body.value.map((e: { target: { id: string } }) => e.target.id)).toEqual([created.body.id]);
    await verifyAudit();

    // Delete: every record and the package go; audit events stay.
    const deletion = await host.call('POST', api('/dsr'), {
      token: admin,
      body: { type: 'delete', regulation: 'GDPR', subject: { upn: subject.upn } },
    });
    await requestStatus(deletion.body.id, 'awaitingReview');
    await host.call('POST', api(`/dsr/${deletion.body.id}/approve`), { token: admin });
    const erased = await requestStatus(deletion.body.id, 'completed');
    expect(erased.result).toMatchObject({
      erased: { directory: 1, device: 1, systemLog: 1 },
      packagesDeleted: 1,
    });
    expect(await host.services.records.findSubjects(tenant, subject)).toEqual([]);
    expect((await fetch(link.body.url)).status).toBe(404);
    const gone = await host.call('GET', api(`/dsr/${created.body.id}/export`), { token: admin });
    expect(gone.status).toBe(404);
    await verifyAudit();

    // A new export finds nothing left.
    const again = await host.call('POST', api('/dsr'), {
      token: admin,
      body: { type: 'access', regulation: 'CCPA', subject },
    });
    const rediscovered = await requestStatus(again.body.id, 'awaitingReview');
    expect(rediscovered.discovery.counts).toEqual({ auditEvents: expect.any(Number) });
  });
});
