// GET .../processing-register on the local host: JSON and HTML from the same tables, for Privacy.Admin and
// Privacy.Reader; the tenant's geography, its operator access policy and the staff locations setting appear;
// the controller's name is escaped in the page.
import { randomUUID } from 'node:crypto';

import { RECORD_CATEGORIES } from '../../shared/vocabulary/categories';
import { CATEGORY_WORDS } from '../../shared/vocabulary/categoryWords';
import { startTestHost, type TestHost } from '../support/testHost';

let host: TestHost;
let tenantId: string;
let reader: string;

beforeAll(async () => {
  host = await startTestHost({ env: { OPERATOR_STAFF_LOCATIONS: 'Ireland, India' } });
  tenantId = randomUUID();
  await host.services.directory.provision({
    tenantId,
    countryCode: 'AT',
    displayName: '<script>alert("x")</script> Wien GmbH',
  });
  reader = await host.issuer.token({ tenantId, roles: ['Privacy.Reader'] });
});
afterAll(() => host.stop());

const path = () => `/api/tenants/${tenantId}/processing-register`;

describe('the processing register', () => {
  it('is JSON by default, with every category in the tenant geography and the tenant policy', async () => {
    const admin = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'] });
    const first = await host.call('GET', path(), { token: reader });
    expect(first.status).toBe(200);
    expect(first.body.categories.map((c: { category: string }) => c.category)).toEqual([
      ...RECORD_CATEGORIES,
    ]);
    expect(first.body.categories[0].storedIn.geography).toBe('EU');
    expect(first.body.operatorAccess).toMatchObject({
      tenantApprovalRequired: false,
      staffLocations: ['Ireland', 'India'],
    });
    expect(first.body.transfers).toContain('only in the EU geography');

    await host.call('PUT', `/api/tenants/${tenantId}/operator-access-policy`, {
      token: admin,
      body: { requireTenantApproval: true },
    });
    const after = await host.call('GET', path(), { token: admin });
    expect(after.body.operatorAccess.tenantApprovalRequired).toBe(true);

    const security = await host.issuer.token({ tenantId, roles: ['Security.Admin'] });
    expect((await host.call('GET', path(), { token: security })).status).toBe(403);
  });

  it('is a page for people with Accept: text/html, everything escaped', async () => {
    const page = await host.call('GET', path(), { token: reader, headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = page.body as string;
    expect(html).toContain('<meta name="viewport"');
    for (const category of RECORD_CATEGORIES) expect(html).toContain(CATEGORY_WORDS[category].label);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Wien GmbH');
    expect(html).toContain('Ireland, India');
  });
});
