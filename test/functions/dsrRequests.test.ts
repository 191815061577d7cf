// End to end through the local host: taking in, listing, reading and deciding requests over HTTP with real
// tokens, and every error of SPEC §3 these routes can give.
import { randomUUID } from 'node:crypto';

import { TABLES } from '../../shared/storage/names';
import { startTestHost, type TestHost } from '../support/testHost';

let host: TestHost;
let tenantA: string;
let tenantB: string;
let adminA: string;
let readerA: string;
let adminB: string;

const body = {
  type: 'export',
  regulation: 'GDPR',
  subject: { upn: 'adele@contoso.com' },
  dataSubjectType: 'currentEmployee',
};

beforeAll(async () => {
  host = await startTestHost();
  [tenantA, tenantB] = await Promise.all([host.provisionTenant('DE'), host.provisionTenant('US')]);
  adminA = await host.issuer.token({ tenantId: tenantA, roles: ['Privacy.Admin'], upn: 'admin@a.example' });
  readerA = await host.issuer.token({
    tenantId: tenantA,
    roles: ['Privacy.Reader'],
    upn: 'reader@a.example',
  });
  adminB = await host.issuer.token({ tenantId: tenantB, roles: ['Privacy.Admin'], upn: 'admin@b.example' });
});

afterAll(() => host.stop());

const dsrPath = (tenantId: string, suffix = '') => `/api/tenants/${tenantId}/dsr${suffix}`;

