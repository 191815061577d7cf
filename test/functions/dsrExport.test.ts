// End to end on the local host: a record sent to the queue is found by a request, exported, downloaded
// through the link the app serves (decrypted as it streams: the ZIP opens and its manifest hashes match),
// then erased by a delete request, with the audit chain valid throughout.
import { createHash, randomUUID } from 'node:crypto';

import { decodeJwt } from 'jose';

import { Pseudonymizer } from '../../shared/crypto/pseudonymizer';
import {
  linkSigningKey,
  type PackageLinkClaims,
  signPackageLink,
} from '../../shared/requests/packageLinkToken';
import { QUEUES } from '../../shared/storage/names';
import { sendJson } from '../../shared/storage/queueMessages';
import { startTestHost, type TestHost } from '../support/testHost';
import { until } from '../support/until';
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

const requestStatus = (id: string, status: string) =>
  until(
    async () => (await host.call('GET', api(`/dsr/${id}`), { token: admin })).body,
    (body) => body.status === status,
    `request ${id} to be ${status}`,
  );

/** A link's token signed again by hand: the claims of `token` with changes, under a tenant's link key. */
async function resign(token: string, signingTenantId: string, changes: Partial<PackageLinkClaims> = {}) {
  const claims = decodeJwt(token) as Record<string, string | number>;
  const signer = await host.services.directory.resolve(signingTenantId);
  const pseudonymKey = await new Pseudonymizer().keyFor(signer);
  return signPackageLink(
    {
      tenantId: String(claims.tid),
      requestId: String(claims.rid),
      subjectKey: String(claims.sub),
      packageRow: String(claims.pkg),
      linkId: String(claims.jti),
      expiresAt: new Date(Number(claims.exp) * 1000),
      ...changes,
    },
    linkSigningKey(pseudonymKey),
  );
}

const downloadPath = (token: string) => `/api/package-downloads/${token}`;

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
          (await host.services.records.subjectOf(tenant, subject)).subjectKey,
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
    // Served by the app itself, which decrypts the package as it streams it.
    expect(link.body.url.startsWith(`${host.baseUrl}/api/package-downloads/`)).toBe(true);
    const token = link.body.url.slice(link.body.url.lastIndexOf('/') + 1);
    const response = await fetch(link.body.url);
    expect(response.status).toBe(200);
    expect(
      Object.fromEntries(
        ['content-type', 'content-disposition', 'content-length', 'cache-control'].map((name) => [
          name,
          response.headers.get(name),
        ]),
      ),
    ).toEqual({
      'content-type': 'application/zip',
      'content-disposition': `attachment; filename="${created.body.id}.zip"`,
      'content-length': String(link.body.sizeBytes),
      'cache-control': 'no-store',
    });
    const download = Buffer.from(await response.arrayBuffer());
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
    const issued = (await host.call('GET', api('/audit?action=export.linkIssued'), { token: admin })).body
      .value;
    expect(issued).toEqual([
      expect.objectContaining({
        target: { type: 'dataSubjectRequest', id: created.body.id },
        details: { linkId: expect.any(String), expiresAt: link.body.expiresAt, sha256: link.body.sha256 },
      }),
    ]);
    const downloaded = (await host.call('GET', api('/audit?action=export.downloaded'), { token: admin })).body
      .value;
    expect(downloaded).toEqual([
      expect.objectContaining({
        actor: { type: 'app', id: 'package-download-link' },
        target: { type: 'dataSubjectRequest', id: created.body.id },
        correlationId: issued[0].details.linkId,
        details: { linkId: issued[0].details.linkId, sizeBytes: link.body.sizeBytes },
      }),
    ]);
    await verifyAudit();

    // Only the link as issued works: changed, signed by another tenant or expired, it leads nowhere, and every
    // refusal reads the same; a token that is not even a JWS is refused as well.
    const otherTenant = await host.provisionTenant('DE');
    const [header, body, signature] = token.split('.') as [string, string, string];
    const forged = await resign(token, tenantId, { linkId: randomUUID() });
    const refused = [
      `${header}.${body}.${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BA' : 'AA'}`,
      `${forged.slice(0, forged.lastIndexOf('.'))}.${signature}`,
      await resign(token, otherTenant),
      await resign(token, tenantId, { expiresAt: new Date(Date.now() - 60_000) }),
    ];
    const answers = await Promise.all(refused.map((bad) => host.call('GET', downloadPath(bad))));
    for (const answer of answers) {
      expect({ status: answer.status, code: answer.body.error.code }).toEqual({
        status: 404,
        code: 'NotFound',
      });
    }
    expect(new Set(answers.map((answer) => answer.body.error.message)).size).toBe(1);
    for (const malformed of [
      'not-a-token',
      `${header}.${body}`,
      `${header}.${'A'.repeat(4096)}.${signature}`,
    ]) {
      expect((await host.call('GET', downloadPath(malformed))).status).toBe(404);
    }
    // The same claims signed again with the right key still work: what was refused above was the change.
    const again = await fetch(`${host.baseUrl}${downloadPath(await resign(token, tenantId))}`);
    expect({ status: again.status, bytes: (await again.arrayBuffer()).byteLength }).toEqual({
      status: 200,
      bytes: link.body.sizeBytes,
    });
    const otherTenantsLink = await resign(token, otherTenant, { tenantId: otherTenant });
    expect((await host.call('GET', downloadPath(otherTenantsLink))).status).toBe(404);

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
    const erasedKey = (await host.services.records.subjectOf(tenant, subject)).subjectKey;
    expect(await host.services.records.countByCategory(tenant, erasedKey)).toEqual({});
    expect((await fetch(link.body.url)).status).toBe(404);
    const gone = await host.call('GET', api(`/dsr/${created.body.id}/export`), { token: admin });
    expect(gone.status).toBe(404);
    await verifyAudit();

    // A new export finds nothing left.
    const access = await host.call('POST', api('/dsr'), {
      token: admin,
      body: { type: 'access', regulation: 'CCPA', subject },
    });
    const rediscovered = await requestStatus(access.body.id, 'awaitingReview');
    expect(rediscovered.discovery.counts).toEqual({ auditEvents: expect.any(Number) });
  });
});
