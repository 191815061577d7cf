// Just-in-time operator access end to end on the local host (SPEC §9): request, approval by another
// operator (and by the tenant when its policy says so), reads within the grant's scope only, restricted
// subjects never returned, revocation, expiry by time, and the tenant's audit log naming the grant, its
// justification and ticket for every step.
import { randomUUID } from 'node:crypto';

import { functionRegistry } from '../../functions/registry';
import { ROLES } from '../../shared/auth/principal';
import { createServices } from '../../shared/composition';
import { startTestHost, type TestHost } from '../support/testHost';
import { testConfig } from '../support/testStorage';

const OPERATOR_TENANT = '0badc0de-0000-4000-8000-0000000000a0';
const env = { OPERATOR_TENANT_ID: OPERATOR_TENANT, OPERATOR_AUTH_CONTEXT: 'c1' };

let host: TestHost;
/** The services' clock: real time plus whatever a test moves it on by. */
let skewMs = 0;
let tenantId: string;
let otherTenant: string;
let admin: string;
const alice = { upn: `alice-${randomUUID().slice(0, 6)}@contoso.com`, objectId: randomUUID() };
const bob = { upn: `bob-${randomUUID().slice(0, 6)}@contoso.com`, objectId: randomUUID() };
const requesterId = randomUUID();
const approverId = randomUUID();

const operatorToken = (
  claims: { objectId?: string; roles?: string[]; amr?: string[]; acrs?: string[]; tid?: string } = {},
) =>
  host.issuer.token({
    tenantId: claims.tid ?? OPERATOR_TENANT,
    objectId: claims.objectId ?? requesterId,
    upn: 'op@provider.example',
    roles: claims.roles ?? ['Operator'],
    amr: claims.amr ?? ['pwd', 'mfa'],
    acrs: claims.acrs ?? ['c1'],
  });
const approverToken = () => operatorToken({ objectId: approverId, roles: ['Operator.Approver'] });

beforeAll(async () => {
  host = await startTestHost({ env, clock: () => new Date(Date.now() + skewMs) });
  [tenantId, otherTenant] = await Promise.all([host.provisionTenant('DE'), host.provisionTenant('FR')]);
  admin = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'], upn: 'dpo@contoso.com' });
  const tenant = await host.services.directory.resolve(tenantId);
  for (const [person, n] of [
    [alice, 0],
    [bob, 1],
  ] as const) {
    for (const category of ['directory', 'device'] as const) {
      await host.services.records.upsert(tenant, {
        category,
        recordId: `${category}-${n}`,
        subject: person,
        occurredAt: new Date().toISOString(),
        data: { note: `${person.upn} ${category}` },
      });
    }
  }
  // Bob's processing is restricted: no operator ever sees his records.
  const bobKey = (await host.services.records.subjectOf(tenant, bob)).subjectKey;
  await host.services.restrictions.restrict(tenant, {
    subjectKey: bobKey,
    subject: bob,
    requestId: 'restricted-by-test',
    restrictedAt: new Date().toISOString(),
  });
});
afterAll(() => host.stop());

const ask = (token: string, body: unknown) =>
  host.call('POST', '/api/operator/access-requests', { token, body });
const read = (token: string, tenant = tenantId, query = '') =>
  host.call('GET', `/api/operator/tenants/${tenant}/records${query}`, { token });
const decide = (token: string, id: string, kind: string, body?: unknown) =>
  host.call('POST', `/api/operator/access-requests/${id}/${kind}`, { token, ...(body ? { body } : {}) });
const request = (scope?: unknown, tenant = tenantId) => ({
  tenantId: tenant,
  justification: 'Investigating a failed enrolment sync reported by the customer',
  ticket: 'INC-4711',
  durationMinutes: 60,
  ...(scope ? { scope } : {}),
});

describe('operator authentication', () => {
  it('needs the provider tenant, the role, MFA and the privileged workstation context', async () => {
    const cases: [string, string][] = [
      ['no acrs', await operatorToken({ acrs: [] })],
      ['another context', await operatorToken({ acrs: ['c2'] })],
      ['no mfa', await operatorToken({ amr: ['pwd'] })],
      ['no role', await operatorToken({ roles: ['Privacy.Admin'] })],
      ["a customer's own Operator", await operatorToken({ tid: tenantId })],
    ];
    for (const [label, token] of cases) {
      const response = await ask(token, request());
      expect({ label, status: response.status, code: response.body.error.code }).toEqual({
        label,
        status: 403,
        code: 'Forbidden',
      });
    }
    expect((await ask('', request())).status).toBe(401);
  });
});

