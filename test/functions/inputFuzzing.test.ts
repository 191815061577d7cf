// Property-based fuzzing of the service's inputs (issue 9; SPEC §3: no input, however malformed, produces a
// 500; SPEC §4: invalid events go to the poison queue with their reason).
//
// HTTP: on the local test host, with a Privacy.Admin token of a provisioned tenant, every operation of the
// registry gets malformed path parameters, query strings, bodies and content types. Every answer is 2xx, 3xx
// or 4xx, every 4xx in the error shape with its code's status; the tenant's rows (every table of its
// geography, its directory row, its package blobs) change only by what 2xx answers did.
// Queues: personal-data-events, dsr-work and retention-work, invoked as the host invokes them, get malformed
// messages. Each is processed, or poisoned with a reason and nothing written; none throws (a throw means
// redelivery of a message that can never succeed).
//
// FUZZ_RUNS: cases per HTTP operation, per dsr-work and retention-work, and twice that for
// personal-data-events (default 60: about 15 s on 2 cores; FUZZ_RUNS=1000 for a long run, some 4 minutes).
// FC_SEED: the seed, as for every property test (fixed by default, so a failure reproduces; fast-check
// prints seed and path of a counterexample). FUZZ_REPORT=1 prints status counts per operation and outcomes
// per queue.
import { createHash, randomUUID } from 'node:crypto';

import fc from 'fast-check';

import { dsrWork } from '../../functions/dsrWork';
import { personalDataEvents } from '../../functions/personalDataEvents';
import { functionRegistry } from '../../functions/registry';
import { retentionWork } from '../../functions/retentionWork';
import { accountNameOf, azuriteConnectionString, type AzuritePorts } from '../../local/azurite';
import { createServices } from '../../shared/composition';
import type { ErrorCode } from '../../shared/errors';
import type { QueueFunction } from '../../shared/hosting/functionDefinition';
import { invokeQueue } from '../../shared/hosting/invoke';
import type { PoisonedMessage, PoisonQueue } from '../../shared/hosting/queueFailures';
import { type ApiOperation, HTTP_METHODS, type HttpMethod } from '../../shared/http/apiOperation';
import { statusOf } from '../../shared/http/errorResponse';
import { encodeContinuation, issueContinuation, listScope } from '../../shared/paging';
import { parseBatchItem, personalDataEventSchema } from '../../shared/records/personalDataEvent';
import {
  REQUEST_STATUSES,
  REQUEST_TYPES,
  type RequestStatus,
} from '../../shared/requests/dataSubjectRequest';
import { dsrWorkMessageSchema } from '../../shared/requests/requestFulfilment';
import { newRequestId } from '../../shared/requests/requestRepository';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import { retentionWorkMessageSchema } from '../../shared/purge/retentionPurge';
import { poisonQueueOf, QUEUES, TABLES } from '../../shared/storage/names';
import { decodeMessage } from '../../shared/storage/queueMessages';
import {
  controls,
  type Mutation,
  mutate,
  mutation,
  oddString,
  oddValue,
  twoKib,
  wide,
} from '../support/fuzzInputs';
import { invocationContext } from '../support/invocation';
import { startTestHost, type TestHost } from '../support/testHost';
import { testConfig } from '../support/testStorage';
import {
  type AccountConnections,
  differences,
  snapshotTenants,
  type StorageSnapshot,
} from '../support/storageSnapshot';

const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
/** As test/support/fastCheck.ts seeds every property test; each property here offsets it, to differ. */
const SEED = Number(process.env.FC_SEED ?? '20261125');
const REPORT = process.env.FUZZ_REPORT === '1';

/** Valid bodies of every operation that takes one; the fuzz mutates them. A new body operation needs one here. */
const EXAMPLE_BODIES: Record<string, unknown[]> = {
  // The fuzzed tenant is German and stays in EU: a move is refused (409), a dry run too; nothing moves.
  startResidencyMigration: [{ dryRun: true }, {}],
  // For a tenant that does not exist (404): the valid shape reaches the service and creates nothing.
  requestOperatorAccess: [
    {
      tenantId: '00000000-0000-4000-8000-00000000f022',
      justification: 'Investigating a failed enrolment sync',
      ticket: 'INC-4711',
      durationMinutes: 60,
      scope: { categories: ['directory', 'device'], subject: { upn: 'adele.vance@contoso.com' } },
    },
  ],
  denyOperatorAccess: [{ reason: 'No ticket in the queue for this' }],
  denyTenantAccessRequest: [{ reason: 'We do not need this' }],
  setOperatorAccessPolicy: [{ requireTenantApproval: true }, { requireTenantApproval: false }],
  putMyAdminContact: [
    { displayName: 'Adele Vance', email: 'adele@contoso.com', phone: '+49 30 1234567', jobTitle: 'DPO' },
  ],
  createDataSubjectRequest: [
    {
      type: 'export',
      regulation: 'GDPR',
      subject: { upn: 'adele.vance@contoso.com' },
      dataSubjectType: 'currentEmployee',
      notes: 'ticket 4711',
    },
    {
      type: 'rectify',
      regulation: 'CCPA',
      subject: { objectId: '8f6a1c0e-3b1d-4f2a-9c77-2f1e0d9b6a55', email: 'megan@contoso.com' },
      rectifications: [{ category: 'directory', recordId: 'r-1', field: 'department', value: 'Marketing' }],
    },
  ],
  createAlertDataRequest: [
    {
      action: 'extract',
      deviceNames: ['ADELE-PC', 'contoso-adele-01.contoso.local'],
      reason: 'Incident 4711',
    },
    { action: 'delete', deviceNames: ['KIOSK-7'], reason: 'Shared device retired' },
  ],
  declineDataSubjectRequest: [{ reason: 'requester could not be verified' }],
  extendDataSubjectRequest: [{ reason: 'many systems involved' }],
  publishTerms: [
    {
      language: 'de-CH',
      title: 'Nutzungsbedingungen',
      summary: 'Kurz',
      text: 'Text',
      requireReacceptance: true,
    },
    { language: 'en', title: 'Terms', text: 'We manage your device.' },
  ],
  // The hash of 'We manage your device.' (the second example above).
  acceptTerms: [
    {
      version: 1,
      sha256: '3312d790f3f79c2ea96556472a01a578f74ee803afb6d517a2caf9d026a2ab5f',
      deviceName: 'ADELE-PC',
    },
  ],
};

