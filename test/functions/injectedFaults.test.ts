// Injected storage faults (issue 9): Table, Blob and Queue requests answer 500, 503 (with and without
// Retry-After), 412 on conditional Table writes, or time out, at random with fixed seeds, along the request, event and purge paths;
// messages are delivered as the host delivers them (up to 5 times). Every request still ends completed —
// with the very state of a clean run — or failed with a code and a reason; events end as they would have;
// a purge that did not finish does on its next run. This file's global account is devstoreaccount1, so no
// local host of another test file consumes its queues.
import { randomUUID } from 'node:crypto';

import { dsrWork } from '../../functions/dsrWork';
import { personalDataEvents } from '../../functions/personalDataEvents';
import { azuriteConnectionString, DEV_ACCOUNT } from '../../local/azurite';
import { createServices, type Services } from '../../shared/composition';
import { invokeQueue } from '../../shared/hosting/invoke';
import { STALLED_AFTER_MS } from '../../shared/requests/requestRecovery';
import type { CreateRequestInput } from '../../shared/requests/dataSubjectRequest';
import type { DataSubject } from '../../shared/vocabulary/dataSubject';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import { QUEUES } from '../../shared/storage/names';
import { decodeMessage } from '../../shared/storage/queueMessages';
import { invocationContext } from '../support/invocation';
import { type Scenario, stateOf } from '../support/scenarioState';
import { StorageFaults } from '../support/storageFaults';
import { provisionedTenant, testConfig } from '../support/testStorage';

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
const config = testConfig({ STORAGE_GLOBAL: azuriteConnectionString(DEV_ACCOUNT, ports) });
let now = new Date('2026-03-01T10:00:00Z');
const clock = () => now;
const faults = new StorageFaults();
// The SDK's own retries, with its delays shortened: the same tries, without waiting seconds between them.
const flaky = createServices(config, {
  clock,
  storage: {
    ...faults.options(),
    tableRetry: { retryDelayInMs: 5, maxRetryDelayInMs: 20 },
    blobRetry: { retryDelayInMs: 5, maxRetryDelayInMs: 20 },
  },
});
const helper = createServices(config, { clock });
const admin = { actor: { type: 'user' as const, id: 'admin' }, correlationId: 't' };
/**
 * Seeds and fault rates per try: at 0.3 most operations get through the SDK's retries and the host's
 * redeliveries; at 0.6 some exhaust both, and their requests end failed.
 */
const RUNS: [seed: number, rate: number][] = [
  [11, 0.3],
  [23, 0.3],
  [37, 0.6],
];

const person = (name: string): DataSubject => ({
  objectId: randomUUID(),
  upn: `${name}-${randomUUID().slice(0, 6)}@contoso.com`,
});
const at = (day: number) => new Date(Date.UTC(2026, 1, day, 9)).toISOString();

const newTenant = (): Promise<TenantScope> => provisionedTenant(helper);

function upserts(tenant: TenantScope, subject: DataSubject, tag: string) {
  return (['directory', 'device', 'usage', 'alert'] as const).map((category, i) => ({
    type: 'record.upserted',
    tenantId: tenant.tenantId,
    eventId: `${tag}-${category}-${subject.objectId}`,
    category,
    recordId: `${category}-${subject.objectId}`,
    subject,
    occurredAt: at(1 + i),
    data: { note: `${category} ${tag}`, manager: 'someone.else@contoso.com' },
    deviceName: `PC-${subject.objectId!.slice(0, 4)}`,
  }));
}

/** Delivers a message as the host does: again after each failure, 5 times at most. */
async function deliver(
  services: Services,
  fn: typeof dsrWork,
  message: unknown,
): Promise<'done' | 'gave up'> {
  for (let dequeueCount = 1; dequeueCount <= 5; dequeueCount++) {
    try {
      await invokeQueue(fn, services, message, invocationContext(fn.name, { dequeueCount }));
      return 'done';
    } catch {
      // redelivered
    }
  }
  return 'gave up';
}

