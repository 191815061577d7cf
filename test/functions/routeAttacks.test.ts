// Every HTTP operation of the registry, against every kind of caller that must be turned away (SPEC §2-§3):
// no token, forged and tampered tokens, tokens out of time or for someone else, another tenant's token, no
// role, another tenant's resource ids. The operations come from functionRegistry, so a route added later is
// attacked too. Storage is snapshotted before and after: the attacks change nothing. This file's global
// account is Azurite's devstoreaccount1 and its host runs no queue or timer, so nothing else touches its
// tenants meanwhile.
import { randomUUID } from 'node:crypto';

import { decodeJwt, type JWTPayload } from 'jose';

import { alertDataWork } from '../../functions/alertDataWork';
import { dsrWork } from '../../functions/dsrWork';
import { functionRegistry } from '../../functions/registry';
import { azuriteConnectionString, DEV_ACCOUNT } from '../../local/azurite';
import { DEV_ISSUER_TEMPLATE } from '../../local/devTokens';
import { LocalHost } from '../../local/localHost';
import { ROLES } from '../../shared/auth/principal';
import { issuerFor } from '../../shared/auth/tokenVerifier';
import { newMigrationId } from '../../shared/migration/migrationJob';
import { MigrationStore } from '../../shared/migration/migrationStore';
import { createServices, type Services } from '../../shared/composition';
import { Pseudonymizer } from '../../shared/crypto/pseudonymizer';
import type { FunctionDefinition, HttpFunction } from '../../shared/hosting/functionDefinition';
import { invokeQueue } from '../../shared/hosting/invoke';
import { type ApiOperation, HTTP_METHODS, type HttpMethod } from '../../shared/http/apiOperation';
import { LINK_TOKEN_TYPE, linkSigningKey, signPackageLink } from '../../shared/requests/packageLinkToken';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import {
  accessClaims,
  hmacWithPublicKey,
  signedByStranger,
  signedWithTrustedKey,
  tamperedPayload,
  unsignedToken,
} from '../support/forgedTokens';
import { invocationContext } from '../support/invocation';
import { differences, snapshotTenants, type StorageSnapshot } from '../support/storageSnapshot';
import { testConfig } from '../support/testStorage';
import { createTestIssuer, type TestIssuer } from '../support/tokens';

interface RouteOperation {
  fn: HttpFunction;
  method: HttpMethod;
  op: ApiOperation;
  /** `GET tenants/{tenantId}/dsr`, as test names show it. */
  label: string;
}

const isHttp = (fn: FunctionDefinition): fn is HttpFunction => fn.kind === 'http';

const OPERATIONS: RouteOperation[] = functionRegistry.filter(isHttp).flatMap((fn) =>
  HTTP_METHODS.flatMap((method) => {
    const op = fn.operations[method];
    return op ? [{ fn, method, op, label: `${method} ${fn.route}` }] : [];
  }),
);
const TENANT_OPERATIONS = OPERATIONS.filter(({ op }) => op.access.kind === 'tenant');
const PUBLIC_OPERATIONS = OPERATIONS.filter(({ op }) => op.access.kind === 'public');

const routeParameters = (route: string): string[] =>
  [...route.matchAll(/\{([A-Za-z]+)\??\}/g)].map((match) => match[1] ?? '');

/** A valid body for each operation that takes one, so that only the credentials can make it fail. */
const SAMPLE_BODIES: Record<string, unknown> = {
  createDataSubjectRequest: {
    type: 'export',
    regulation: 'GDPR',
    subject: { upn: 'attack.target@contoso.com' },
    dataSubjectType: 'currentEmployee',
  },
  declineDataSubjectRequest: { reason: 'Declined by an attacker' },
  extendDataSubjectRequest: { reason: 'Extended by an attacker' },
  startResidencyMigration: { dryRun: true },
  requestOperatorAccess: {
    tenantId: '00000000-0000-4000-8000-00000000dead',
    justification: 'An attacker asking for access',
    ticket: 'INC-0',
    durationMinutes: 15,
  },
  denyOperatorAccess: { reason: 'Denied by an attacker' },
  denyTenantAccessRequest: { reason: 'Denied by an attacker' },
  setOperatorAccessPolicy: { requireTenantApproval: true },
  putMyAdminContact: { displayName: 'An attacker', email: 'attacker@example.com' },
  createAlertDataRequest: { action: 'delete', deviceNames: ['ATTACK-PC'], reason: 'An attacker' },
  publishTerms: { language: 'en', title: 'Terms by an attacker', text: 'Attack' },
  acceptTerms: { version: 1, sha256: '0'.repeat(64) },
};