const ERROR_CODES: readonly ErrorCode[] = [
  'InvalidJson',
  'ValidationFailed',
  'Unauthenticated',
  'Forbidden',
  'TenantMismatch',
  'NotFound',
  'TenantNotFound',
  'MethodNotAllowed',
  'InvalidState',
  'NotEligible',
  'Conflict',
  'PayloadTooLarge',
  'UnsupportedMediaType',
  'TenantMigrating',
];

interface Operation {
  route: string;
  method: HttpMethod;
  op: ApiOperation;
}

const operations: Operation[] = functionRegistry.flatMap((fn) =>
  fn.kind === 'http'
    ? Object.entries(fn.operations).map(([method, op]) => ({
        route: fn.route,
        method: method as HttpMethod,
        op: op!,
      }))
    : [],
);

let host: TestHost;
let tenantId: string;
let otherTenantId: string;
let adminToken: string;
let otherAdminToken: string;
let tenant: TenantScope;
/** A request in a final state: every decision on it is refused, after its body was validated. */
let declinedId: string;
/** nextLinks' skipTokens of this tenant's lists: valid tokens to mutate. */
const issuedTokens: string[] = [];
let before: StorageSnapshot;
let auditBefore: number;
/** The provider's tenant, an operator with every operator role, and the grant they hold on the fuzzed tenant. */
const FUZZ_OPERATOR_TENANT = '0badc0de-0000-4000-8000-00000000f022';
let operatorToken: string;
let grantId: string;
/** A PUT of the operator access policy answered 2xx: its row and audit events are expected. */
let policyChanged = false;
/** The caller's own admin contact was written (PUT or DELETE answered 2xx): its record rows are expected. */
let contactWritten = false;
/** A 2xx PUT .../terms published a version; a 2xx acceptance or withdrawal wrote the caller's record. */
let termsPublished = false;
let termsAccepted = false;

/** What 2xx answers may have written. */
const created = new Set<string>();
const decided = new Set<string>();
let createdWithKey = 0;
/** Resources created under an Idempotency-Key (each claims its key once). */
const keyed = new Set<string>();
const statuses = new Map<string, Map<number, number>>();

interface Call {
  method: string;
  path: string;
  query?: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

/**
 * Node's HTTP server refuses a request line and headers over 16 KiB with a bare 431 before any function sees
 * it (Azure's front end has limits of its own); only a URL that long may be answered so.
 */
const SERVER_URL_LIMIT = 16 * 1024;

const urlOf = (call: Call) => `${host.baseUrl}${call.path}${call.query ? `?${call.query}` : ''}`;

async function send(call: Call, token = adminToken) {
  const url = urlOf(call);
  const response = await fetch(url, {
    method: call.method,
    headers: { authorization: `Bearer ${token}`, ...call.headers },
    ...(call.body ? { body: call.body } : {}),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: kept as text, and then not the error shape
  }
  return { status: response.status, headers: response.headers, body };
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

const SETTLED: ReadonlySet<RequestStatus> = new Set([
  'awaitingReview',
  'completed',
  'declined',
  'cancelled',
  'failed',
]);

async function statusOfRequest(id: string): Promise<RequestStatus> {
  return (await host.services.requests.load(tenant, id)).status;
}

/** Discovery runs on the host's dsr-work queue after a create: wait until it is done with each request. */
const settled = (ids: Iterable<string>) =>
  waitFor('discovery of the created requests', async () => {
    for (const id of ids) if (!SETTLED.has(await statusOfRequest(id))) return false;
    return true;
  });

async function createRequest(body: unknown): Promise<string> {
  const answer = await send({
    method: 'POST',
    path: `/api/tenants/${tenantId}/dsr`,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify(body)),
  });
  expect(answer.status).toBe(202);
  return (answer.body as { id: string }).id;
}

const skipTokenOf = (nextLink: string | undefined) =>
  nextLink ? (new URL(nextLink).searchParams.get('skipToken') ?? undefined) : undefined;

/** The accounts the fuzzed tenant lives in: the global one (its directory row) and its geography's. */
const httpAccounts = (): AccountConnections => ({
  global: host.services.config.storage.global,
  [tenant.geography]: host.services.config.storage.geographies[tenant.geography]!,
});

interface Change {
  what: 'added' | 'changed' | 'removed';
  account: string;
  /** A table, or a blob container. */
  table: string;
  rowKey: string;
}

/** `rows: added EU/requests/<PartitionKey>/<RowKey>` (keys hold no `/`), or the same of a blob. */
function parseChange(line: string): Change {
  const match = /^(?:rows|blobs): (added|changed|removed) ([^/]+)\/([^/]+)\/(.*)$/.exec(line);
  if (!match) throw new Error(`Unexpected snapshot difference: ${line}`);
  const [, what, account, table, rest] = match as unknown as [string, Change['what'], string, string, string];
  return { what, account, table, rowKey: rest.split('/').pop() ?? '' };
}

async function startHttp(): Promise<void> {
  host = await startTestHost({ env: { OPERATOR_TENANT_ID: FUZZ_OPERATOR_TENANT } });
  [tenantId, otherTenantId] = await Promise.all([host.provisionTenant('DE'), host.provisionTenant('DE')]);
  adminToken = await host.issuer.token({ tenantId, roles: ['Privacy.Admin'], upn: 'admin@contoso.com' });
  otherAdminToken = await host.issuer.token({
    tenantId: otherTenantId,
    roles: ['Privacy.Admin'],
    upn: 'admin@fabrikam.com',
  });
  tenant = await host.services.directory.resolve(tenantId);

  // Three requests, so lists have further pages; one declined, so decisions on it reach the state check.
  const seeded = [];
  for (const body of [
    ...EXAMPLE_BODIES.createDataSubjectRequest!,
    EXAMPLE_BODIES.createDataSubjectRequest![0],
  ]) {
    seeded.push(await createRequest(body));
  }
  await settled(seeded);
  declinedId = seeded[0]!;
  const decline = await send({
    method: 'POST',
    path: `/api/tenants/${tenantId}/dsr/${declinedId}/decline`,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ reason: 'seeded' })),
  });
  expect(decline.status).toBe(200);
  for (const list of ['dsr', 'audit']) {
    const page = await send({ method: 'GET', path: `/api/tenants/${tenantId}/${list}`, query: 'top=1' });
    const token = skipTokenOf((page.body as { nextLink?: string }).nextLink);
    if (token) issuedTokens.push(token);
  }
  expect(issuedTokens).toHaveLength(2);

  // An operator with an active grant on the fuzzed tenant (approved by another), so operator routes are
  // fuzzed past their checks of the caller.
  const operatorId = randomUUID();
  operatorToken = await host.issuer.token({
    tenantId: FUZZ_OPERATOR_TENANT,
    objectId: operatorId,
    roles: ['Operator', 'Operator.Approver'],
    amr: ['mfa'],
    acrs: ['c1'],
  });
  const grant = await host.services.operatorAccess.request(
    { tenantId, justification: 'Fuzzing the operator routes', ticket: 'FUZZ-1', durationMinutes: 480 },
    { objectId: operatorId },
    'fuzz-setup',
  );
  const approverId = randomUUID();
  await host.services.operatorAccess.approve(
    grant.id,
    { party: 'operator', person: { objectId: approverId }, actor: { type: 'operator', id: approverId } },
    'fuzz-setup',
  );
  grantId = grant.id;

  before = await snapshotTenants(httpAccounts(), [tenantId]);
  auditBefore = (await host.services.audit.list(tenant, {}, { top: 200 })).items.length;
}

