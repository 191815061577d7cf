// Integration: the hourly `requestDeadlines` timer, run as the host runs it, on a clock the test moves. This
// file's global account is Azurite's devstoreaccount1 (shared with dsrWork.test.ts, whose requests are never
// within 7 days of their deadline on this clock), so no local host of another test file runs this timer on
// these tenants.

import type { Timer } from '@azure/functions';

import { requestDeadlines } from '../../functions/requestDeadlines';
import { azuriteConnectionString, DEV_ACCOUNT } from '../../local/azurite';
import type { Clock } from '../../shared/clock';
import { createServices } from '../../shared/composition';
import { invokeTimer } from '../../shared/hosting/invoke';
import type { CreateRequestInput } from '../../shared/requests/dataSubjectRequest';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import { invocationContext } from '../support/invocation';
import { provisionedTenant, testConfig } from '../support/testStorage';

const DAY_MS = 24 * 60 * 60 * 1000;

// Near the real time and moved forward only, so requests of other files (due weeks after creation) stay
// unflagged; requests are made "earlier" by receiving them with the clock set back.
let now = new Date();
const clock: Clock = () => now;
const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
const services = createServices(testConfig({ STORAGE_GLOBAL: azuriteConnectionString(DEV_ACCOUNT, ports) }), {
  clock,
});
const admin = {
  actor: { type: 'user' as const, id: 'admin', upn: 'admin@contoso.com' },
  correlationId: 'test',
};
const timer: Timer = {
  isPastDue: false,
  schedule: { adjustForDST: false },
  scheduleStatus: { last: '0001-01-01T00:00:00', next: now.toISOString(), lastUpdated: now.toISOString() },
};

const runTimer = () => invokeTimer(requestDeadlines, services, timer, invocationContext('requestDeadlines'));

const newTenant = (): Promise<TenantScope> => provisionedTenant(services);

const ccpaExport: CreateRequestInput = {
  type: 'export',
  regulation: 'CCPA',
  subject: { upn: 'adele@contoso.com' },
  dataSubjectType: 'other',
};

/** A CCPA request (45 days) received so that it is due `days` from the clock's present. */
async function dueIn(tenant: TenantScope, days: number): Promise<string> {
  const present = now;
  now = new Date(present.getTime() + (days - 45) * DAY_MS);
  try {
    return (await services.requests.create(tenant, ccpaExport, admin)).id;
  } finally {
    now = present;
  }
}

async function auditActions(tenant: TenantScope, requestId: string): Promise<string[]> {
  const page = await services.audit.list(tenant, {}, { top: 200 });
  return page.items.filter((e) => e.target.id === requestId).map((e) => e.action);
}

const deadlineActions = async (tenant: TenantScope, requestId: string) =>
  (await auditActions(tenant, requestId)).filter((a) => a === 'dsr.dueSoon' || a === 'dsr.overdue');

const deadlineOf = async (tenant: TenantScope, requestId: string) =>
  (await services.requests.get(tenant, requestId)).deadline;

const moveClock = (days: number) => {
  now = new Date(now.getTime() + days * DAY_MS);
};

afterEach(() => jest.restoreAllMocks());