/** The service provider's own tenant: operators sign in there (OPERATOR_TENANT_ID). */
const OPERATOR_TENANT = '0badc0de-0000-4000-8000-00000000a77c';
const operatorId = randomUUID();
const approverId = randomUUID();

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
const setupActor = {
  actor: { type: 'user' as const, id: 'setup', upn: 'setup@contoso.com' },
  correlationId: 'setup',
};

let issuer: TestIssuer;
let services: Services;
let host: LocalHost;
let baseUrl: string;
let tenantA: TenantScope;
let tenantB: TenantScope;
/** Path values naming real resources of tenant A, and the same names for tenant B's resources. */
let ownValues: Record<string, string>;
let foreignValues: Record<string, string>;
let adminA: string;
/** The rightful operator: every operator role, MFA, the workstation context, and tenant A's active grant. */
let operatorA: string;

const operatorToken = (
  claims: { objectId?: string; roles?: string[]; amr?: string[]; acrs?: string[]; tid?: string } = {},
) =>
  issuer.token({
    tenantId: claims.tid ?? OPERATOR_TENANT,
    objectId: claims.objectId ?? randomUUID(),
    roles: claims.roles ?? ['Operator', 'Operator.Approver'],
    amr: claims.amr ?? ['pwd', 'mfa'],
    acrs: claims.acrs ?? ['c1'],
  });