async function stopHttp(): Promise<void> {
  if (REPORT) {
    const lines = [...statuses].map(([op, counts]) => `${op}: ${JSON.stringify(Object.fromEntries(counts))}`);
    console.log(`Fuzz status counts (runs per operation ${RUNS}, seed ${SEED}):\n${lines.join('\n')}`);
  }
  await host?.stop();
}

// ---- Generators ---------------------------------------------------------------------------------------------

const pathValue = (name: string) => {
  if (name === 'tenantId') {
    return fc.oneof(
      { weight: 8, arbitrary: fc.constant(null) }, // the caller's own tenant
      { weight: 1, arbitrary: fc.constant('UPPER') },
      { weight: 1, arbitrary: oddString },
    );
  }
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant('declined') },
    { weight: 1, arbitrary: fc.constant('unknown') },
    { weight: 5, arbitrary: oddString },
  );
};

function fillRoute(route: string, values: Record<string, string | null>): string {
  const segments = route.split('/').map((segment) => {
    const name = /^\{(\w+)\}$/.exec(segment)?.[1];
    if (!name) return segment;
    const value = values[name];
    if (name === 'tenantId' && value === null) return tenantId;
    if (name === 'tenantId' && value === 'UPPER') return tenantId.toUpperCase();
    if (name === 'accessRequestId' && value === 'declined') return grantId;
    if (name === 'accessRequestId' && value === 'unknown') return `${tenantId}.${newRequestId(new Date())}`;
    if (value === 'declined') return declinedId;
    if (value === 'unknown') return newRequestId(new Date());
    return encodeURIComponent(value ?? '');
  });
  return `/api/${segments.join('/')}`;
}

const skipTokens = fc.oneof(
  oddString,
  fc.constantFrom(
    // The Table SDK's token wrapped as the service used to hand it out: the 500 of issue 9.
    encodeContinuation({ t: 'x' }),
    encodeContinuation({ t: Buffer.from('{"nextPartitionKey":5}').toString('base64') }),
    encodeContinuation({ t: Buffer.from('{"nextPartitionKey":{"a":1}}').toString('base64') }),
    encodeContinuation(null),
  ),
  fc.constant('issued'),
  fc.jsonValue({ maxDepth: 3 }).map(encodeContinuation),
  fc
    .tuple(
      fc.constantFrom(TABLES.requests, TABLES.restrictions, TABLES.audit),
      fc.constantFrom('own', 'other'),
      fc.oneof(oddString, fc.integer(), fc.double(), fc.constant('\ud800'), fc.constant(2 ** 60)),
    )
    .map(([table, whose, after]) => ({ table, whose, after })),
);

const topValue = fc.oneof(
  fc.oneof(fc.integer(), fc.double(), fc.bigInt(), fc.integer({ min: 1, max: 200 })).map(String),
  fc.constantFrom('0', '1', '200', '201', '1e2', '0x10', ' 5', 'NaN', 'Infinity', '٣', '1.0', ''),
);
const dateValue = fc.oneof(
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom(
    '2026-02-30T00:00:00Z',
    '2026-01-01',
    '2026-01-01T00:00:00+14:00',
    '2026-01-01T00:00:00.123456789Z',
    '+275760-09-13T00:00:00Z',
    '0000-01-01T00:00:00Z',
    'yesterday',
  ),
);
const filterValue = fc.constantFrom(
  ...REQUEST_STATUSES,
  ...REQUEST_TYPES,
  'RECEIVED',
  'dsr.created',
  'admin@contoso.com',
  "o'neil",
  "' or PartitionKey ne '",
);
/** Any value for any key: what a key's own values do not reach. */
const queryValue = fc.oneof(skipTokens, oddString, topValue, dateValue, filterValue);
/** Mostly keys the lists know, with values of their kind, so that cases get past validation to storage. */
const queryPair: fc.Arbitrary<[string, unknown]> = fc.oneof(
  fc.tuple(fc.constant('skipToken'), skipTokens),
  fc.tuple(fc.constant('top'), topValue),
  fc.tuple(fc.constantFrom('from', 'to'), dateValue),
  fc.tuple(fc.constantFrom('status', 'type', 'actor', 'action'), fc.oneof(filterValue, oddString)),
  fc.tuple(fc.oneof(fc.constantFrom('skipToken', 'top', 'from', 'status'), oddString), queryValue),
);
const queryArb = fc.array(queryPair, { maxLength: 4 });

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json;charset=latin1',
      'text/plain',
      'application/xml',
      'application/jsonp',
      'application/merge-patch+json',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
    ),
  },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

interface BodyCase {
  contentType: string | undefined;
  text: string;
}

