// Integration on Azurite: no alert data request is lost between its write and its side effects, and none
// waits for ever. A request taken in while its audit event or work message could not be sent is still
// answered, and the recovery timer carries them out; work that stopped is put back on the queue, and after
// three times the request ends failed; work that keeps failing ends it failed with words for people. This
// file's global account is devstoreaccount1, so no local host of another test file consumes its queue.
import { randomUUID } from 'node:crypto';

import { alertDataWork } from '../../../functions/alertDataWork';
import { azuriteConnectionString, DEV_ACCOUNT } from '../../../local/azurite';
import { STALL_LIMIT, STALLED_AFTER_MS } from '../../../shared/alertRequests/alertDataRequest';
import { createServices } from '../../../shared/composition';
import { DomainError } from '../../../shared/errors';
import type { PoisonedMessage } from '../../../shared/hosting/queueFailures';
import { invokeQueue } from '../../../shared/hosting/invoke';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { QUEUES } from '../../../shared/storage/names';
import { decodeMessage } from '../../../shared/storage/queueMessages';
import type { WorkQueue } from '../../../shared/storage/workQueue';
import { invocationContext } from '../../support/invocation';
import { provisionedTenant, testConfig } from '../../support/testStorage';

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
let now = new Date('2026-05-04T08:00:00Z');
const services = createServices(testConfig({ STORAGE_GLOBAL: azuriteConnectionString(DEV_ACCOUNT, ports) }), {
  clock: () => now,
});
const soc = { actor: { type: 'user' as const, id: 'soc' }, correlationId: 'c' };
const summary = () => ({ tenants: 0, checked: 0, resumed: 0, failed: 0, failures: [] });

const create = (tenant: TenantScope, action: 'extract' | 'delete' = 'delete') =>
  services.alertRequests.create(tenant, { action, deviceNames: ['PC-1'], reason: 'incident' }, soc);

/** The messages waiting on a queue for one request (others' are left for their own tests). */
async function messagesFor(requestId: string, queueName: string = QUEUES.alertDataWork) {
  const queue = await services.storage.global.queue(queueName);
  const found: Record<string, unknown>[] = [];
  for (let round = 0; round < 200; round++) {
    const { receivedMessageItems } = await queue.receiveMessages({
      numberOfMessages: 32,
      visibilityTimeout: 2,
    });
    for (const item of receivedMessageItems) {
      const message = decodeMessage(item.messageText) as Record<string, unknown>;
      const named = (message as { requestId?: string }).requestId ?? JSON.stringify(message);
      if (!named.includes(requestId)) continue;
      found.push(message);
      await queue.deleteMessage(item.messageId, item.popReceipt);
    }
    if (receivedMessageItems.length === 0) break;
  }
  return found;
}

const actions = async (tenant: TenantScope, requestId: string) =>
  (await services.audit.list(tenant, {}, { top: 100 })).items
    .filter((e) => e.target.id === requestId)
    .map((e) => e.action);

const deliver = (tenant: TenantScope, requestId: string, dequeueCount = 1) =>
  invokeQueue(
    alertDataWork,
    services,
    { tenantId: tenant.tenantId, requestId },
    invocationContext('alertDataWork', { dequeueCount }),
  );

afterEach(() => {
  jest.restoreAllMocks();
  now = new Date('2026-05-04T08:00:00Z');
});