interface Response {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

async function call(method: string, path: string, token?: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(new URL(path, baseUrl), {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (a ZIP): keep the text
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** The route with every parameter filled from `values`; a parameter nobody gave a value for fails loudly. */
function pathOf({ fn }: RouteOperation, values: Record<string, string>): string {
  return `/api/${fn.route}`.replace(/\{([A-Za-z]+)\??\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) {
      throw new Error(
        `No value for {${name}} of route ${fn.route}: give ownValues and foreignValues a real resource for it.`,
      );
    }
    return encodeURIComponent(value);
  });
}

function bodyOf({ op, label }: RouteOperation): unknown {
  if (!op.body) return undefined;
  if (!(op.operationId in SAMPLE_BODIES)) {
    throw new Error(`${label} takes a body: add a valid one for ${op.operationId} to SAMPLE_BODIES.`);
  }
  return SAMPLE_BODIES[op.operationId];
}

beforeAll(async () => {
  issuer = await createTestIssuer();
  services = createServices(
    testConfig({
      STORAGE_GLOBAL: azuriteConnectionString(DEV_ACCOUNT, ports),
      AUTH_JWKS_FILE: issuer.jwksPath,
      OPERATOR_TENANT_ID: OPERATOR_TENANT,
    }),
  );
  // Only the HTTP functions: no queue consumer or timer of this host writes while the attacks run.
  host = new LocalHost({
    functions: functionRegistry.filter(isHttp),
    services,
    port: 0,
    log: () => undefined,
  });
  ({ baseUrl } = await host.start());

  const provision = async (countryCode: string) =>
    services.directory.scopeOf(
      (await services.directory.provision({ tenantId: randomUUID(), countryCode, displayName: 'Attacked' }))
        .entry,
    );
  [tenantA, tenantB] = await Promise.all([provision('DE'), provision('FR')]);

  // Both in the EU: another tenant's ids are looked up in the very tables that hold them.
  // Tenant A: a completed export (a request with a package, so every request route and the download link
  // name something real). Tenant B: a request of its own.
  const subject = { upn: `adele-${randomUUID().slice(0, 8)}@contoso.com`, objectId: randomUUID() };
  await services.records.upsert(tenantA, {
    category: 'directory',
    recordId: `dir-${subject.objectId}`,
    subject,
    occurredAt: new Date().toISOString(),
    data: { department: 'Sales' },
  });
  const exportInput = {
    type: 'export',
    regulation: 'GDPR',
    subject,
    dataSubjectType: 'currentEmployee',
  } as const;
  const requestA = await services.requests.create(tenantA, exportInput, setupActor);
  const step = (step: 'discover' | 'fulfil') =>
    invokeQueue(
      dsrWork,
      services,
      { tenantId: tenantA.tenantId, requestId: requestA.id, step },
      invocationContext('dsrWork'),
    );
  await step('discover');
  await services.requests.decide(tenantA, requestA.id, 'approve', setupActor);
  await step('fulfil');
  const requestB = await services.requests.create(tenantB, exportInput, setupActor);
  // Alert data requests: a completed extraction of tenant A's (with a package to link to), one of B's.
  const alertInput = { action: 'extract' as const, deviceNames: ['SETUP-PC'], reason: 'Setup' };
  const alertRequestA = await services.alertRequests.create(tenantA, alertInput, setupActor);
  await invokeQueue(
    alertDataWork,
    services,
    { tenantId: tenantA.tenantId, requestId: alertRequestA.id },
    invocationContext('alertDataWork'),
  );
  const alertRequestB = await services.alertRequests.create(tenantB, alertInput, setupActor);
  // A past move of tenant A's (one that failed and was rolled back), so that its status route names one.
  const at = new Date().toISOString();
  await new MigrationStore(services.storage).create({
    tenantId: tenantA.tenantId,
    migrationId: newMigrationId(new Date(), randomUUID().replaceAll('-', '')),
    from: 'EU',
    to: 'CH',
    status: 'failed',
    requestedBy: 'setup',
    createdAt: at,
    updatedAt: at,
    fencedAt: at,
    copyAfter: at,
    progress: { copied: {}, deleted: {}, verified: {} },
    cursor: { item: 0 },
    failure: { code: 'VerificationFailed', reason: 'seeded' },
    rolledBack: true,
  });

  const adminAId = randomUUID();
  adminA = await issuer.token({
    tenantId: tenantA.tenantId,
    objectId: adminAId,
    roles: [...ROLES],
    upn: 'admin@a.example',
  });
  // Tenant A's admin keeps contact data, so admin-contacts/me names something real.
  await services.adminContacts.put(
    tenantA,
    { objectId: adminAId, upn: 'admin@a.example' },
    { displayName: 'Admin A', email: 'admin@a.example' },
  );
  // Tenant A has terms, and its admin accepted them, so terms and terms/acceptances/me name something real.
  const published = await services.terms.publish(
    tenantA,
    { language: 'en', title: 'Terms of A', text: 'Terms of tenant A' },
    setupActor.actor,
    'setup',
  );
  await services.terms.accept(
    tenantA,
    { objectId: adminAId, upn: 'admin@a.example' },
    { version: published.version, sha256: published.sha256 },
    'setup',
  );
  const link = await call('GET', `/api/tenants/${tenantA.tenantId}/dsr/${requestA.id}/export`, adminA);
  if (link.status !== 200) throw new Error(`No package link for the setup: ${JSON.stringify(link.body)}`);
  const linkToken = new URL(link.body.url).pathname.split('/').pop()!;

  // An operator holding an active grant for tenant A (approved by another operator), and a pending request
  // for tenant B.
  const asOperator = (objectId: string) => ({ objectId, upn: `${objectId.slice(0, 8)}@provider.example` });
  const grantA = await services.operatorAccess.request(
    {
      tenantId: tenantA.tenantId,
      justification: 'Setup of the attack suite',
      ticket: 'SETUP-1',
      durationMinutes: 60,
    },
    asOperator(operatorId),
    'setup',
  );
  await services.operatorAccess.approve(
    grantA.id,
    { party: 'operator', person: asOperator(approverId), actor: { type: 'operator', id: approverId } },
    'setup',
  );
  const requestOfB = await services.operatorAccess.request(
    {
      tenantId: tenantB.tenantId,
      justification: 'Setup of the attack suite',
      ticket: 'SETUP-2',
      durationMinutes: 60,
    },
    asOperator(operatorId),
    'setup',
  );
  operatorA = await operatorToken({ objectId: operatorId });

  ownValues = {
    tenantId: tenantA.tenantId,
    requestId: requestA.id,
    token: linkToken,
    accessRequestId: grantA.id,
    alertRequestId: alertRequestA.id,
  };
  foreignValues = {
    tenantId: tenantA.tenantId,
    requestId: requestB.id,
    accessRequestId: requestOfB.id,
    alertRequestId: alertRequestB.id,
  };
});

afterAll(() => host?.stop());

// ---- What each answer must look like -------------------------------------------------------------------

interface Outcome {
  attack: string;
  status: number;
  code?: string;
  /** The error shape: exactly `{"error":{"code","message"[,"details"]}}`. */
  errorShape?: boolean;
  wwwAuthenticate?: string | null;
  requestId: boolean;
}

function outcomeOf(attack: string, response: Response, expected: Outcome): Outcome {
  const error = response.body?.error;
  const shape =
    typeof response.body === 'object' &&
    response.body !== null &&
    Object.keys(response.body).join() === 'error' &&
    typeof error?.code === 'string' &&
    typeof error?.message === 'string' &&
    Object.keys(error).every((key) => ['code', 'message', 'details'].includes(key));
  return {
    attack,
    status: response.status,
    ...(expected.code !== undefined ? { code: error?.code } : {}),
    ...(expected.errorShape !== undefined ? { errorShape: shape } : {}),
    ...(expected.wwwAuthenticate !== undefined
      ? { wwwAuthenticate: response.headers.get('www-authenticate') }
      : {}),
    requestId: !!response.headers.get('x-request-id'),
  };
}

const refused = (attack: string, status: 401 | 403 | 404, code: string): Outcome => ({
  attack,
  status,
  code,
  errorShape: true,
  ...(status === 401 ? { wwwAuthenticate: 'Bearer' } : {}),
  requestId: true,
});

// ---- The attacks -----------------------------------------------------------------------------------------

interface Attack {
  name: string;
  /** Undefined where the attack does not apply to the operation. */
  expected(target: RouteOperation): Outcome | undefined;
  /** The token to send (undefined: none) and the path values, if not the caller's own. */
  prepare(target: RouteOperation): Promise<{ token?: string; values?: Record<string, string> }>;
}

const ALL_ROLES = [...ROLES];
const claimsA = () => accessClaims(tenantA.tenantId, ALL_ROLES);
const unauthenticated = (name: string, token: () => Promise<string | undefined>): Attack => ({
  name,
  expected: () => refused(name, 401, 'Unauthenticated'),
  prepare: async () => {
    const value = await token();
    return value === undefined ? {} : { token: value };
  },
});
const rolesOf = ({ op }: RouteOperation) => (op.access.kind === 'tenant' ? op.access.roles : 'anyUser');

const UNAUTHENTICATED_ATTACKS: Attack[] = [
  unauthenticated('no token', async () => undefined),
  unauthenticated('alg none', async () => unsignedToken(claimsA(), { kid: issuer.key.kid })),
  unauthenticated('HS256 signed with the public key', () => hmacWithPublicKey(claimsA(), issuer.key)),
  unauthenticated('tampered payload (roles raised)', async () =>
    tamperedPayload(await issuer.token({ tenantId: tenantA.tenantId, roles: [] }), (claims) => ({
      ...claims,
      roles: ALL_ROLES,
    })),
  ),
  unauthenticated('unknown kid', () =>
    issuer.token({ tenantId: tenantA.tenantId, roles: ALL_ROLES, kid: `unknown-${randomUUID()}` }),
  ),
  unauthenticated('another key under the trusted kid', () =>
    signedByStranger(claimsA(), { kid: issuer.key.kid }),
  ),
  unauthenticated('its own key in the jwk header', () => signedByStranger(claimsA(), { embedKey: true })),
  unauthenticated('expired beyond the skew', () =>
    issuer.token({ tenantId: tenantA.tenantId, roles: ALL_ROLES, expiresInSeconds: -600 }),
  ),
  unauthenticated('not yet valid beyond the skew', () =>
    issuer.token({ tenantId: tenantA.tenantId, roles: ALL_ROLES, notBeforeSeconds: 600 }),
  ),
  unauthenticated('without exp', () => {
    const { exp: _exp, ...claims } = claimsA();
    return signedWithTrustedKey(claims as JWTPayload, issuer.key);
  }),
  unauthenticated('wrong audience', () =>
    issuer.token({ tenantId: tenantA.tenantId, roles: ALL_ROLES, audience: 'api://someone-else' }),
  ),
  unauthenticated('wrong issuer', () =>
    issuer.token({
      tenantId: tenantA.tenantId,
      roles: ALL_ROLES,
      issuer: `https://sts.windows.net/${tenantA.tenantId}/`,
    }),
  ),
  unauthenticated('issuer of another tenant (iss B, tid A)', () =>
    issuer.token({
      tenantId: tenantA.tenantId,
      roles: ALL_ROLES,
      issuer: issuerFor(DEV_ISSUER_TEMPLATE, tenantB.tenantId),
    }),
  ),
];

const TENANT_ATTACKS: Attack[] = [
  ...UNAUTHENTICATED_ATTACKS,
  {
    name: "another tenant's valid token",
    expected: () => refused("another tenant's valid token", 403, 'TenantMismatch'),
    prepare: async () => ({ token: await issuer.token({ tenantId: tenantB.tenantId, roles: ALL_ROLES }) }),
  },
  {
    name: 'no role',
    expected: (target) => (rolesOf(target) === 'anyUser' ? undefined : refused('no role', 403, 'Forbidden')),
    prepare: async () => ({ token: await issuer.token({ tenantId: tenantA.tenantId, roles: [] }) }),
  },
  {
    name: 'every role but its own',
    expected: (target) => {
      const roles = rolesOf(target);
      if (roles === 'anyUser' || roles.length === ROLES.length) return undefined;
      return refused('every role but its own', 403, 'Forbidden');
    },
    prepare: async (target) => {
      const roles = rolesOf(target);
      const others = ROLES.filter((role) => roles === 'anyUser' || !roles.includes(role));
      return { token: await issuer.token({ tenantId: tenantA.tenantId, roles: others }) };
    },
  },
  {
    name: "another tenant's resource ids",
    expected: ({ fn }) =>
      routeParameters(fn.route).some((name) => name !== 'tenantId')
        ? refused("another tenant's resource ids", 404, 'NotFound')
        : undefined,
    prepare: async () => ({ token: adminA, values: foreignValues }),
  },
];

/** The claims of tenant A's real download link. */
const linkClaims = () => decodeJwt(ownValues.token!);

/** Tenant A's link signed again with A's own link key, with changes. */
async function resignedLink(changes: JWTPayload): Promise<string> {
  const claims = { ...linkClaims(), ...changes };
  const pseudonymKey = await new Pseudonymizer().keyFor(tenantA);
  return signPackageLink(
    {
      tenantId: String(claims.tid),
      requestId: String(claims.rid),
      subjectKey: String(claims.sub),
      packageRow: String(claims.pkg),
      linkId: String(claims.jti),
      expiresAt: new Date(Number(claims.exp) * 1000),
    },
    linkSigningKey(pseudonymKey),
  );
}
const badLink = (name: string, token: () => Promise<string>): Attack => ({
  name,
  expected: () => refused(name, 404, 'NotFound'),
  prepare: async () => ({ values: { ...ownValues, token: await token() } }),
});

/** The link is the credential of the download route: every forgery of it names no package. */
const LINK_ATTACKS: Attack[] = [
  badLink('link with alg none', async () => unsignedToken(linkClaims(), { typ: LINK_TOKEN_TYPE })),
  badLink('link HMAC-signed with the JWKS public key', () =>
    hmacWithPublicKey(linkClaims(), issuer.key, { typ: LINK_TOKEN_TYPE }),
  ),
  badLink('link with a tampered payload (another request)', async () =>
    tamperedPayload(ownValues.token!, (claims) => ({ ...claims, rid: foreignValues.requestId })),
  ),
  badLink('expired link, rightly signed', () => resignedLink({ exp: Math.floor(Date.now() / 1000) - 600 })),
  badLink("link naming tenant B, signed with A's key", () => resignedLink({ tid: tenantB.tenantId })),
  badLink('an access token instead of a link', async () => adminA),
];

/** Public routes without parameters answer anyone, and a forged token neither breaks nor changes that. */
const PUBLIC_ATTACKS: Attack[] = [
  {
    name: 'no credentials',
    expected: ({ op }) => ({
      attack: 'no credentials',
      status: op.responses.find((r) => r.status < 300)!.status,
      requestId: true,
    }),
    prepare: async () => ({}),
  },
  {
    name: 'a forged token',
    expected: ({ op }) => ({
      attack: 'a forged token',
      status: op.responses.find((r) => r.status < 300)!.status,
      requestId: true,
    }),
    prepare: async () => ({ token: unsignedToken(claimsA()) }),
  },
];

const operatorRoles = ({ op }: RouteOperation) => (op.access.kind === 'operator' ? op.access.roles : []);
const forbidden = (name: string, token: (target: RouteOperation) => Promise<string>): Attack => ({
  name,
  expected: () => refused(name, 403, 'Forbidden'),
  prepare: async (target) => ({ token: await token(target) }),
});

/** Operator routes: forged tokens, and valid ones that miss the provider tenant, the role, MFA or the workstation. */
const OPERATOR_ATTACKS: Attack[] = [
  ...UNAUTHENTICATED_ATTACKS,
  forbidden("a customer tenant's token with every role, MFA and the context", () =>
    issuer.token({ tenantId: tenantA.tenantId, roles: ALL_ROLES, amr: ['mfa'], acrs: ['c1'] }),
  ),
  forbidden('an operator without MFA', () => operatorToken({ objectId: operatorId, amr: ['pwd'] })),
  forbidden('an operator off a privileged workstation (no acrs)', () =>
    operatorToken({ objectId: operatorId, acrs: [] }),
  ),
  forbidden('an operator with another authentication context', () =>
    operatorToken({ objectId: operatorId, acrs: ['c2'] }),
  ),
  forbidden('an operator with every role but its own', (target) =>
    operatorToken({
      objectId: operatorId,
      roles: ROLES.filter((role) => !operatorRoles(target).includes(role)),
    }),
  ),
  {
    name: 'an operator without a grant',
    expected: ({ fn }) =>
      fn.route.startsWith('operator/tenants/')
        ? refused('an operator without a grant', 403, 'Forbidden')
        : undefined,
    prepare: async () => ({ token: await operatorToken() }),
  },
  {
    name: "another tenant's records under tenant A's grant",
    expected: ({ fn }) =>
      fn.route.startsWith('operator/tenants/')
        ? refused("another tenant's records under tenant A's grant", 403, 'Forbidden')
        : undefined,
    prepare: async () => ({ token: operatorA, values: { ...ownValues, tenantId: tenantB.tenantId } }),
  },
];

function attacksOn(target: RouteOperation): Attack[] {
  if (target.op.access.kind === 'tenant') return TENANT_ATTACKS;
  if (target.op.access.kind === 'operator') return OPERATOR_ATTACKS;
  const params = routeParameters(target.fn.route);
  if (params.length === 0) return PUBLIC_ATTACKS;
  if (params.join() === 'token') return LINK_ATTACKS;
  throw new Error(`${target.label} is public with parameters: say here how it may be attacked.`);
}

async function attack(target: RouteOperation): Promise<{ actual: Outcome[]; expected: Outcome[] }> {
  const body = bodyOf(target);
  const cases = attacksOn(target).flatMap((attack) => {
    const expected = attack.expected(target);
    return expected ? [{ attack, expected }] : [];
  });
  const actual = await Promise.all(
    cases.map(async ({ attack, expected }) => {
      const { token, values } = await attack.prepare(target);
      const response = await call(target.method, pathOf(target, values ?? ownValues), token, body);
      return outcomeOf(attack.name, response, expected);
    }),
  );
  return { actual, expected: cases.map((c) => c.expected) };
}

// ---- The suite -----------------------------------------------------------------------------------------

describe('the registry as the attacks see it', () => {
  it('has tenant operations and public ones, every body sample valid', () => {
    expect(TENANT_OPERATIONS.length).toBeGreaterThan(0);
    expect(PUBLIC_OPERATIONS.length).toBeGreaterThan(0);
    for (const target of OPERATIONS) {
      const body = bodyOf(target);
      if (target.op.body) expect(target.op.body.safeParse(body).success).toBe(true);
    }
  });

  it.each(OPERATIONS.filter(({ method }) => method === 'GET').map((o) => [o.label, o] as const))(
    '%s answers the rightful caller (the filled path names a real resource)',
    async (_label, target) => {
      const response = await call(
        'GET',
        pathOf(target, ownValues),
        target.op.access.kind === 'operator' ? operatorA : adminA,
      );
      expect({ status: response.status, body: response.status < 300 ? 'ok' : response.body }).toEqual({
        status: target.op.responses.find((r) => r.status < 300)!.status,
        body: 'ok',
      });
    },
  );
});

describe('every operation turns away every attacker, and storage does not change', () => {
  let before: StorageSnapshot;
  const accounts = () => ({ global: services.config.storage.global, ...services.config.storage.geographies });
  const tenantIds = () => [tenantA.tenantId, tenantB.tenantId];

  beforeAll(async () => {
    before = await snapshotTenants(accounts(), tenantIds());
  });

  it.each(OPERATIONS.map((o) => [o.label, o] as const))('%s', async (_label, target) => {
    const { actual, expected } = await attack(target);
    expect(actual).toEqual(expected);
  });

  it('changed no row of the attacked tenants in any table of any account, nor any blob or container', async () => {
    expect(before.rows.size).toBeGreaterThan(0);
    expect(before.blobs.size).toBeGreaterThan(0);
    const after = await snapshotTenants(accounts(), tenantIds());
    expect(differences(before, after)).toEqual([]);
  });
});