const bodyArb = (op: ApiOperation): fc.Arbitrary<BodyCase> => {
  const examples = EXAMPLE_BODIES[op.operationId] ?? [];
  const json = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }),
    ...(examples.length > 0
      ? [
          fc.constantFrom(...examples),
          fc
            .tuple(fc.constantFrom(...examples), fc.array(mutation, { minLength: 1, maxLength: 3 }))
            .map(([example, mutations]) => mutate(example, mutations)),
        ]
      : []),
  );
  const text = fc.oneof(
    { weight: 6, arbitrary: json.map((value) => JSON.stringify(value) ?? 'null') },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.string({ maxLength: 60 }),
        fc.constantFrom(
          '',
          '{',
          "{'reason':'x'}",
          'NaN',
          'undefined',
          '{"reason":"x"} trailing',
          '\ufeff{"reason":"x"}',
        ),
      ),
    },
    // Nesting far deeper than any value above, written as text: [[[…]]] and {"a":{"a":…}} inside a field.
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.integer({ min: 1000, max: 20_000 }),
          fc.boolean(),
          fc.constantFrom('reason', 'subject', 'notes'),
        )
        .map(([depth, arrays, field]) => {
          const [open, close] = arrays ? ['[', ']'] : ['{"a":', '}'];
          return `{"${field}":${open.repeat(depth)}1${close.repeat(depth)}}`;
        }),
    },
    // Over 64 KiB: 413 before anything is read further.
    { weight: 1, arbitrary: fc.constant(JSON.stringify({ reason: 'x'.repeat(70 * 1024) })) },
  );
  return fc.record({ contentType, text });
};

const idempotencyKey = fc.oneof(
  fc.constant(undefined),
  fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
  fc.constantFrom(' ', 'a b', 'x'.repeat(256), 'é'),
);

interface FuzzCase {
  params: Record<string, string | null>;
  query: [string, unknown][];
  body: BodyCase | undefined;
  idempotencyKey: string | undefined;
}

const caseArb = ({ route, method, op }: Operation): fc.Arbitrary<FuzzCase> => {
  const names = [...route.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  return fc.record({
    params: fc.record(Object.fromEntries(names.map((name) => [name, pathValue(name)]))),
    query: queryArb,
    // fetch sends no body with GET; other methods get one whether or not they declare it.
    body: method === 'GET' ? fc.constant(undefined) : bodyArb(op),
    idempotencyKey: op.idempotent ? idempotencyKey : fc.constant(undefined),
  });
};

function skipTokenText(value: { table: string; whose: string; after: unknown }): string {
  const scope = listScope(value.table, value.whose === 'own' ? tenantId : otherTenantId);
  return issueContinuation(scope, { after: value.after });
}

function queryText(query: [string, unknown][]): string {
  const params = new URLSearchParams();
  for (const [key, value] of query) {
    let text: string;
    if (value === 'issued') text = issuedTokens[key.length % issuedTokens.length]!;
    else if (typeof value === 'object' && value !== null) text = skipTokenText(value as never);
    else text = String(value);
    // URLSearchParams turns a lone surrogate into U+FFFD, as any client would have to.
    params.append(key, text);
  }
  return params.toString();
}

function expectErrorShape(status: number, headers: Headers, body: unknown, context: string) {
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } })?.error;
  if (!error || typeof error.message !== 'string' || !ERROR_CODES.includes(error.code as ErrorCode)) {
    throw new Error(`${context}: ${status} without the error shape: ${JSON.stringify(body)?.slice(0, 300)}`);
  }
  expect(statusOf(error.code as ErrorCode)).toBe(status);
  if (error.details !== undefined) {
    expect(error.details).toEqual(
      expect.arrayContaining([expect.objectContaining({ message: expect.any(String) })]),
    );
    for (const detail of error.details as { target?: unknown }[]) {
      expect(['string', 'undefined']).toContain(typeof detail.target);
    }
  }
  expect(headers.get('x-request-id')).toEqual(expect.any(String));
}

// ---- Properties ------------------------------------------------------------------------------------------------