async function requestScenario(type: CreateRequestInput['type']): Promise<Scenario> {
  now = new Date('2026-03-01T10:00:00Z');
  const tenant = await newTenant();
  const people = [person('adele'), person('megan')];
  for (const subject of people) {
    for (const event of upserts(tenant, subject, 'seed')) await deliver(helper, personalDataEvents, event);
  }
  const created = await helper.requests.create(
    tenant,
    { type, regulation: 'GDPR', subject: { upn: people[0]!.upn! }, dataSubjectType: 'other' },
    admin,
  );
  return { tenant, people, requestId: created.id };
}

const work = (s: Scenario, step: 'discover' | 'fulfil') => ({
  tenantId: s.tenant.tenantId,
  requestId: s.requestId!,
  step,
});

/** Discovery, approval and fulfilment of the scenario's request on `services`. */
async function fulfil(services: Services, s: Scenario): Promise<void> {
  await deliver(services, dsrWork, work(s, 'discover'));
  const read = await helper.requests.get(s.tenant, s.requestId!);
  if (read.status === 'awaitingReview')
    await helper.requests.decide(s.tenant, s.requestId!, 'approve', admin);
  await deliver(services, dsrWork, work(s, 'fulfil'));
}

/** Runs the recovery timer (the clock moved on) and delivers what it queued, until the request ends. */
async function recovered(s: Scenario) {
  const start = now;
  try {
    for (let round = 0; round < 8; round++) {
      const request = await helper.requests.get(s.tenant, s.requestId!);
      if (request.status === 'completed' || request.status === 'failed') return request;
      if (request.status === 'awaitingReview') {
        await helper.requests.decide(s.tenant, s.requestId!, 'approve', admin);
      } else {
        now = new Date(now.getTime() + STALLED_AFTER_MS + 1000);
        await helper.recovery.recoverTenant(s.tenant, {
          tenants: 0,
          checked: 0,
          resumed: 0,
          failed: 0,
          failures: [],
        });
      }
      for (const message of await queuedWork(s.requestId!)) await deliver(helper, dsrWork, message);
    }
    return helper.requests.get(s.tenant, s.requestId!);
  } finally {
    now = start;
  }
}

/** The dsr-work messages waiting for one request (other tests' are left where they are). */
async function queuedWork(requestId: string): Promise<unknown[]> {
  const queue = await helper.storage.global.queue(QUEUES.dsrWork);
  const found: unknown[] = [];
  // Other test files leave their messages in this queue too: look through all of them (each hidden 2 s).
  for (let round = 0; round < 200; round++) {
    const { receivedMessageItems } = await queue.receiveMessages({
      numberOfMessages: 32,
      visibilityTimeout: 2,
    });
    for (const item of receivedMessageItems) {
      const message = decodeMessage(item.messageText) as { requestId?: string };
      if (message.requestId !== requestId) continue;
      found.push(message);
      await queue.deleteMessage(item.messageId, item.popReceipt);
    }
    if (receivedMessageItems.length === 0) break;
  }
  return found;
}

afterEach(() => faults.reset());
const requestOutcomes: Record<string, string[]> = {};
afterAll(() =>
  console.log(
    `injected faults: ${JSON.stringify(faults.injected)}; requests: ${JSON.stringify(requestOutcomes)}`,
  ),
);