describe('data subject request intake over HTTP', () => {
  it('creates (202, Location, x-request-id), then gets and lists the request', async () => {
    const created = await host.call('POST', dsrPath(tenantA), {
      token: adminA,
      body,
      headers: { 'x-request-id': 'req-123' },
    });
    expect(created.status).toBe(202);
    expect(created.headers.get('x-request-id')).toBe('req-123');
    expect(created.headers.get('location')).toBe(dsrPath(tenantA, `/${created.body.id}`));
    expect(created.body).toMatchObject({
      status: 'received',
      type: 'export',
      regulation: 'GDPR',
      daysLeft: expect.any(Number),
    });

    const read = await host.call('GET', created.headers.get('location')!, { token: readerA });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id: created.body.id });
    // Discovery may already have started on the dsr-work queue: the first transition is the intake.
    expect(read.body.history[0]).toMatchObject({ action: 'create', to: 'received' });
    expect(read.headers.get('x-request-id')).toEqual(expect.any(String));

    const listed = await host.call('GET', `${dsrPath(tenantA)}?type=export`, { token: readerA });
    expect(listed.status).toBe(200);
    expect(listed.body.value.map((r: { id: string }) => r.id)).toContain(created.body.id);
  });

  it('pages with top and nextLink', async () => {
    const tenant = await host.provisionTenant('FR');
    const token = await host.issuer.token({ tenantId: tenant, roles: ['Privacy.Admin'] });
    for (let i = 0; i < 3; i++) await host.call('POST', dsrPath(tenant), { token, body });
    const first = await host.call('GET', `${dsrPath(tenant)}?top=2`, { token });
    expect(first.body.value).toHaveLength(2);
    expect(first.body.nextLink).toMatch(/skipToken=/);
    const next = new URL(first.body.nextLink);
    expect(next.searchParams.get('top')).toBe('2');
    const second = await host.call('GET', `${next.pathname}${next.search}`, { token });
    expect(second.body.value).toHaveLength(1);
    expect(second.body.nextLink).toBeUndefined();
  });

  it('declines with a reason, then refuses a second decision with 409 InvalidState', async () => {
    const created = await host.call('POST', dsrPath(tenantA), { token: adminA, body });
    const declined = await host.call('POST', dsrPath(tenantA, `/${created.body.id}/decline`), {
      token: adminA,
      body: { reason: 'Requester could not be verified' },
    });
    expect(declined.status).toBe(200);
    expect(declined.body).toMatchObject({
      status: 'declined',
      decision: { reason: 'Requester could not be verified' },
    });
    const again = await host.call('POST', dsrPath(tenantA, `/${created.body.id}/cancel`), { token: adminA });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('InvalidState');
  });

  it('cancels and extends', async () => {
    const created = await host.call('POST', dsrPath(tenantA), {
      token: adminA,
      body: { ...body, regulation: 'CCPA' },
    });
    const extended = await host.call('POST', dsrPath(tenantA, `/${created.body.id}/extend`), {
      token: adminA,
      body: { reason: 'many systems' },
    });
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.body.dueAt) - Date.parse(created.body.dueAt)).toBe(45 * 24 * 3600 * 1000);
    const cancelled = await host.call('POST', dsrPath(tenantA, `/${created.body.id}/cancel`), {
      token: adminA,
    });
    expect(cancelled.body.status).toBe('cancelled');
  });

  it('retrying a request that has not failed is 409 InvalidState', async () => {
    const created = await host.call('POST', dsrPath(tenantA), { token: adminA, body });
    const retried = await host.call('POST', dsrPath(tenantA, `/${created.body.id}/retry`), { token: adminA });
    expect({ status: retried.status, code: retried.body.error.code }).toEqual({
      status: 409,
      code: 'InvalidState',
    });
  });

  it('lists restrictions for readers, and only for the roles that may read them', async () => {
    const tenant = await host.provisionTenant('NL');
    const reader = await host.issuer.token({ tenantId: tenant, roles: ['Privacy.Reader'] });
    const listed = await host.call('GET', `/api/tenants/${tenant}/restrictions`, { token: reader });
    expect({ status: listed.status, body: listed.body }).toEqual({ status: 200, body: { value: [] } });
    const securityAdmin = await host.issuer.token({ tenantId: tenant, roles: ['Security.Admin'] });
    const refused = await host.call('GET', `/api/tenants/${tenant}/restrictions`, { token: securityAdmin });
    expect({ status: refused.status, code: refused.body.error.code }).toEqual({
      status: 403,
      code: 'Forbidden',
    });
  });

  it('approving a request that is not reviewed yet is 409 InvalidState', async () => {
    const created = await host.call('POST', dsrPath(tenantA), { token: adminA, body });
    const approved = await host.call('POST', dsrPath(tenantA, `/${created.body.id}/approve`), {
      token: adminA,
    });
    expect(approved.status).toBe(409);
    expect(approved.body.error.code).toBe('InvalidState');
  });

  it('honours Idempotency-Key: the same key returns the original request', async () => {
    const headers = { 'Idempotency-Key': `key-${randomUUID()}` };
    const first = await host.call('POST', dsrPath(tenantA), { token: adminA, body, headers });
    const second = await host.call('POST', dsrPath(tenantA), { token: adminA, body, headers });
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    const other = await host.call('POST', dsrPath(tenantA), {
      token: adminA,
      body: { ...body, type: 'delete' },
      headers,
    });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('Conflict');
    // The same key from another tenant is another key.
    const fromB = await host.call('POST', dsrPath(tenantB), { token: adminB, body, headers });
    expect(fromB.status).toBe(202);
    expect(fromB.body.id).not.toBe(first.body.id);
  });

  it('writes an audit event for each action', async () => {
    const created = await host.call('POST', dsrPath(tenantA), { token: adminA, body });
    await host.call('POST', dsrPath(tenantA, `/${created.body.id}/cancel`), { token: adminA });
    const audit = await host.call('GET', `/api/tenants/${tenantA}/audit?top=200`, { token: readerA });
    expect(audit.status).toBe(200);
    // The admin's own actions; discovery, which runs on its own, may add system events in between.
    const mine = audit.body.value.filter(
      (e: { target: { id: string }; actor: { type: string } }) =>
        e.target.id === created.body.id && e.actor.type === 'user',
    );
    expect(mine.map((e: { action: string }) => e.action)).toEqual(['dsr.created', 'dsr.cancelled']);
    expect(mine[0].actor).toEqual({ type: 'user', id: expect.any(String), upn: 'admin@a.example' });
    const verify = await host.call('GET', `/api/tenants/${tenantA}/audit/verify`, { token: readerA });
    expect(verify.body).toMatchObject({ valid: true, checked: expect.any(Number) });
  });
});