describe('a grant, from request to revocation', () => {
  it('lets the operator read within its scope only, audited in the tenant log', async () => {
    const operator = await operatorToken();
    const created = await ask(operator, request({ categories: ['directory'] }));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'pending', tenantId, requireTenantApproval: false });
    const id = created.body.id as string;
    expect(created.headers.get('location')).toBe(`/api/operator/access-requests/${id}`);

    // Nothing before approval; no self-approval, even for an operator who is also an approver.
    expect((await read(operator)).status).toBe(403);
    const selfApprover = await operatorToken({ roles: ['Operator', 'Operator.Approver'] });
    expect((await decide(selfApprover, id, 'approve')).status).toBe(403);
    expect((await decide(operator, id, 'approve')).status).toBe(403); // not an approver at all

    const approved = await decide(await approverToken(), id, 'approve');
    expect(approved.status).toBe(200);
    expect(approved.body.status).toBe('active');
    const grant = approved.body.grant as { startsAt: string; endsAt: string };
    expect(Date.parse(grant.endsAt) - Date.parse(grant.startsAt)).toBe(60 * 60_000);

    // Within scope: Alice's directory record; Bob's is restricted and never returned.
    const page = await read(operator);
    expect(page.status).toBe(200);
    expect(page.body.grant).toBe(id);
    expect(
      page.body.value.map((r: { recordId: string; category: string }) => `${r.category}:${r.recordId}`),
    ).toEqual(['directory:directory-0']);
    const bySubject = await read(operator, tenantId, `?upn=${encodeURIComponent(alice.upn)}`);
    expect(bySubject.body.value).toHaveLength(1);
    expect((await read(operator, tenantId, `?upn=${encodeURIComponent(bob.upn)}`)).body.value).toEqual([]);
    // Out of scope, or another tenant: refused.
    expect((await read(operator, tenantId, '?category=device')).status).toBe(403);
    expect((await read(operator, otherTenant)).status).toBe(403);
    // Another operator holds no grant.
    expect((await read(await operatorToken({ objectId: randomUUID() }))).status).toBe(403);

    // The tenant sees the request and who looked, with the justification and the ticket.
    const listed = await host.call('GET', `/api/tenants/${tenantId}/access-requests`, { token: admin });
    expect(listed.body.value.map((r: { id: string }) => r.id)).toContain(id);
    const audit = await host.call('GET', `/api/tenants/${tenantId}/audit?top=200`, { token: admin });
    const mine = audit.body.value.filter((e: { target: { id: string } }) => e.target.id === id);
    expect(mine.map((e: { action: string }) => e.action)).toEqual([
      'operatorAccess.requested',
      'operatorAccess.approved',
      'operatorAccess.read',
      'operatorAccess.read',
      'operatorAccess.read',
    ]);
    for (const event of mine) {
      expect(event.details).toMatchObject({ justification: request().justification, ticket: 'INC-4711' });
    }
    expect(mine[2].details).toMatchObject({ returned: 1, categories: ['directory'] });
    expect(mine[0].actor).toMatchObject({ type: 'operator', id: requesterId });

    // The grant opens the operator records route only: every tenant route answers the operator 403.
    const operatorWithGrant = await operatorToken({ roles: [...ROLES] });
    for (const fn of functionRegistry) {
      if (fn.kind !== 'http') continue;
      for (const [method, op] of Object.entries(fn.operations)) {
        if (op?.access.kind !== 'tenant') continue;
        const path = `/api/${fn.route}`
          .replace('{tenantId}', tenantId)
          .replace(/\{(\w+)\}/g, (_m, name: string) => (name === 'accessRequestId' ? id : 'x'));
        const response = await host.call(method, path, {
          token: operatorWithGrant,
          ...(method === 'GET' || method === 'DELETE' ? {} : { body: {} }),
        });
        expect({
          route: `${method} ${fn.route}`,
          status: response.status,
          code: response.body?.error?.code,
        }).toEqual({
          route: `${method} ${fn.route}`,
          status: 403,
          code: 'TenantMismatch',
        });
      }
    }

    // The tenant ends it; reads stop at once.
    const revoked = await host.call('POST', `/api/tenants/${tenantId}/access-requests/${id}/revoke`, {
      token: admin,
    });
    expect(revoked.body.status).toBe('revoked');
    expect((await read(operator)).status).toBe(403);
    expect(
      (await host.call('GET', `/api/tenants/${tenantId}/audit/verify`, { token: admin })).body.valid,
    ).toBe(true);
  });

  it('needs the tenant’s own approval when its policy says so; the grant starts at the last approval', async () => {
    const policy = await host.call('PUT', `/api/tenants/${tenantId}/operator-access-policy`, {
      token: admin,
      body: { requireTenantApproval: true },
    });
    expect(policy.body).toEqual({ requireTenantApproval: true });
    const operator = await operatorToken();
    const id = (await ask(operator, request({ subject: { upn: alice.upn } }))).body.id as string;
    const byApprover = await decide(await approverToken(), id, 'approve');
    expect(byApprover.body.status).toBe('pending');
    expect((await read(operator, tenantId, `?upn=${encodeURIComponent(alice.upn)}`)).status).toBe(403);

    const byTenant = await host.call('POST', `/api/tenants/${tenantId}/access-requests/${id}/approve`, {
      token: admin,
    });
    expect(byTenant.body.status).toBe('active');
    expect(byTenant.body.grant.startsAt).toBe(byTenant.body.approvals.tenant.at);
    // A subject-scoped grant reads that subject only, and only when named.
    const alicePage = await read(operator, tenantId, `?upn=${encodeURIComponent(alice.upn)}`);
    expect(alicePage.body.value.map((r: { category: string }) => r.category).sort()).toEqual([
      'device',
      'directory',
    ]);
    expect((await read(operator)).status).toBe(403);

    // Denial is for pending requests only; a denied request grants nothing.
    const other = (await ask(operator, request())).body.id as string;
    const denied = await decide(await approverToken(), other, 'deny', { reason: 'No ticket in the queue' });
    expect(denied.body).toMatchObject({
      status: 'denied',
      denial: { reason: 'No ticket in the queue', party: 'operator' },
    });
    expect((await decide(await approverToken(), other, 'approve')).status).toBe(409);

    // Time ends the grant by itself; the expiry is then recorded once in the tenant's log.
    const later = new Date(Date.now() + 13 * 60 * 60 * 1000);
    const future = createServices(testConfig({ ...env, AUTH_JWKS_FILE: host.issuer.jwksPath }), {
      clock: () => later,
    });
    const tenant = await future.directory.resolve(tenantId);
    await expect(
      future.operatorAccess.readRecords(
        tenant,
        { objectId: requesterId },
        { subject: alice },
        { top: 10 },
        'later',
      ),
    ).rejects.toMatchObject({ code: 'Forbidden' });
    const first = await future.operatorAccess.expireDue('expiry-test');
    expect(first.failures).toEqual([]);
    expect(first.expired).toBeGreaterThanOrEqual(1);
    await future.operatorAccess.expireDue('expiry-test');
    const audit = await host.call(
      'GET',
      `/api/tenants/${tenantId}/audit?action=operatorAccess.expired&top=200`,
      {
        token: admin,
      },
    );
    const expiredIds = audit.body.value.map((e: { target: { id: string } }) => e.target.id);
    expect(expiredIds.filter((x: string) => x === id)).toHaveLength(1);
    await host.call('PUT', `/api/tenants/${tenantId}/operator-access-policy`, {
      token: admin,
      body: { requireTenantApproval: false },
    });
  });
});

