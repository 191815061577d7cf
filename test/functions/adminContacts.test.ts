// Admin contact information (SPEC §9) on the local host: each signed-in user keeps their own contact data,
// Privacy.Admin lists them, and the data is personal data like any record: discovered, exported, rectified
// (applied) and erased by requests.
import { randomUUID } from 'node:crypto';

import { startTestHost, type TestHost } from '../support/testHost';
import { until } from '../support/until';

let host: TestHost;
let tenantId: string;
let dpo: string;
const ada = { objectId: randomUUID(), upn: `ada-${randomUUID().slice(0, 6)}@contoso.com` };
const ben = { objectId: randomUUID(), upn: `ben-${randomUUID().slice(0, 6)}@contoso.com` };
let adaToken: string;
let benToken: string;

beforeAll(async () => {
  host = await startTestHost();
  tenantId = await host.provisionTenant('DE');
  dpo = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'], upn: 'dpo@contoso.com' });
  // Any signed-in user of the tenant manages their own contact data: no role needed.
  adaToken = await host.issuer.token({ tenantId, objectId: ada.objectId, upn: ada.upn });
  benToken = await host.issuer.token({
    tenantId,
    objectId: ben.objectId,
    upn: ben.upn,
    roles: ['Security.Admin'],
  });
});
afterAll(() => host.stop());

const me = (token: string, method = 'GET', body?: unknown) =>
  host.call(method, `/api/tenants/${tenantId}/admin-contacts/me`, { token, ...(body ? { body } : {}) });

async function runRequest(body: Record<string, unknown>) {
  const created = await host.call('POST', `/api/tenants/${tenantId}/dsr`, { token: dpo, body });
  expect(created.status).toBe(202);
  const id = created.body.id as string;
  const status = () => host.call('GET', `/api/tenants/${tenantId}/dsr/${id}`, { token: dpo });
  const reviewed = await until(status, (r) => r.body.status === 'awaitingReview', 'review');
  await host.call('POST', `/api/tenants/${tenantId}/dsr/${id}/approve`, { token: dpo });
  const done = await until(status, (r) => r.body.status === 'completed', 'completion');
  return { reviewed: reviewed.body, done: done.body };
}

describe('admin contacts', () => {
  it('are kept, corrected and deleted by their owner, and listed for Privacy.Admin only', async () => {
    expect((await me(adaToken)).status).toBe(404);
    const put = await me(adaToken, 'PUT', {
      displayName: 'Ada Lovelace',
      email: 'ada@contoso.com',
      phone: '+44 20 7946 0000',
    });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ objectId: ada.objectId, upn: ada.upn, displayName: 'Ada Lovelace' });
    expect((await me(adaToken)).body).toMatchObject({ email: 'ada@contoso.com', phone: '+44 20 7946 0000' });

    const invalid = await me(adaToken, 'PUT', { displayName: 'Ada', email: 'not an address' });
    expect({ status: invalid.status, code: invalid.body.error.code }).toEqual({
      status: 400,
      code: 'ValidationFailed',
    });
    // A correction replaces the whole: the phone left out is gone.
    const corrected = await me(adaToken, 'PUT', {
      displayName: 'Ada King',
      email: 'ada@contoso.com',
      jobTitle: 'CTO',
    });
    expect(corrected.status).toBe(200);
    const read = (await me(adaToken)).body;
    expect(read).toMatchObject({ displayName: 'Ada King', jobTitle: 'CTO' });
    expect(read.phone).toBeUndefined();

    // Each sees their own only.
    expect((await me(benToken)).status).toBe(404);
    await me(benToken, 'PUT', { displayName: 'Ben', email: 'ben@contoso.com' });
    const listed = await host.call('GET', `/api/tenants/${tenantId}/admin-contacts`, { token: dpo });
    expect(listed.status).toBe(200);
    expect(listed.body.value.map((c: { objectId: string }) => c.objectId).sort()).toEqual(
      [ada.objectId, ben.objectId].sort(),
    );
    expect(
      (await host.call('GET', `/api/tenants/${tenantId}/admin-contacts`, { token: benToken })).status,
    ).toBe(403);

    expect((await me(benToken, 'DELETE')).status).toBe(204);
    expect((await me(benToken)).status).toBe(404);
    expect((await me(benToken, 'DELETE')).status).toBe(404);
    const after = await host.call('GET', `/api/tenants/${tenantId}/admin-contacts`, { token: dpo });
    expect(after.body.value.map((c: { objectId: string }) => c.objectId)).toEqual([ada.objectId]);
  });

  it('are discovered, exported, rectified and erased by requests', async () => {
    await me(adaToken, 'PUT', { displayName: 'Ada King', email: 'ada@contoso.com', jobTitle: 'CTO' });
    const subject = { objectId: ada.objectId };
    const exported = await runRequest({ type: 'export', regulation: 'GDPR', subject });
    expect(exported.reviewed.discovery.counts).toMatchObject({ adminContact: 1 });
    expect(exported.done.result.counts).toMatchObject({ adminContact: 1 });

    const rectified = await runRequest({
      type: 'rectify',
      regulation: 'GDPR',
      subject,
      rectifications: [{ category: 'adminContact', field: 'jobTitle', value: 'Chief Scientist' }],
    });
    expect(rectified.done.result.rectifications).toEqual([
      { category: 'adminContact', field: 'jobTitle', value: 'Chief Scientist', outcome: 'applied' },
    ]);
    expect((await me(adaToken)).body.jobTitle).toBe('Chief Scientist');

    const erased = await runRequest({ type: 'delete', regulation: 'GDPR', subject });
    expect(erased.done.result.erased).toMatchObject({ adminContact: 1 });
    expect((await me(adaToken)).status).toBe(404);
    const listed = await host.call('GET', `/api/tenants/${tenantId}/admin-contacts`, { token: dpo });
    expect(listed.body.value).toEqual([]);
  }, 90_000);
});
