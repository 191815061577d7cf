// Crash at every step (issue 9, SPEC §4-§6: at-least-once): each queue and timer path runs once cleanly,
// counting its storage writes; then, for every N, a fresh setup runs it on an instance that dies right after
// its Nth write (N = 0: before the first), and a new instance redelivers it. The end state must equal the
// clean run's: nothing lost, nothing doubled, every expiry entry there. Writes are counted and failed by a
// pipeline policy on the Table, Blob and Queue clients (test/support/storageFaults.ts). This file's global
// account is Azurite's devstoreaccount1, so no local host of another test file consumes its queues.
import { randomUUID } from 'node:crypto';

import { dsrWork } from '../../functions/dsrWork';
import { personalDataEvents } from '../../functions/personalDataEvents';
import { azuriteConnectionString, DEV_ACCOUNT } from '../../local/azurite';
import { createServices, type Services } from '../../shared/composition';
import { invokeQueue } from '../../shared/hosting/invoke';
import type { CreateRequestInput } from '../../shared/requests/dataSubjectRequest';
import type { DataSubject } from '../../shared/vocabulary/dataSubject';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import { invocationContext } from '../support/invocation';
import { type Scenario, stateOf } from '../support/scenarioState';
import { InjectedCrash, StorageFaults } from '../support/storageFaults';
import { provisionedTenant, testConfig } from '../support/testStorage';

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
const config = testConfig({ STORAGE_GLOBAL: azuriteConnectionString(DEV_ACCOUNT, ports) });
let now = new Date('2026-03-01T10:00:00Z');
const clock = () => now;
const faults = new StorageFaults();
/** The instance that crashes: every storage request it makes goes through the faults. */
const crashing = createServices(config, { clock, storage: faults.options() });
/** Everything else: setting up, redelivering (a new instance each time), reading the end state. */
const helper = createServices(config, { clock });
const admin = { actor: { type: 'user' as const, id: 'admin', upn: 'admin@contoso.com' }, correlationId: 't' };

/**
 * Runs `path` cleanly once, then crashed after each of its writes in turn and redelivered; every end state
 * must be the clean one. Returns how many writes the path makes (the number of crash points less one).
 */
async function crashAtEveryWrite(
  setup: () => Promise<Scenario>,
  path: (services: Services, scenario: Scenario, attempt: number) => Promise<unknown>,
  /** What of the end state must equal the clean run's (default: all of it). */
  compared: (state: Awaited<ReturnType<typeof stateOf>>) => unknown = (state) => state,
): Promise<number> {
  const clean = await setup();
  faults.reset();
  await path(crashing, clean, 1);
  const writes = faults.writes;
  expect(writes).toBeGreaterThan(0);
  const expected = compared(await stateOf(helper, clean));
  for (let n = 0; n < writes; n++) {
    const scenario = await setup();
    faults.crashAfterWrite(n);
    const outcome = await path(crashing, scenario, 1).then(
      () => 'completed',
      (error: unknown) => (isCrash(error) ? 'crashed' : error),
    );
    const where = `crash after write ${n} of ${writes}`;
    if (outcome !== 'crashed' && outcome !== 'completed') throw new Error(`${where}: ${String(outcome)}`);
    const crashedAt = faults.log.slice(-2);
    faults.reset();
    // The host redelivers to another instance, which has none of the dead one's caches.
    await path(createServices(config, { clock }), scenario, 2);
    const state = compared(await stateOf(helper, scenario));
    if (JSON.stringify(state) !== JSON.stringify(expected)) {
      throw new Error(
        `${where} (${crashedAt.join(' | ')}):\n${JSON.stringify(state)}\nexpected\n${JSON.stringify(expected)}`,
      );
    }
  }
  const name = (expect.getState().currentTestName ?? 'path').replace(/^.*clean run /, '');
  crashPoints[name] = (crashPoints[name] ?? 0) + writes;
  return writes;
}