describe('errors of SPEC §3 on request routes', () => {
  const expectError = (
    result: { status: number; body: { error?: { code: string } }; headers: Headers },
    status: number,
    code: string,
  ) => {
    expect({ status: result.status, code: result.body?.error?.code }).toEqual({ status, code });
    expect(result.headers.get('x-request-id')).toBeTruthy();
  };

  it('400 InvalidJson', async () => {
    expectError(
      await host.call('POST', dsrPath(tenantA), {
        token: adminA,
        rawBody: '{"type":',
        headers: { 'content-type': 'application/json' },
      }),
      400,
      'InvalidJson',
    );
  });

  it('400 ValidationFailed with the field as target', async () => {
    const result = await host.call('POST', dsrPath(tenantA), {
      token: adminA,
      body: { ...body, subject: { upn: 'not an upn' } },
    });
    expectError(result, 400, 'ValidationFailed');
    expect(result.body.error.details).toContainEqual({ target: 'subject.upn', message: expect.any(String) });
    const empty = await host.call('POST', dsrPath(tenantA), {
      token: adminA,
      body: { ...body, subject: {} },
    });
    expectError(empty, 400, 'ValidationFailed');
    const query = await host.call('GET', `${dsrPath(tenantA)}?top=500`, { token: adminA });
    expectError(query, 400, 'ValidationFailed');
    expect(query.body.error.details).toContainEqual({ target: 'query.top', message: expect.any(String) });
    expectError(
      await host.call('GET', `${dsrPath(tenantA)}?skipToken=garbage`, { token: adminA }),
      400,
      'ValidationFailed',
    );
  });

  it('401 Unauthenticated with WWW-Authenticate', async () => {
    const result = await host.call('GET', dsrPath(tenantA));
    expectError(result, 401, 'Unauthenticated');
    expect(result.headers.get('www-authenticate')).toBe('Bearer');
  });

  it.each([
    ['expired', { expiresInSeconds: -3600 }],
    ['wrong audience', { audience: 'api://someone-else' }],
    ['wrong issuer', { issuer: 'https://sts.example.com/' }],
    ['unknown kid', { kid: 'not-a-known-key' }],
  ])('401 for an %s token', async (_name, claims) => {
    const token = await host.issuer.token({ tenantId: tenantA, roles: ['Privacy.Admin'], ...claims });
    expectError(await host.call('GET', dsrPath(tenantA), { token }), 401, 'Unauthenticated');
  });

  it('401 for alg none and HS256 tokens', async () => {
    const { base64url, SignJWT } = await import('jose');
    const claims = {
      tid: tenantA,
      oid: 'x',
      roles: ['Privacy.Admin'],
      aud: 'api://privacy-data-service',
      iss: `https://login.microsoftonline.com/${tenantA}/v2.0`,
      exp: Math.floor(Date.now() / 1000) + 600,
    };
    const none = `${base64url.encode(JSON.stringify({ alg: 'none' }))}.${base64url.encode(JSON.stringify(claims))}.`;
    expectError(await host.call('GET', dsrPath(tenantA), { token: none }), 401, 'Unauthenticated');
    const hs = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: host.issuer.key.kid })
      .sign(new TextEncoder().encode('secret'));
    expectError(await host.call('GET', dsrPath(tenantA), { token: hs }), 401, 'Unauthenticated');
  });

  it('403 Forbidden without the role', async () => {
    expectError(await host.call('POST', dsrPath(tenantA), { token: readerA, body }), 403, 'Forbidden');
    const noRoles = await host.issuer.token({ tenantId: tenantA });
    expectError(await host.call('GET', dsrPath(tenantA), { token: noRoles }), 403, 'Forbidden');
  });

  it('404 NotFound for an unknown request id, 404 TenantNotFound for an unprovisioned tenant', async () => {
    expectError(
      await host.call('GET', dsrPath(tenantA, '/0000000000000000000000000'), { token: adminA }),
      404,
      'NotFound',
    );
    expectError(await host.call('GET', dsrPath(tenantA, '/not-an-id'), { token: adminA }), 404, 'NotFound');
    const ghost = randomUUID();
    const token = await host.issuer.token({ tenantId: ghost, roles: ['Privacy.Admin'] });
    expectError(await host.call('GET', dsrPath(ghost), { token }), 404, 'TenantNotFound');
  });

  it('404 NotFound for an unknown route', async () => {
    expectError(await host.call('GET', '/api/no-such-route', { token: adminA }), 404, 'NotFound');
  });

  it('405 MethodNotAllowed with Allow', async () => {
    const result = await host.call('DELETE', dsrPath(tenantA), { token: adminA });
    expectError(result, 405, 'MethodNotAllowed');
    expect(result.headers.get('allow')).toBe('POST, GET');
  });

  it('413 PayloadTooLarge over 64 KiB', async () => {
    const result = await host.call('POST', dsrPath(tenantA), {
      token: adminA,
      body: { ...body, notes: 'x'.repeat(70 * 1024) },
    });
    expectError(result, 413, 'PayloadTooLarge');
  });

  it('415 UnsupportedMediaType without a JSON content type', async () => {
    const result = await host.call('POST', dsrPath(tenantA), {
      token: adminA,
      rawBody: JSON.stringify(body),
      headers: { 'content-type': 'text/plain' },
    });
    expectError(result, 415, 'UnsupportedMediaType');
  });

  it('423 TenantMigrating with Retry-After for writes, while reads keep working', async () => {
    const tenant = await host.provisionTenant('IT');
    const token = await host.issuer.token({ tenantId: tenant, roles: ['Privacy.Admin'] });
    const directory = await host.services.storage.global.table('tenants');
    await directory.updateEntity(
      {
        partitionKey: tenant,
        rowKey: 'directory',
        migration: JSON.stringify({ targetGeography: 'CH', startedAt: new Date().toISOString() }),
      },
      'Merge',
    );
    const write = await host.call('POST', dsrPath(tenant), { token, body });
    expectError(write, 423, 'TenantMigrating');
    expect(write.headers.get('retry-after')).toBe('60');
    expect((await host.call('GET', dsrPath(tenant), { token })).status).toBe(200);
  });
});

