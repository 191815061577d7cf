// An access request's package answers GDPR Art. 15 in full (SPEC §5): per category present, its name in
// words, purpose, source, retention, storage location and recipients, and the subject's rights, in
// manifest.json and report.html, from the same source as the processing register (a category's disclosure in
// the package equals the register's, field for field).
import { randomUUID } from 'node:crypto';

import { startTestHost, type TestHost } from '../support/testHost';
import { until } from '../support/until';
import { readZip } from '../support/zip';

let host: TestHost;
let tenantId: string;
let admin: string;
const adele = { objectId: randomUUID(), upn: `adele-${randomUUID().slice(0, 6)}@contoso.com` };

beforeAll(async () => {
  host = await startTestHost();
  tenantId = await host.provisionTenant('AT');
  admin = await host.issuer.token({ tenantId, roles: ['Privacy.Admin', 'Privacy.Reader'] });
  const tenant = await host.services.directory.resolve(tenantId);
  const now = Date.now();
  for (const [category, n] of [
    ['device', 2],
    ['alert', 1],
    ['usage', 1],
  ] as const) {
    for (let i = 0; i < n; i++) {
      await host.services.records.upsert(tenant, {
        category,
        recordId: `${category}-${i}`,
        subject: adele,
        occurredAt: new Date(now - (i + 1) * 3_600_000).toISOString(),
        data: { note: `${category} ${i}` },
      });
    }
  }
});
afterAll(() => host.stop());

async function packageOf(type: 'access' | 'export') {
  const created = await host.call('POST', `/api/tenants/${tenantId}/dsr`, {
    token: admin,
    body: { type, regulation: 'GDPR', subject: { objectId: adele.objectId } },
  });
  const status = () => host.call('GET', `/api/tenants/${tenantId}/dsr/${created.body.id}`, { token: admin });
  await until(status, (r) => r.body.status === 'awaitingReview', 'review');
  await host.call('POST', `/api/tenants/${tenantId}/dsr/${created.body.id}/approve`, { token: admin });
  await until(status, (r) => r.body.status === 'completed', 'completion');
  const link = await host.call('GET', `/api/tenants/${tenantId}/dsr/${created.body.id}/export`, {
    token: admin,
  });
  return readZip(Buffer.from(await (await fetch(link.body.url)).arrayBuffer()));
}

describe('the Art. 15 access report', () => {
  it('discloses each category present as the register does, and the rights, in the manifest and the report', async () => {
    const files = await packageOf('access');
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    const disclosed = manifest.disclosure.categories as { category: string }[];
    // Only the categories present, in the order of the vocabulary.
    expect(disclosed.map((c) => c.category)).toEqual(['device', 'alert', 'usage']);
    const register = (
      await host.call('GET', `/api/tenants/${tenantId}/processing-register`, { token: admin })
    ).body;
    for (const category of disclosed) {
      const { staffAccess: _staff, ...same } = register.categories.find(
        (c: { category: string }) => c.category === category.category,
      );
      expect(category).toEqual(same);
    }
    expect(disclosed[0]).toMatchObject({
      label: 'Device data',
      storedIn: { geography: 'EU' },
      purpose: expect.any(String),
      source: expect.any(String),
      recipients: expect.any(String),
    });
    expect(disclosed[1]).toMatchObject({
      retention: { words: expect.stringMatching(/^Personal fields removed 180 days after it was recorded/) },
    });
    const rights = (manifest.disclosure.rights as { right: string }[]).map((r) => r.right);
    expect(rights).toEqual(
      expect.arrayContaining([
        'Access',
        'Rectification',
        'Erasure',
        'Restriction of processing',
        'Objection',
        'Data portability',
        'Complaint to a supervisory authority',
      ]),
    );

    const report = files.get('report.html')!.toString('utf8');
    expect(report).toContain('<meta name="viewport"');
    for (const category of disclosed as unknown as {
      label: string;
      purpose: string;
      retention: { words: string };
    }[]) {
      expect(report).toContain(category.label);
      expect(report).toContain(category.purpose.replaceAll("'", '&#39;'));
      expect(report).toContain(category.retention.words);
    }
    expect(report).toContain('Your rights');
    expect(report).toContain('Complaint to a supervisory authority');
    expect(report).toContain('The EU geography');
    expect(report).not.toContain('<h3>Acceptances of the terms'); // not present: counted 0, not described
  }, 60_000);

  it('is in an export package too, which has no report', async () => {
    const files = await packageOf('export');
    expect(files.has('report.html')).toBe(false);
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8'));
    expect(manifest.disclosure.categories.map((c: { category: string }) => c.category)).toEqual([
      'device',
      'alert',
      'usage',
    ]);
  }, 60_000);
});