describe('expiry over HTTP', () => {
  it('ends a grant at its end and an undecided request after 12 hours, on every route', async () => {
    const operator = await operatorToken();
    const granted = (await ask(operator, { ...request(), durationMinutes: 15 })).body.id as string;
    await decide(await approverToken(), granted, 'approve');
    const undecided = (await ask(operator, request())).body.id as string;
    const first = await read(operator);
    expect({ status: first.status, body: first.status === 200 ? 'ok' : first.body }).toEqual({
      status: 200,
      body: 'ok',
    });
    try {
      skewMs = 16 * 60_000; // past the grant's end
      expect((await read(operator)).status).toBe(403);
      expect(
        (await host.call('GET', `/api/operator/access-requests/${granted}`, { token: operator })).body.status,
      ).toBe('expired');
      expect((await decide(await approverToken(), granted, 'revoke')).status).toBe(409);
      expect((await decide(await approverToken(), undecided, 'approve')).body.status).toBe('active');
      skewMs = 13 * 60 * 60_000; // the other one's grant has ended too; a new request left undecided expires
      const late = (await ask(operator, request())).body.id as string;
      skewMs = 26 * 60 * 60_000;
      const view = await host.call('GET', `/api/tenants/${tenantId}/access-requests/${late}`, {
        token: admin,
      });
      expect(view.body.status).toBe('expired');
      expect((await decide(await approverToken(), late, 'approve')).status).toBe(409);
      expect((await read(operator)).status).toBe(403);
    } finally {
      skewMs = 0;
    }
  });
});