describe('requestDeadlines timer', () => {
  it('flags open requests due soon or overdue, audits each flag once across reruns, and follows the clock', async () => {
    const tenant = await newTenant();
    const in10 = await dueIn(tenant, 10);
    const in5 = await dueIn(tenant, 5);
    const late = await dueIn(tenant, -1);
    const extended = await dueIn(tenant, 3);
    await services.requests.decide(tenant, extended, 'extend', { ...admin, reason: 'many systems' });
    const completed = await dueIn(tenant, 2);
    for (const action of ['startDiscovery', 'completeDiscovery', 'approve', 'complete'] as const) {
      await services.requests.change(tenant, completed, action, admin);
    }
    const cancelled = await dueIn(tenant, -3);
    await services.requests.decide(tenant, cancelled, 'cancel', admin);

    await runTimer();

    expect(await deadlineOf(tenant, in10)).toBeUndefined();
    expect(await deadlineOf(tenant, in5)).toBe('dueSoon');
    expect(await deadlineOf(tenant, late)).toBe('overdue');
    expect(await deadlineOf(tenant, extended)).toBeUndefined();
    expect(await deadlineOf(tenant, completed)).toBeUndefined();
    expect(await deadlineOf(tenant, cancelled)).toBeUndefined();
    const listed = await services.requests.list(tenant, {}, { top: 50 });
    expect(Object.fromEntries(listed.items.map((r) => [r.id, r.deadline]))).toEqual({
      [in10]: undefined,
      [in5]: 'dueSoon',
      [late]: 'overdue',
      [extended]: undefined,
      [completed]: undefined,
      [cancelled]: undefined,
    });
    const events = (await services.audit.list(tenant, { action: 'dsr.dueSoon' }, { top: 10 })).items;
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actor: { type: 'system', id: 'requestDeadlines' },
      target: { type: 'dataSubjectRequest', id: in5 },
      outcome: 'success',
      details: { type: 'export', regulation: 'CCPA', status: 'received', daysLeft: 5 },
    });
    expect(await deadlineActions(tenant, late)).toEqual(['dsr.overdue']);

    // A later run, and two overlapping ones, change nothing and audit nothing again.
    const eventCount = (await services.audit.list(tenant, {}, { top: 200 })).items.length;
    await runTimer();
    await Promise.all([runTimer(), runTimer()]);
    expect((await services.audit.list(tenant, {}, { top: 200 })).items).toHaveLength(eventCount);
    expect(await deadlineOf(tenant, in5)).toBe('dueSoon');

    // Six days on: the request due in 5 days is overdue (one new event), the one due in 10 is due soon.
    moveClock(6);
    await runTimer();
    await runTimer();
    expect(await deadlineOf(tenant, in5)).toBe('overdue');
    expect(await deadlineActions(tenant, in5)).toEqual(['dsr.dueSoon', 'dsr.overdue']);
    expect(await deadlineOf(tenant, in10)).toBe('dueSoon');
    expect(await deadlineActions(tenant, in10)).toEqual(['dsr.dueSoon']);
    expect(await deadlineActions(tenant, late)).toEqual(['dsr.overdue']);
    expect(await deadlineOf(tenant, extended)).toBeUndefined();
    expect(await deadlineOf(tenant, completed)).toBeUndefined();
    expect((await services.audit.verify(tenant)).valid).toBe(true);
  });

  it('takes the flag off a request extended out of the window, without another audit event', async () => {
    const tenant = await newTenant();
    const id = await dueIn(tenant, 3);
    await runTimer();
    expect(await deadlineOf(tenant, id)).toBe('dueSoon');

    const extended = await services.requests.decide(tenant, id, 'extend', { ...admin, reason: 'complex' });
    expect(extended.daysLeft).toBe(48);
    await runTimer();
    expect(await deadlineOf(tenant, id)).toBeUndefined();
    expect(await deadlineActions(tenant, id)).toEqual(['dsr.dueSoon']);
  });

  it('checks every other tenant when one fails, then fails the run naming that tenant', async () => {
    const broken = await newTenant();
    const healthy = await newTenant();
    const brokenId = await dueIn(broken, 1);
    const healthyId = await dueIn(healthy, 1);
    const list = services.requests.list.bind(services.requests);
    jest.spyOn(services.requests, 'list').mockImplementation(async (tenant, filter, page) => {
      if (tenant.tenantId === broken.tenantId) throw new Error('geography unreachable');
      return list(tenant, filter, page);
    });

    await expect(runTimer()).rejects.toThrow(`${broken.tenantId}: geography unreachable`);
    expect(await deadlineOf(healthy, healthyId)).toBe('dueSoon');
    expect(await deadlineOf(broken, brokenId)).toBeUndefined();

    jest.restoreAllMocks();
    await runTimer();
    expect(await deadlineOf(broken, brokenId)).toBe('dueSoon');
  });
});