describe('HTTP, through the local host', () => {
  beforeAll(startHttp, 60_000);
  afterAll(stopHttp);

  describe("skipToken: only the service's own token for this list is read", () => {
    const lists = { dsr: TABLES.requests, restrictions: TABLES.restrictions, audit: TABLES.audit };

    it.each([
      ['the Table SDK token of old, not base64 JSON', () => encodeContinuation({ t: 'x' })],
      [
        'the Table SDK token of old, with a number for a partition key',
        () => encodeContinuation({ t: Buffer.from('{"nextPartitionKey":5}').toString('base64') }),
      ],
      ['garbage', () => 'garbage!'],
      [
        'a position with a lone surrogate',
        (table: string) => issueContinuation(listScope(table, tenantId), { after: '\ud800' }),
      ],
    ])('answers %s with 400 ValidationFailed on skipToken, on every list', async (_case, token) => {
      for (const [list, table] of Object.entries(lists)) {
        const answer = await send({
          method: 'GET',
          path: `/api/tenants/${tenantId}/${list}`,
          query: new URLSearchParams({ skipToken: token(table) }).toString(),
        });
        expect({ list, status: answer.status, body: answer.body }).toEqual({
          list,
          status: 400,
          body: {
            error: expect.objectContaining({
              code: 'ValidationFailed',
              details: [expect.objectContaining({ target: expect.stringMatching(/skipToken$/) })],
            }),
          },
        });
      }
    });

    it("refuses a tenant's nextLink token on another tenant's list, and reads it on its own", async () => {
      for (const [list, token] of [
        ['dsr', issuedTokens[0]!],
        ['audit', issuedTokens[1]!],
      ] as const) {
        const query = new URLSearchParams({ skipToken: token, top: '1' }).toString();
        const foreign = await send(
          { method: 'GET', path: `/api/tenants/${otherTenantId}/${list}`, query },
          otherAdminToken,
        );
        expect(foreign.status).toBe(400);
        expect(foreign.body).toMatchObject({
          error: { code: 'ValidationFailed', details: [{ target: 'skipToken' }] },
        });
        const own = await send({ method: 'GET', path: `/api/tenants/${tenantId}/${list}`, query });
        expect(own.status).toBe(200);
        expect((own.body as { value: unknown[] }).value).toHaveLength(1);
      }
    });

    it('refuses a row-key token of the right tenant that points into the requests list from another list', async () => {
      const token = issueContinuation(listScope(TABLES.restrictions, tenantId), { after: declinedId });
      const answer = await send({
        method: 'GET',
        path: `/api/tenants/${tenantId}/dsr`,
        query: `skipToken=${token}`,
      });
      expect(answer.status).toBe(400);
    });
  });

  describe('every HTTP operation, fuzzed', () => {
    it('answers every method a route does not declare with 405 MethodNotAllowed and Allow', async () => {
      for (const fn of functionRegistry) {
        if (fn.kind !== 'http') continue;
        const path = fillRoute(fn.route, {
          tenantId: null,
          requestId: 'declined',
          token: 'x',
          accessRequestId: 'x',
          alertRequestId: 'x',
        });
        for (const method of HTTP_METHODS.filter((m) => !fn.operations[m])) {
          const body =
            method === 'GET'
              ? {}
              : { headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') };
          const answer = await send({ method, path, ...body });
          expect({ method, path, status: answer.status }).toEqual({ method, path, status: 405 });
          expectErrorShape(answer.status, answer.headers, answer.body, `${method} ${path}`);
          expect(answer.headers.get('allow')).toBe(Object.keys(fn.operations).join(', '));
        }
      }
    });

    it('has a valid example body for every operation that takes a body', () => {
      for (const { op } of operations.filter((o) => o.op.body)) {
        const examples = EXAMPLE_BODIES[op.operationId];
        expect({ operationId: op.operationId, hasExamples: (examples?.length ?? 0) > 0 }).toEqual({
          operationId: op.operationId,
          hasExamples: true,
        });
        for (const example of examples!) expect(op.body!.safeParse(example).success).toBe(true);
      }
    });

    it.each(operations.map((o, i) => [`${o.method} /api/${o.route}`, o, i] as const))(
      '%s answers malformed input with 4xx in the error shape, never 5xx',
      async (name, operation, index) => {
        const counts = new Map<number, number>();
        statuses.set(name, counts);
        await fc.assert(
          fc.asyncProperty(caseArb(operation), async (fuzz) => {
            const path = fillRoute(operation.route, fuzz.params);
            const query = queryText(fuzz.query);
            const headers: Record<string, string> = {};
            if (fuzz.body?.contentType) headers['content-type'] = fuzz.body.contentType;
            if (fuzz.idempotencyKey !== undefined) headers['idempotency-key'] = fuzz.idempotencyKey;
            const call: Call = {
              method: operation.method,
              path,
              query,
              headers,
              ...(fuzz.body ? { body: Buffer.from(fuzz.body.text, 'utf8') } : {}),
            };
            const answer = await send(
              call,
              operation.op.access.kind === 'operator' ? operatorToken : adminToken,
            );
            counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1);
            const context = `${operation.method} ${path}?${query}`;
            if (answer.status >= 500) {
              throw new Error(
                `${context} answered ${answer.status}: ${JSON.stringify(answer.body)?.slice(0, 300)}`,
              );
            }
            if (answer.status === 431 && urlOf(call).length > SERVER_URL_LIMIT - 1024) return;
            if (answer.status >= 400) {
              expectErrorShape(answer.status, answer.headers, answer.body, context);
            } else if (operation.method !== 'GET') {
              const id = (answer.body as { id?: unknown })?.id;
              if (operation.op.operationId === 'setOperatorAccessPolicy') policyChanged = true;
              if (operation.op.operationId.endsWith('MyAdminContact')) contactWritten = true;
              if (operation.op.operationId === 'publishTerms') termsPublished = true;
              if (['acceptTerms', 'withdrawMyTermsAcceptance'].includes(operation.op.operationId)) {
                termsAccepted = true;
              }
              // Every create under a key claims it once (a request, an operator access request).
              if (operation.op.idempotent && typeof id === 'string' && fuzz.idempotencyKey !== undefined) {
                if (!keyed.has(id)) createdWithKey += 1;
                keyed.add(id);
              }
              if (operation.op.operationId === 'createDataSubjectRequest' && typeof id === 'string') {
                created.add(id);
              } else if (typeof id === 'string') {
                decided.add(id);
              }
            }
          }),
          { seed: SEED + index, numRuns: RUNS },
        );
      },
      120_000,
    );

    it('wrote nothing but the requests that 2xx answers created or decided, with their audit events', async () => {
      await settled(created);
      const changes = differences(before, await snapshotTenants(httpAccounts(), [tenantId])).map(parseChange);
      const allowed = new Set([...created, ...decided]);
      const inTable = (table: string, what: Change['what']) =>
        changes.filter((c) => c.account === tenant.geography && c.table === table && c.what === what);

      expect(changes.filter((c) => c.what === 'removed')).toEqual([]);
      // Each created request is one new row; a changed one was created or decided by a 2xx answer.
      expect(
        inTable(TABLES.requests, 'added')
          .map((c) => c.rowKey)
          .sort(),
      ).toEqual([...created].sort());
      for (const change of inTable(TABLES.requests, 'changed')) expect(allowed).toContain(change.rowKey);
      expect(inTable(TABLES.idempotency, 'added').length).toBeLessThanOrEqual(createdWithKey);
      // Audit rows (events, id markers, block heads) change only with events about those requests.
      const events = (await host.services.audit.list(tenant, {}, { top: 200 })).items.slice(auditBefore);
      for (const event of events) {
        if (policyChanged && event.action === 'operatorAccess.policyChanged') continue;
        if (termsPublished && event.action === 'terms.published') continue;
        if (termsAccepted && ['terms.accepted', 'terms.withdrawn'].includes(event.action)) continue;
        // Operator reads under the grant are audited against it.
        expect([...allowed, grantId]).toContain(event.target.id);
      }
      // Operator access rows: the grant (revoked by a 2xx), and the policy row after a 2xx PUT.
      for (const change of [
        ...inTable(TABLES.operatorAccess, 'added'),
        ...inTable(TABLES.operatorAccess, 'changed'),
      ]) {
        if (change.rowKey === '~policy') expect(policyChanged).toBe(true);
        else expect([...allowed].map((id) => id.slice(id.indexOf('.') + 1))).toContain(change.rowKey);
      }
      const expected: string[] = [
        TABLES.requests,
        TABLES.audit,
        TABLES.idempotency,
        TABLES.operatorAccess,
        // The caller's own admin contact: a record, its lookups and its expiry entry (after a DELETE).
        ...(contactWritten || termsAccepted
          ? [TABLES.records, TABLES.recordLookup, TABLES.expiry, TABLES.tenantSecrets, TABLES.recordCounts]
          : []),
        ...(termsPublished ? [TABLES.terms] : []),
      ];
      const elsewhere = changes.filter((c) => c.account !== tenant.geography || !expected.includes(c.table));
      expect(elsewhere).toEqual([]);
      if (allowed.size === 0 && !contactWritten && !policyChanged && !termsPublished && !termsAccepted) {
        expect(changes).toEqual([]);
      }
    }, 60_000);
  });
});