describe('tenant isolation', () => {
  /** B's request only ever moved by B's admin and the discovery worker (which runs on its own). */
  const expectUntouchedByA = async (id: string) => {
    const after = await host.call('GET', dsrPath(tenantB, `/${id}`), { token: adminB });
    expect(['received', 'discovering', 'awaitingReview']).toContain(after.body.status);
    const actors = after.body.history.map(
      (h: { actor: { upn?: string; id: string } }) => h.actor.upn ?? h.actor.id,
    );
    expect(actors.filter((actor: string) => actor !== 'admin@b.example' && actor !== 'dsr-work')).toEqual([]);
  };

  it("a token of tenant A gets 403 on tenant B's routes, and B's request is unchanged", async () => {
    const created = await host.call('POST', dsrPath(tenantB), { token: adminB, body });
    const id = created.body.id;
    for (const [method, path, payload] of [
      ['GET', dsrPath(tenantB), undefined],
      ['GET', dsrPath(tenantB, `/${id}`), undefined],
      ['POST', dsrPath(tenantB), body],
      ['POST', dsrPath(tenantB, `/${id}/cancel`), undefined],
      ['POST', dsrPath(tenantB, `/${id}/decline`), { reason: 'x' }],
      ['GET', `/api/tenants/${tenantB}/audit`, undefined],
    ] as const) {
      const result = await host.call(method, path, { token: adminA, ...(payload ? { body: payload } : {}) });
      expect({ path, status: result.status, code: result.body.error.code }).toEqual({
        path,
        status: 403,
        code: 'TenantMismatch',
      });
    }
    await expectUntouchedByA(id);
  });

  it("tenant B's request id is not found on tenant A's routes, and nothing changes", async () => {
    const created = await host.call('POST', dsrPath(tenantB), { token: adminB, body });
    const id = created.body.id;
    expect((await host.call('GET', dsrPath(tenantA, `/${id}`), { token: adminA })).status).toBe(404);
    const cancel = await host.call('POST', dsrPath(tenantA, `/${id}/cancel`), { token: adminA });
    expect({ status: cancel.status, code: cancel.body.error.code }).toEqual({
      status: 404,
      code: 'NotFound',
    });
    await expectUntouchedByA(id);
  });

  it("stores each tenant's requests only in its own geography's account, keyed by its tenant id", async () => {
    const created = await host.call('POST', dsrPath(tenantB), { token: adminB, body });
    const na = await host.services.storage.geography('NA').table(TABLES.requests);
    const eu = await host.services.storage.geography('EU').table(TABLES.requests);
    await expect(na.getEntity(tenantB, created.body.id)).resolves.toMatchObject({ partitionKey: tenantB });
    await expect(eu.getEntity(tenantB, created.body.id)).rejects.toMatchObject({ statusCode: 404 });
  });
});