describe('alert request recovery', () => {
  it('a request taken in while its audit event could not be written is answered; the timer writes the event and sends its work', async () => {
    const tenant = await provisionedTenant(services);
    jest.spyOn(services.audit, 'append').mockRejectedValueOnce(new DomainError('Conflict', 'busy'));
    const request = await create(tenant);
    expect(request.status).toBe('received');
    expect(await actions(tenant, request.id)).toEqual([]);
    expect(await messagesFor(request.id)).toEqual([]);
    await services.alertRecovery.recoverTenant(tenant, summary());
    expect(await actions(tenant, request.id)).toEqual(['alertDataRequest.created']);
    expect(await messagesFor(request.id)).toEqual([{ tenantId: tenant.tenantId, requestId: request.id }]);
  });

  it('a request whose work message could not be sent gets it from the next read of it', async () => {
    const tenant = await provisionedTenant(services);
    const queue = services.workQueue as WorkQueue;
    jest.spyOn(queue, 'send').mockRejectedValueOnce(new Error('queue unreachable'));
    const request = await create(tenant);
    expect(await messagesFor(request.id)).toEqual([]);
    await services.alertRequests.get(tenant, request.id);
    expect(await messagesFor(request.id)).toHaveLength(1);
    // Carried out once: the next read finds nothing left to do.
    await services.alertRequests.get(tenant, request.id);
    expect(await messagesFor(request.id)).toEqual([]);
    expect(await actions(tenant, request.id)).toEqual(['alertDataRequest.created']);
  });

  it('work whose message was lost is put back on the queue once it stalled, and the request completes', async () => {
    const tenant = await provisionedTenant(services);
    const request = await create(tenant);
    await messagesFor(request.id); // lost
    now = new Date(now.getTime() + STALLED_AFTER_MS - 60_000);
    await services.alertRecovery.recoverTenant(tenant, summary());
    expect(await messagesFor(request.id)).toEqual([]);
    now = new Date(now.getTime() + 120_000);
    const run = summary();
    await services.alertRecovery.recoverTenant(tenant, run);
    expect(run).toMatchObject({ checked: 1, resumed: 1 });
    expect(await messagesFor(request.id)).toHaveLength(1);
    await deliver(tenant, request.id);
    expect(await services.alertRequests.get(tenant, request.id)).toMatchObject({
      status: 'completed',
      result: { alerts: 0, restrictedAlertsLeftOut: 0, devicesWithoutAlerts: 1 },
    });
  });

  it(`a request that stalls more than ${STALL_LIMIT} times ends failed, with a code and a reason`, async () => {
    const tenant = await provisionedTenant(services);
    const request = await create(tenant);
    for (let round = 0; round <= STALL_LIMIT; round++) {
      now = new Date(now.getTime() + STALLED_AFTER_MS + 1000);
      await services.alertRecovery.recoverTenant(tenant, summary());
    }
    const failed = await services.alertRequests.get(tenant, request.id);
    expect(failed).toMatchObject({ status: 'failed', failure: { code: 'Stalled' } });
    expect(failed.failure?.reason).toMatch(/stopped making progress 3 times/);
    expect(await actions(tenant, request.id)).toEqual([
      'alertDataRequest.created',
      'alertDataRequest.failed',
    ]);
  });
});

describe('alert-data-work failures', () => {
  it('work failing on its last delivery ends the request failed, in words for people', async () => {
    const tenant = await provisionedTenant(services);
    const request = await create(tenant);
    jest
      .spyOn(services.alertRequests, 'fixCounts')
      .mockRejectedValue(new Error('socket hang up at 10.0.0.1'));
    await expect(deliver(tenant, request.id, 1)).rejects.toThrow('socket hang up');
    expect((await services.alertRequests.get(tenant, request.id)).status).toBe('inProgress');
    await deliver(tenant, request.id, 5);
    const failed = await services.alertRequests.get(tenant, request.id);
    expect(failed).toMatchObject({ status: 'failed', failure: { code: 'Internal' } });
    expect(failed.failure?.reason).not.toMatch(/socket|10\.0\.0\.1/);
    expect(await actions(tenant, request.id)).toEqual([
      'alertDataRequest.created',
      'alertDataRequest.started',
      'alertDataRequest.failed',
    ]);
  });

  it('a message naming no request, or no valid one, goes to the poison queue with its reason', async () => {
    const tenant = await provisionedTenant(services);
    const missing = `0000000000${randomUUID().replaceAll('-', '').slice(0, 15)}`;
    await deliver(tenant, missing);
    await invokeQueue(
      alertDataWork,
      services,
      { tenantId: 'nope', requestId: missing },
      invocationContext('w'),
    );
    const poisoned = (await messagesFor(missing, QUEUES.alertDataWorkPoison)) as unknown as PoisonedMessage[];
    expect(poisoned.map((p) => p.reason)).toEqual([
      expect.stringMatching(/^NotFound/),
      expect.stringContaining('does not match the schema'),
    ]);
  });
});