// ---- Queue messages ---------------------------------------------------------------------------------------------

// The queue functions run here on a global account of their own: Azurite's `privacyin`, with geography IN
// closed for these services. No local host polls its queues, and no other test reads its poison queues (the
// dsr-work tests peek 32 poison messages of devstoreaccount1, which hundreds of fuzz messages would bury).
const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as AzuritePorts;
const queueServices = createServices(
  testConfig({ STORAGE_GLOBAL: azuriteConnectionString(accountNameOf('IN'), ports) }, ['STORAGE_IN']),
);
/** A tenant nobody provisions: every event naming it is refused, and nothing of it may appear anywhere. */
const UNKNOWN_TENANT = 'dead0000-0000-4000-8000-00000000f022';

let eventTenant: TenantScope;
let endingTenant: TenantScope;
let workRequestId: string;
let poisonPut: jest.SpiedFunction<PoisonQueue['put']>;
/** What the tenants hold after the last message that was processed: a poisoned one must leave exactly that. */
let baseline: StorageSnapshot;
const queueOutcomes = new Map<string, { processed: number; poisoned: number }>();

const deliver = (fn: QueueFunction, message: unknown) =>
  invokeQueue(fn, queueServices, message, invocationContext(fn.name, { dequeueCount: 1 }));

const queueAccounts = (): AccountConnections => ({
  global: queueServices.config.storage.global,
  [eventTenant.geography]: queueServices.config.storage.geographies[eventTenant.geography]!,
  [endingTenant.geography]: queueServices.config.storage.geographies[endingTenant.geography]!,
});

const tenantsNow = () => snapshotTenants(queueAccounts(), [eventTenant.tenantId, endingTenant.tenantId]);

/** Takes the poison messages off the queue (this file is its only user) and gives them back. */
async function drainPoison(queueName: string): Promise<PoisonedMessage[]> {
  const queue = await queueServices.storage.global.queue(poisonQueueOf(queueName));
  const drained: PoisonedMessage[] = [];
  for (;;) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
    if (receivedMessageItems.length === 0) return drained;
    for (const item of receivedMessageItems) {
      drained.push(decodeMessage(item.messageText) as PoisonedMessage);
      await queue.deleteMessage(item.messageId, item.popReceipt);
    }
  }
}

/**
 * Delivers one raw queue text as the host would (base64 decoded, JSON when it parses) and checks the
 * outcome: the function returns (a throw would mean redelivery of a message that can never succeed), and
 * the message is either processed or poisoned with a reason, and then nothing of the tenants changed.
 */
async function deliverAndCheck(fn: QueueFunction, raw: string, mustPoison: (message: unknown) => boolean) {
  // A text the queue would not take is no message a queue function can receive.
  fc.pre(raw.length <= QUEUE_MESSAGE_LIMIT);
  const message = decodeMessage(raw);
  const calls = poisonPut.mock.calls.length;
  try {
    await deliver(fn, message);
  } catch (error) {
    throw new Error(`${fn.name} threw (the message would be redelivered): ${describeError(error)}`);
  }
  const reasons = poisonPut.mock.calls.slice(calls).map((call) => call[2]);
  const outcome = queueOutcomes.get(fn.name) ?? { processed: 0, poisoned: 0 };
  queueOutcomes.set(fn.name, outcome);
  const now = await tenantsNow();
  if (reasons.length === 0) {
    expect({ poisoned: false, expected: mustPoison(message) }).toEqual({ poisoned: false, expected: false });
    outcome.processed += 1;
    baseline = now;
    return;
  }
  outcome.poisoned += 1;
  for (const reason of reasons) expect(reason).toMatch(/\S/);
  const kept = await drainPoison(fn.queueName);
  expect(kept.map((m) => m.reason)).toEqual(reasons);
  // The one write a poisoned event may make: its payload, sealed in its tenant's geography, with the
  // expiry entry that deletes it, both named by the poison message's reference.
  const references = kept.flatMap((m) => (m.reference ? [m.reference] : []));
  const setAside = (change: string) =>
    references.some((reference) => {
      const blob = reference.slice('poisoned-events/'.length);
      return change.endsWith(`/${reference}`) || change.endsWith(`_e_${blob.replaceAll('/', '!')}`);
    });
  // Sealing needs the tenant's pseudonymisation key, made on first use.
  const keyMade = (change: string) => /^rows: added \w+\/tenantSecrets\/[^/]+\/pseudonymKey$/.test(change);
  expect(differences(baseline, now).filter((change) => !setAside(change) && !keyMade(change))).toEqual([]);
  baseline = now;
}