const isCrash = (error: unknown): boolean =>
  error instanceof InjectedCrash ||
  (error instanceof Error &&
    (error.cause instanceof InjectedCrash || /crashed (right after|before)/.test(error.message)));

const newTenant = (): Promise<TenantScope> => provisionedTenant(helper);

const person = (name: string): DataSubject => ({
  objectId: randomUUID(),
  upn: `${name}-${randomUUID().slice(0, 6)}@contoso.com`,
});

const at = (day: number) => new Date(Date.UTC(2026, 1, day, 9)).toISOString();

async function ingest(tenant: TenantScope, subject: DataSubject, extra = '') {
  for (const [category, day] of [
    ['directory', 1],
    ['device', 2],
    ['usage', 3],
    ['systemLog', 4],
    ['alert', 5],
  ] as const) {
    await helper.records.upsert(tenant, {
      category,
      recordId: `${category}-${subject.objectId}${extra}`,
      subject,
      occurredAt: at(day),
      data: { note: `${category} of ${subject.upn}`, manager: 'someone.else@contoso.com' },
      deviceName: `PC-${subject.objectId!.slice(0, 4)}`,
    });
  }
}

const deliver = (services: Services, message: unknown, attempt: number) =>
  invokeQueue(
    personalDataEvents,
    services,
    message,
    invocationContext('personalDataEvents', { dequeueCount: attempt }),
  );

const workStep = (services: Services, scenario: Scenario, step: 'discover' | 'fulfil', attempt: number) =>
  invokeQueue(
    dsrWork,
    services,
    { tenantId: scenario.tenant.tenantId, requestId: scenario.requestId!, step },
    invocationContext('dsrWork', { dequeueCount: attempt }),
  );

/** A tenant with two people's records, and a request of theirs taken in (and approved, unless `discover`). */
function requestScenario(
  type: CreateRequestInput['type'],
  stage: 'discover' | 'fulfil',
  extra: Partial<CreateRequestInput> = {},
) {
  return async (): Promise<Scenario> => {
    now = new Date('2026-03-01T10:00:00Z');
    const tenant = await newTenant();
    const people = [person('adele'), person('megan')];
    for (const subject of people) await ingest(tenant, subject);
    const created = await helper.requests.create(
      tenant,
      { type, regulation: 'GDPR', subject: { upn: people[0]!.upn! }, dataSubjectType: 'other', ...extra },
      admin,
    );
    const scenario = { tenant, people, requestId: created.id };
    if (stage === 'fulfil') {
      await workStep(helper, scenario, 'discover', 1);
      await helper.requests.decide(tenant, created.id, 'approve', admin);
    }
    return scenario;
  };
}

/**
 * Every purge run writes its own audit event with its counts: a run redelivered after a crash that came after
 * its event writes another (with what was left to do). The trail may hold that event twice; all else is equal.
 */
const eachRunAudited = ({ audit, ...rest }: Awaited<ReturnType<typeof stateOf>>) => ({
  ...rest,
  audit: [...new Set(audit)],
});

/** Crash points per path, printed at the end for the record (the issue asks how many cases run). */
const crashPoints: Record<string, number> = {};
afterAll(() => {
  faults.reset();
  console.log(`crash points per path: ${JSON.stringify(crashPoints)}`);
});