describe('decisions from every side', () => {
  it('lets the requester revoke their own request, not another operator; the tenant denies when it approves', async () => {
    const operator = await operatorToken();
    const own = (await ask(operator, request())).body.id as string;
    const stranger = await operatorToken({ objectId: randomUUID() });
    const refused = await decide(stranger, own, 'revoke');
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({
      status: 403,
      code: 'Forbidden',
    });
    expect((await decide(operator, own, 'revoke')).body).toMatchObject({
      status: 'revoked',
      revocation: { party: 'operator', by: { objectId: requesterId } },
    });

    // A tenant that approves requests may deny them, with its reason; one that does not, revokes instead.
    const withoutPolicy = (await ask(operator, request())).body.id as string;
    const notYours = await host.call(
      'POST',
      `/api/tenants/${tenantId}/access-requests/${withoutPolicy}/deny`,
      {
        token: admin,
        body: { reason: 'No' },
      },
    );
    expect({ status: notYours.status, code: notYours.body.error.code }).toEqual({
      status: 409,
      code: 'InvalidState',
    });
    await host.call('PUT', `/api/tenants/${tenantId}/operator-access-policy`, {
      token: admin,
      body: { requireTenantApproval: true },
    });
    try {
      const id = (await ask(operator, request())).body.id as string;
      const denied = await host.call('POST', `/api/tenants/${tenantId}/access-requests/${id}/deny`, {
        token: admin,
        body: { reason: 'Not during the audit week' },
      });
      expect(denied.body).toMatchObject({
        status: 'denied',
        denial: { party: 'tenant', reason: 'Not during the audit week' },
      });
      expect((await decide(await approverToken(), id, 'approve')).status).toBe(409);
    } finally {
      await host.call('PUT', `/api/tenants/${tenantId}/operator-access-policy`, {
        token: admin,
        body: { requireTenantApproval: false },
      });
    }
  });

  it('honours Idempotency-Key per operator: a retry returns the first request, another body is refused', async () => {
    const operator = await operatorToken();
    const headers = { 'Idempotency-Key': `ask-${randomUUID()}` };
    const first = await host.call('POST', '/api/operator/access-requests', {
      token: operator,
      body: request(),
      headers,
    });
    expect(first.status).toBe(201);
    const again = await host.call('POST', '/api/operator/access-requests', {
      token: operator,
      body: request(),
      headers,
    });
    expect({ status: again.status, id: again.body.id }).toEqual({ status: 201, id: first.body.id });
    const changed = await host.call('POST', '/api/operator/access-requests', {
      token: operator,
      body: { ...request(), ticket: 'INC-9999' },
      headers,
    });
    expect({ status: changed.status, code: changed.body.error.code }).toEqual({
      status: 409,
      code: 'Conflict',
    });
    // Another operator's same key is their own: a second request.
    const other = await host.call('POST', '/api/operator/access-requests', {
      token: await operatorToken({ objectId: randomUUID() }),
      body: request(),
      headers,
    });
    expect(other.status).toBe(201);
    expect(other.body.id).not.toBe(first.body.id);
    const listed = await host.call('GET', `/api/tenants/${tenantId}/access-requests?top=200`, {
      token: admin,
    });
    const ids = listed.body.value.map((r: { id: string }) => r.id);
    expect(ids.filter((id: string) => id === first.body.id)).toHaveLength(1);
  });

  it('answers 404 TenantNotFound for a tenant that does not exist, after the operator checks', async () => {
    const nobody = randomUUID();
    const records = await read(await operatorToken(), nobody);
    expect({ status: records.status, code: records.body.error.code }).toEqual({
      status: 404,
      code: 'TenantNotFound',
    });
    const asked = await ask(await operatorToken(), request(undefined, nobody));
    expect({ status: asked.status, code: asked.body.error.code }).toEqual({
      status: 404,
      code: 'TenantNotFound',
    });
    // The operator checks come first: without MFA it is 403 whether the tenant exists or not.
    expect((await read(await operatorToken({ amr: ['pwd'] }), nobody)).status).toBe(403);
  });
});