describe('injected storage faults', () => {
  it.each(['export', 'access', 'delete', 'restrict'] as const)(
    'a %s request ends completed as a clean run does, or failed with a code and a reason',
    async (type) => {
      const clean = await requestScenario(type);
      await fulfil(helper, clean);
      const expected = await stateOf(helper, clean);
      const outcomes: string[] = [];
      for (const [seed, rate] of RUNS) {
        const scenario = await requestScenario(type);
        faults.flaky(seed, rate);
        await fulfil(flaky, scenario);
        faults.stopFaults();
        // What no delivery could finish, or even record as failed, the recovery timer picks up.
        const request = await recovered(scenario);
        outcomes.push(request.status);
        if (request.status === 'completed') {
          expect(await stateOf(helper, scenario)).toEqual(expected);
        } else {
          expect(request).toMatchObject({
            status: 'failed',
            failure: { code: expect.stringMatching(/^[A-Z][A-Za-z]+$/), reason: expect.any(String) },
          });
          expect(request.failure!.reason).not.toMatch(/injected|odata|ETIMEDOUT|http/i);
          // A failed request is retried once the faults are over, and then ends as a clean run does.
          await helper.requests.decide(scenario.tenant, scenario.requestId!, 'retry', admin);
          await deliver(
            helper,
            dsrWork,
            work(scenario, request.failure!.step === 'discover' ? 'discover' : 'fulfil'),
          );
          if (request.failure!.step === 'discover') {
            await helper.requests.decide(scenario.tenant, scenario.requestId!, 'approve', admin);
            await deliver(helper, dsrWork, work(scenario, 'fulfil'));
          }
          expect(await stateOf(helper, scenario)).toEqual({
            ...expected,
            // The failure and the retry are part of its history: the audit log says so.
            audit: expect.arrayContaining(expected.audit),
          });
        }
      }
      expect(outcomes.every((status) => status === 'completed' || status === 'failed')).toBe(true);
      requestOutcomes[type] = outcomes;
    },
    120_000,
  );

  it('record events end as they would have without faults', async () => {
    const setup = async () => {
      const tenant = await newTenant();
      const people = [person('lee'), person('nestor')];
      return { tenant, people };
    };
    const events = (s: Scenario) => [
      ...s.people.flatMap((subject, i) => upserts(s.tenant, subject, `e${i}`)),
      {
        type: 'record.deleted',
        tenantId: s.tenant.tenantId,
        eventId: `d-${s.tenant.tenantId}`,
        category: 'usage',
        recordId: `usage-${s.people[1]!.objectId}`,
        deletedAt: at(9),
      },
      {
        type: 'subject.deleted',
        tenantId: s.tenant.tenantId,
        eventId: `s-${s.tenant.tenantId}`,
        subject: { upn: s.people[0]!.upn },
        deletedAt: at(10),
      },
    ];
    const clean = await setup();
    for (const event of events(clean)) await deliver(helper, personalDataEvents, event);
    const expected = await stateOf(helper, clean);
    for (const [seed] of RUNS) {
      const scenario = await setup();
      faults.flaky(seed, 0.3);
      const outcomes = [];
      for (const event of events(scenario)) outcomes.push(await deliver(flaky, personalDataEvents, event));
      faults.stopFaults();
      expect(outcomes.every((o) => o === 'done')).toBe(true);
      expect(await stateOf(helper, scenario)).toEqual(expected);
    }
  }, 120_000);

  it('a purge disturbed by faults finishes on its next run', async () => {
    const setup = async () => {
      const scenario = await requestScenario('export');
      await fulfil(helper, scenario);
      return scenario;
    };
    const purge = async (services: Services, s: Scenario, day: string) => {
      now = new Date(`${day}T02:00:00Z`);
      try {
        await services.retention.purgeTenant({ tenantId: s.tenant.tenantId, day });
      } catch {
        // the run failed; the next day's run carries on
      } finally {
        now = new Date('2026-03-01T10:00:00Z');
      }
    };
    const clean = await setup();
    await purge(helper, clean, '2026-09-01');
    await purge(helper, clean, '2026-09-02');
    const expected = await stateOf(helper, clean);
    for (const [seed, rate] of RUNS) {
      const scenario = await setup();
      faults.flaky(seed, rate);
      await purge(flaky, scenario, '2026-09-01');
      faults.stopFaults();
      await purge(helper, scenario, '2026-09-02');
      const state = await stateOf(helper, scenario);
      // The purge's own audit events say what each run did: a disturbed run may have done less that day.
      expect({ ...state, audit: state.audit.filter((a) => a !== 'retention.purged') }).toEqual({
        ...expected,
        audit: expected.audit.filter((a) => a !== 'retention.purged'),
      });
    }
  }, 120_000);
});