describe('crash at every write, then redelivery: the end state of a clean run', () => {
  it('record events: an upsert that moves a record to another person, a deletion, a subject deletion, a retired device', async () => {
    const setup = async (): Promise<Scenario> => {
      const tenant = await newTenant();
      const people = [person('lee'), person('nestor')];
      for (const subject of people) await ingest(tenant, subject);
      return { tenant, people };
    };
    const events = (s: Scenario) => [
      {
        type: 'record.upserted',
        category: 'device',
        recordId: `device-${s.people[0]!.objectId}`,
        subject: s.people[1],
        occurredAt: at(10),
        data: { handedOver: true },
        deviceName: 'SHARED-PC',
      },
      {
        type: 'record.deleted',
        category: 'usage',
        recordId: `usage-${s.people[1]!.objectId}`,
        deletedAt: at(11),
      },
      { type: 'subject.deleted', subject: { upn: s.people[0]!.upn }, deletedAt: at(12) },
      { type: 'device.retired', deviceName: 'SHARED-PC', deletedAt: at(13) },
    ];
    let total = 0;
    for (let i = 0; i < 4; i++) {
      total += await crashAtEveryWrite(setup, async (services, s, attempt) => {
        // The events before this one are already processed; this one is the one that crashes.
        for (const [j, e] of events(s).entries()) {
          if (j > i) break;
          const message = { ...e, tenantId: s.tenant.tenantId, eventId: `e${j}-${s.tenant.tenantId}` };
          await deliver(j === i ? services : helper, message, j === i ? attempt : 1);
        }
      });
    }
    expect(total).toBeGreaterThan(10);
  }, 300_000);

  it('a records.upserted batch of 3 items: a new record, a newer version of one, a record of another person', async () => {
    const setup = async (): Promise<Scenario> => {
      const tenant = await newTenant();
      const people = [person('batch'), person('other')];
      for (const subject of people) await ingest(tenant, subject);
      return { tenant, people };
    };
    const writes = await crashAtEveryWrite(setup, async (services, s, attempt) => {
      const [first, second] = s.people as [DataSubject, DataSubject];
      const item = (n: number, category: string, recordId: string, subject: DataSubject) => ({
        eventId: `item${n}-${s.tenant.tenantId}`,
        category,
        recordId,
        subject,
        occurredAt: at(10 + n),
        data: { checkIn: n },
        deviceName: `PC-${subject.objectId!.slice(0, 4)}`,
      });
      const batch = {
        type: 'records.upserted',
        tenantId: s.tenant.tenantId,
        eventId: `batch-${s.tenant.tenantId}`,
        records: [
          item(0, 'device', `device-new-${first.objectId}`, first),
          // A device record: a newer version of a short-lived one (usage) would also leave the replaced
          // version's expiry entry behind after a crash between row and entries, as a single event does.
          item(1, 'device', `device-${first.objectId}`, first),
          item(2, 'alert', `alert-new-${second.objectId}`, second),
        ],
      };
      await deliver(services, batch, attempt);
    });
    expect(writes).toBeGreaterThan(3);
  }, 300_000);

  it('a records.upserted check-in whose rows are located (no lookup read), with a new record in it', async () => {
    const checkIn = (s: Scenario, n: number, records = 4) => {
      const [subject] = s.people as [DataSubject];
      return {
        type: 'records.upserted',
        tenantId: s.tenant.tenantId,
        eventId: `check-in-${n}-${s.tenant.tenantId}`,
        records: Array.from({ length: records }, (_, i) => ({
          eventId: `check-in-${n}-${i}-${s.tenant.tenantId}`,
          // Categories without expiry entries: a replaced version's entry outlives a crash on every path.
          category: i % 2 ? 'policy' : 'device',
          recordId: `located-${i}-${subject.objectId}`,
          subject,
          occurredAt: at(20 + n),
          data: { checkIn: n, item: i },
          deviceName: `PC-${subject.objectId!.slice(0, 4)}`,
        })),
      };
    };
    const setup = async (): Promise<Scenario> => {
      const tenant = await newTenant();
      const s = { tenant, people: [person('located')] };
      await deliver(helper, checkIn(s, 0), 1); // created
      await deliver(helper, checkIn(s, 1), 1); // replaced after reading the lookups: located
      return s;
    };
    const writes = await crashAtEveryWrite(setup, (services, s, attempt) =>
      deliver(services, checkIn(s, 2, 5), attempt),
    );
    expect(writes).toBeGreaterThan(3);
  }, 300_000);

  it.each([
    ['discovery', 'access', 'discover'],
    ['an export', 'export', 'fulfil'],
    ['an access request', 'access', 'fulfil'],
    ['an erasure', 'delete', 'fulfil'],
    ['a restriction', 'restrict', 'fulfil'],
  ] as const)(
    'dsr-work: %s',
    async (_name, type, stage) => {
      const writes = await crashAtEveryWrite(requestScenario(type, stage), (services, s, attempt) =>
        workStep(services, s, stage, attempt),
      );
      expect(writes).toBeGreaterThan(1);
    },
    300_000,
  );

  it('intake: a request taken in, retried by its client with the same Idempotency-Key', async () => {
    const setup = async (): Promise<Scenario> => {
      now = new Date('2026-03-01T10:00:00Z');
      const tenant = await newTenant();
      const people = [person('intake')];
      for (const subject of people) await ingest(tenant, subject);
      return { tenant, people };
    };
    const writes = await crashAtEveryWrite(setup, async (services, s) => {
      const tenant = await services.directory.resolve(s.tenant.tenantId);
      await services.requests.create(
        tenant,
        { type: 'export', regulation: 'GDPR', subject: { upn: s.people[0]!.upn! }, dataSubjectType: 'other' },
        admin,
        `ticket-${s.tenant.tenantId}`,
      );
      // What the client does not see, the recovery timer finishes: side effects left on the request.
      await services.recovery.recoverTenant(tenant, {
        tenants: 0,
        checked: 0,
        resumed: 0,
        failed: 0,
        failures: [],
      });
    });
    expect(writes).toBeGreaterThan(1);
  }, 300_000);

  it('link issue: a download link asked for again after a crash still works, and every issue is audited', async () => {
    const setup = async (): Promise<Scenario> => {
      const scenario = await requestScenario('export', 'fulfil')();
      await workStep(helper, scenario, 'fulfil', 1);
      return scenario;
    };
    const writes = await crashAtEveryWrite(
      setup,
      async (services, s) => {
        const tenant = await services.directory.resolve(s.tenant.tenantId);
        const link = await services.downloads.issue(tenant, s.requestId!, admin, 'http://localhost');
        const download = await helper.downloads.download(link.url.split('/').pop()!);
        download.stream.resume();
      },
      // An issue that crashed after its audit event was written is retried as a new link: both are audited.
      ({ audit, ...rest }) => ({ ...rest, audit: [...new Set(audit)] }),
    );
    expect(writes).toBeGreaterThan(0);
  }, 300_000);

  it('dsr-work: a rectification', async () => {
    const writes = await crashAtEveryWrite(
      requestScenario('rectify', 'fulfil', {
        rectifications: [
          { category: 'directory', field: 'department', value: 'Marketing' },
          { category: 'device', field: 'model', value: 'x' },
        ],
      }),
      (services, s, attempt) => workStep(services, s, 'fulfil', attempt),
    );
    expect(writes).toBeGreaterThan(1);
  }, 300_000);

  it('retention purge: short-lived records, soft-deleted ones, alert anonymisation, packages, on their day', async () => {
    const setup = async (): Promise<Scenario> => {
      const scenario = await requestScenario('export', 'fulfil')();
      await workStep(helper, scenario, 'fulfil', 1);
      await helper.records.softDeleteRecord(
        scenario.tenant,
        'directory',
        `directory-${scenario.people[1]!.objectId}`,
        at(6),
      );
      return scenario;
    };
    const writes = await crashAtEveryWrite(
      setup,
      async (services, s) => {
        now = new Date('2026-09-01T02:00:00Z');
        try {
          await services.retention.purgeTenant({ tenantId: s.tenant.tenantId, day: '2026-09-01' });
        } finally {
          now = new Date('2026-03-01T10:00:00Z');
        }
      },
      eachRunAudited,
    );
    expect(writes).toBeGreaterThan(5);
  }, 300_000);

  it('retention purge: anonymised alerts past 2 years, and audit events past a year', async () => {
    const setup = async (): Promise<Scenario> => {
      const tenant = await newTenant();
      const people = [person('old')];
      await ingest(tenant, people[0]!);
      now = new Date('2026-09-01T02:00:00Z');
      await helper.retention.purgeTenant({ tenantId: tenant.tenantId, day: '2026-09-01' });
      now = new Date('2026-03-01T10:00:00Z');
      return { tenant, people };
    };
    const writes = await crashAtEveryWrite(
      setup,
      async (services, s) => {
        now = new Date('2028-03-01T02:00:00Z');
        try {
          await services.retention.purgeTenant({ tenantId: s.tenant.tenantId, day: '2028-03-01' });
        } finally {
          now = new Date('2026-03-01T10:00:00Z');
        }
      },
      eachRunAudited,
    );
    expect(writes).toBeGreaterThan(1);
  }, 300_000);

  it('passive deletion: every row, package and key of an ended subscription, 30 days on', async () => {
    const setup = async (): Promise<Scenario> => {
      const scenario = await requestScenario('export', 'fulfil')();
      await workStep(helper, scenario, 'fulfil', 1);
      await helper.directory.endSubscription(scenario.tenant.tenantId, '2026-03-02T00:00:00Z');
      return scenario;
    };
    const writes = await crashAtEveryWrite(
      setup,
      async (services, s) => {
        now = new Date('2026-04-01T02:00:00Z');
        try {
          await services.retention.purgeTenant({ tenantId: s.tenant.tenantId, day: '2026-04-01' });
        } finally {
          now = new Date('2026-03-01T10:00:00Z');
        }
      },
      eachRunAudited,
    );
    expect(writes).toBeGreaterThan(5);
  }, 300_000);

  it('tenant provisioning: one directory entry, one audit event', async () => {
    const tenantIds: string[] = [];
    const setup = async (): Promise<Scenario> => {
      const tenantId = randomUUID();
      tenantIds.push(tenantId);
      // The scope the event will create: stateOf reads the tenant's geography account through it.
      const entry = { tenantId, countryCode: 'DE', displayName: 'T', geography: 'EU' as const };
      return {
        tenant: {
          tenantId,
          geography: 'EU',
          account: helper.storage.geography('EU'),
          keys: helper.keys.forGeography('EU'),
          entry: { ...entry, status: 'active', provisionedAt: '' },
        },
        people: [],
      };
    };
    const writes = await crashAtEveryWrite(setup, async (services, s, attempt) => {
      await deliver(
        services,
        {
          type: 'tenant.provisioned',
          tenantId: s.tenant.tenantId,
          eventId: `p-${s.tenant.tenantId}`,
          countryCode: 'DE',
          displayName: 'Fabrikam',
        },
        attempt,
      );
    });
    expect(writes).toBeGreaterThan(1);
    for (const tenantId of tenantIds) {
      expect(await helper.directory.get(tenantId)).toMatchObject({ status: 'active', geography: 'EU' });
    }
  }, 300_000);

  it('deadline flags: an open request flagged overdue once, audited once', async () => {
    const writes = await crashAtEveryWrite(requestScenario('export', 'fulfil'), async (services, s) => {
      now = new Date('2026-04-15T10:00:00Z');
      try {
        // The tenant as this instance resolves it: its storage clients are this instance's.
        const tenant = await services.directory.resolve(s.tenant.tenantId);
        await services.requests.flagDeadline(tenant, s.requestId!, () => 'overdue', {
          actor: { type: 'system', id: 'requestDeadlines' },
          correlationId: 'deadlines',
        });
      } finally {
        now = new Date('2026-03-01T10:00:00Z');
      }
    });
    expect(writes).toBeGreaterThan(0);
  }, 300_000);
});