const describeError = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message.slice(0, 300)}` : String(error);

const base64 = (value: unknown) => Buffer.from(JSON.stringify(value) ?? 'null', 'utf8').toString('base64');

/** A queue text: base64 JSON of `document` mostly, else text that is not base64, or base64 of no JSON. */
const rawMessage = (document: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { weight: 6, arbitrary: document.map(base64) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map(base64) },
    { weight: 1, arbitrary: fc.oneof(oddString, fc.string({ unit: 'binary', maxLength: 80 })) },
    {
      weight: 1,
      arbitrary: fc
        .oneof(oddString, fc.constantFrom('{', '{"type":', 'undefined', '\ufeff{}'))
        .map((text) => Buffer.from(text, 'utf8').toString('base64')),
    },
  );

const badDate = fc.constantFrom(
  '2026-02-30T00:00:00Z',
  '2026-13-01T00:00:00Z',
  '2026-01-01',
  '2026-01-01T00:00:00',
  '+275760-09-13T00:00:00Z',
  'yesterday',
  '',
);
const edgeDate = fc.constantFrom(
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999999999Z',
  '2026-01-01T00:00:00-23:59',
  '1970-01-01T00:00:00Z',
);
/**
 * 16 KiB of data is allowed; these are more, up to what a queue message can carry (64 KiB of base64 text).
 * Those within a few hundred bytes of the limit have tests of their own below.
 */
const bigData = fc.constantFrom(17 * 1024, 40 * 1024, 46 * 1024).map((size) => ({ text: 'x'.repeat(size) }));
/** The most text an Azure queue message holds (base64 of the JSON, as host.json's messageEncoding says). */
const QUEUE_MESSAGE_LIMIT = 64 * 1024;
/** Values an event field is set to: odd ones of every kind, and those issue 9 names. */
const fieldValue = (field: string): fc.Arbitrary<unknown> => {
  const named: Record<string, fc.Arbitrary<unknown>> = {
    tenantId: fc.constantFrom(UNKNOWN_TENANT, 'UPPER', 'not-a-guid', ''),
    recordId: fc.oneof(twoKib, fc.constantFrom('r/1', 'r#1', 'r?1', 'r\\1', 'R-1', 'x'.repeat(200))),
    category: fc.constantFrom('browserHistory', 'DEVICE', 'adminContact', ''),
    data: fc.oneof(wide, bigData, fc.constant({ nested: { deeper: [1, { a: null }] } })),
    occurredAt: fc.oneof(badDate, edgeDate),
    deletedAt: fc.oneof(badDate, edgeDate),
    endedAt: fc.oneof(badDate, edgeDate),
    countryCode: fc.constantFrom('BR', 'IN', 'de', 'XX', 'DEU', ''),
    deviceName: fc.oneof(controls, twoKib, fc.constantFrom('PC/1', 'PC#1', 'ＰＣ')),
    subject: fc.constantFrom(
      {},
      { upn: 'x'.repeat(2048) },
      { objectId: 'not-a-guid' },
      { email: 'ünï@例え.jp' },
      { upn: 'a@b.c', extra: 1 },
    ),
  };
  return fc.oneof({ weight: 2, arbitrary: named[field] ?? oddValue }, { weight: 1, arbitrary: oddValue });
};

interface EventCase {
  type: string;
  fields: readonly [string, unknown][];
  mutations: readonly Mutation[];
}

/** One valid event of each type, for the tenant given; the fuzz changes fields of it. */
function baseEvent(type: string, eventId: string): Record<string, unknown> {
  const envelope = { type, tenantId: eventTenant.tenantId, eventId };
  const subject = { upn: 'adele.vance@contoso.com', objectId: '8f6a1c0e-3b1d-4f2a-9c77-2f1e0d9b6a55' };
  const at = '2026-01-10T08:00:00Z';
  switch (type) {
    case 'record.upserted':
      return {
        ...envelope,
        category: 'directory',
        recordId: 'r-1',
        subject,
        occurredAt: at,
        data: { department: 'Sales' },
        deviceName: 'PC-1',
      };
    case 'record.deleted':
      return { ...envelope, category: 'directory', recordId: 'r-1', deletedAt: at };
    case 'subject.deleted':
      return { ...envelope, subject, deletedAt: at };
    case 'device.retired':
      return { ...envelope, deviceName: 'PC-1', deletedAt: at };
    case 'tenant.provisioned':
      // A new tenant each time (its id derives from the event id), so a valid one provisions someone else.
      return {
        ...envelope,
        tenantId: deterministicUuid(eventId),
        countryCode: 'DE',
        displayName: 'Fabrikam',
      };
    case 'tenant.subscriptionEnded':
      return { ...envelope, tenantId: endingTenant.tenantId, endedAt: at };
    case 'records.upserted': {
      // One item: whatever the fuzz does to it, the batch is stored or poisoned whole (an item poisoned on
      // its own leaves only its sealed payload). Batches mixing valid and invalid items: recordBatches.test.ts.
      const { type: _type, tenantId: _tenantId, ...item } = baseEvent('record.upserted', `${eventId}-item`);
      return {
        ...envelope,
        records: [{ ...item, category: 'deviceHealth', data: { batteryHealthPercent: 91 } }],
      };
    }
    default:
      throw new Error(`No base event for the event type ${type}: add one, so the fuzz covers it.`);
  }
}

const deterministicUuid = (seed: string) => {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
};

const EVENT_TYPES = personalDataEventSchema.options.map((option) => option.shape.type.value);
const EVENT_FIELDS = [
  'tenantId',
  'eventId',
  'type',
  'category',
  'recordId',
  'subject',
  'occurredAt',
  'data',
  'deviceName',
  'deletedAt',
  'countryCode',
  'displayName',
  'endedAt',
  'records',
];

const eventCase: fc.Arbitrary<EventCase> = fc.record({
  type: fc.constantFrom(...EVENT_TYPES),
  fields: fc.oneof(
    { weight: 1, arbitrary: fc.constant([]) },
    {
      weight: 3,
      arbitrary: fc.array(
        fc
          .constantFrom(...EVENT_FIELDS)
          .chain((field) => fieldValue(field).map((value) => [field, value] as [string, unknown])),
        { minLength: 1, maxLength: 3 },
      ),
    },
  ),
  mutations: fc.oneof(
    { weight: 3, arbitrary: fc.constant([]) },
    { weight: 1, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 2 }) },
  ),
});

function eventOf(fuzz: EventCase, eventId: string): unknown {
  const event = baseEvent(fuzz.type, eventId);
  for (const [field, value] of fuzz.fields) {
    event[field] = value === 'UPPER' ? String(event.tenantId).toUpperCase() : value;
  }
  // Provisioning the tenant that must stay unknown would make it known: a new tenant stands in for it.
  if (fuzz.type === 'tenant.provisioned' && event.tenantId === UNKNOWN_TENANT)
    event.tenantId = deterministicUuid(eventId);
  return mutate(event, fuzz.mutations);
}

/** Refused by rule: the schema refuses it (or an item of its batch), or it names a tenant that does not exist. */
const refusedEvent = (message: unknown) => {
  const parsed = personalDataEventSchema.safeParse(message);
  if (!parsed.success) return true;
  const { data } = parsed;
  if (
    data.type === 'records.upserted' &&
    data.records.some((item) => !parseBatchItem(data.tenantId, item).success)
  )
    return true;
  return data.type !== 'tenant.provisioned' && data.tenantId === UNKNOWN_TENANT;
};

describe('queue messages, fuzzed: processed, or poisoned with a reason and nothing written; never thrown', () => {
  beforeAll(async () => {
    const provision = async (displayName: string) => {
      const { entry } = await queueServices.directory.provision({
        tenantId: randomUUID(),
        countryCode: 'DE',
        displayName,
      });
      return queueServices.directory.scopeOf(entry);
    };
    [eventTenant, endingTenant] = await Promise.all([provision('Contoso'), provision('Northwind')]);
    for (const queue of [QUEUES.personalDataEvents, QUEUES.dsrWork, QUEUES.retentionWork])
      await drainPoison(queue);
    const request = await queueServices.requests.create(
      eventTenant,
      {
        type: 'export',
        regulation: 'GDPR',
        subject: { upn: 'adele.vance@contoso.com' },
        dataSubjectType: 'other',
      },
      { actor: { type: 'user', id: 'admin', upn: 'admin@contoso.com' }, correlationId: 'fuzz' },
    );
    workRequestId = request.id;
    poisonPut = jest.spyOn(queueServices.poison, 'put');
    baseline = await tenantsNow();
  }, 60_000);

  afterAll(() => {
    poisonPut?.mockRestore();
    if (REPORT) console.log(`Queue fuzz outcomes: ${JSON.stringify(Object.fromEntries(queueOutcomes))}`);
  });

  it('has a base event for every event type of the schema', () => {
    for (const type of EVENT_TYPES) expect(() => baseEvent(type, 'e')).not.toThrow();
  });

  it('personal-data-events: every event type, malformed every way', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        rawMessage(eventCase.map((fuzz) => eventOf(fuzz, `fuzz-${SEED}-${(n += 1)}`))),
        (raw) => deliverAndCheck(personalDataEvents, raw, refusedEvent),
      ),
      { seed: SEED, numRuns: RUNS * 2 },
    );
  }, 120_000);

  it('dsr-work: malformed steps are poisoned, steps of unknown tenants and requests too', async () => {
    const work = fc
      .record({
        tenantId: fc.oneof(
          { weight: 3, arbitrary: fc.constant('own') },
          { weight: 1, arbitrary: fieldValue('tenantId') },
        ),
        requestId: fc.oneof(
          { weight: 2, arbitrary: fc.constant('own') },
          { weight: 1, arbitrary: fc.constant(newRequestId(new Date())) },
          { weight: 2, arbitrary: oddString },
          { weight: 1, arbitrary: oddValue },
        ),
        step: fc.oneof(
          { weight: 3, arbitrary: fc.constantFrom('discover', 'fulfil') },
          { weight: 1, arbitrary: oddValue },
        ),
        extra: fc.option(oddValue, { nil: undefined }),
      })
      .map(({ tenantId, requestId, step, extra }) => ({
        tenantId:
          tenantId === 'own'
            ? eventTenant.tenantId
            : tenantId === 'UPPER'
              ? eventTenant.tenantId.toUpperCase()
              : tenantId,
        requestId: requestId === 'own' ? workRequestId : requestId,
        step,
        ...(extra === undefined ? {} : { extra }),
      }));
    const refused = (message: unknown) => {
      const parsed = dsrWorkMessageSchema.safeParse(message);
      return (
        !parsed.success || parsed.data.tenantId === UNKNOWN_TENANT || parsed.data.requestId !== workRequestId
      );
    };
    await fc.assert(
      fc.asyncProperty(rawMessage(work), (raw) => deliverAndCheck(dsrWork, raw, refused)),
      { seed: SEED + 1, numRuns: RUNS },
    );
  }, 120_000);

  it('retention-work: malformed messages are poisoned; a tenant that does not exist has nothing to purge', async () => {
    const work = fc
      .record({
        tenantId: fc.oneof(
          { weight: 3, arbitrary: fc.constant('own') },
          { weight: 1, arbitrary: fieldValue('tenantId') },
        ),
        day: fc.oneof(
          { weight: 2, arbitrary: fc.constant('2026-01-10') },
          { weight: 1, arbitrary: fc.oneof(badDate, edgeDate, oddValue) },
        ),
      })
      .map(({ tenantId, day }) => ({
        tenantId:
          tenantId === 'own'
            ? eventTenant.tenantId
            : tenantId === 'UPPER'
              ? eventTenant.tenantId.toUpperCase()
              : tenantId,
        day,
      }));
    await fc.assert(
      fc.asyncProperty(rawMessage(work), (raw) =>
        deliverAndCheck(
          retentionWork,
          raw,
          (message) => !retentionWorkMessageSchema.safeParse(message).success,
        ),
      ),
      { seed: SEED + 2, numRuns: RUNS },
    );
  }, 120_000);

  // Messages whose poison record once could not fit a queue message (the record embedded the whole message,
  // re-serialised): they threw, and were redelivered until the host poisoned them without a reason. A poison
  // record now keeps ids and a reference for events and at most 4 KiB of other messages, so they are
  // poisoned with their reason like any other.
  it('an invalid event that fills a queue message to its limit is poisoned with its reason', async () => {
    const event = { ...baseEvent('record.upserted', 'near-limit'), data: { text: '' } };
    event.data.text = 'x'.repeat(Math.floor(((QUEUE_MESSAGE_LIMIT - 64 - base64(event).length) * 3) / 4));
    const raw = base64(event);
    expect(raw.length).toBeLessThanOrEqual(QUEUE_MESSAGE_LIMIT);
    await deliverAndCheck(personalDataEvents, raw, () => true);
  });

  it('20 KiB of binary that is not UTF-8 is poisoned with its reason by every queue function', async () => {
    const raw = Buffer.alloc(20 * 1024, 0xff).toString('base64');
    for (const fn of [personalDataEvents, dsrWork, retentionWork]) await deliverAndCheck(fn, raw, () => true);
  });

  it('an event of 60 KiB of data handed to the function directly is poisoned with its reason', async () => {
    const event = { ...baseEvent('record.upserted', 'sixty-kib'), data: { text: 'x'.repeat(60 * 1024) } };
    const calls = poisonPut.mock.calls.length;
    await deliver(personalDataEvents, event);
    expect(poisonPut.mock.calls.slice(calls).map((call) => call[2])).toEqual([expect.stringMatching(/\S/)]);
    expect(await drainPoison(personalDataEvents.queueName)).toHaveLength(1);
    baseline = await tenantsNow();
  });

  it('wrote nothing anywhere for the tenant that does not exist', async () => {
    expect(await queueServices.directory.get(UNKNOWN_TENANT)).toBeUndefined();
    const everywhere = {
      global: queueServices.config.storage.global,
      ...queueServices.config.storage.geographies,
    };
    const left = await snapshotTenants(everywhere, [UNKNOWN_TENANT]);
    expect([...left.rows.keys(), ...left.blobs.keys()]).toEqual([]);
  });
});
