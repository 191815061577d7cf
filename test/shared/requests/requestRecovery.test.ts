// Integration on Azurite: no request waits for someone to look at it (SPEC §5). A change whose side effects
// failed still answers (the write is durable) and the recovery timer carries the effects out; a step that
// stopped is put back on the queue, and after three times the request ends failed with a reason. This file's
// global account is devstoreaccount1, so no local host of another test file consumes its queues.
import { randomUUID } from 'node:crypto';

import { dsrWork } from '../../../functions/dsrWork';
import { azuriteConnectionString, DEV_ACCOUNT } from '../../../local/azurite';
import { createServices } from '../../../shared/composition';
import { DomainError } from '../../../shared/errors';
import { invokeQueue } from '../../../shared/hosting/invoke';
import { STALL_LIMIT, STALLED_AFTER_MS } from '../../../shared/requests/requestRecovery';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { QUEUES } from '../../../shared/storage/names';
import { decodeMessage } from '../../../shared/storage/queueMessages';
import { invocationContext } from '../../support/invocation';
import { provisionedTenant, testConfig } from '../../support/testStorage';

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
let now = new Date('2026-05-04T08:00:00Z');
const services = createServices(testConfig({ STORAGE_GLOBAL: azuriteConnectionString(DEV_ACCOUNT, ports) }), {
  clock: () => now,
});
const admin = { actor: { type: 'user' as const, id: 'admin' }, correlationId: 'c' };
const summary = () => ({ tenants: 0, checked: 0, resumed: 0, failed: 0, failures: [] });

const newTenant = (): Promise<TenantScope> => provisionedTenant(services);

const create = (tenant: TenantScope) =>
  services.requests.create(
    tenant,
    { type: 'restrict', regulation: 'GDPR', subject: { objectId: randomUUID() }, dataSubjectType: 'other' },
    admin,
  );

/** The dsr-work messages waiting for one request (others' are left for their own tests). */
async function workFor(requestId: string): Promise<{ step: string }[]> {
  const queue = await services.storage.global.queue(QUEUES.dsrWork);
  const found: { step: string }[] = [];
  // Other test files leave their messages in this queue too: look through all of them (each hidden 2 s).
  for (let round = 0; round < 200; round++) {
    const { receivedMessageItems } = await queue.receiveMessages({
      numberOfMessages: 32,
      visibilityTimeout: 2,
    });
    for (const item of receivedMessageItems) {
      const message = decodeMessage(item.messageText) as { requestId: string; step: string };
      if (message.requestId !== requestId) continue;
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

afterEach(() => {
  jest.restoreAllMocks();
  now = new Date('2026-05-04T08:00:00Z');
});

describe('request recovery', () => {
  it('a request taken in while its audit event could not be written is answered; the timer writes the event and sends its work', async () => {
    const tenant = await newTenant();
    jest.spyOn(services.audit, 'append').mockRejectedValueOnce(new DomainError('Conflict', 'busy'));
    const request = await create(tenant);
    expect(request.status).toBe('received');
    expect(await actions(tenant, request.id)).toEqual([]);
    expect(await workFor(request.id)).toEqual([]);
    await services.recovery.recoverTenant(tenant, summary());
    expect(await actions(tenant, request.id)).toEqual(['dsr.created']);
    expect(await workFor(request.id)).toEqual([expect.objectContaining({ step: 'discover' })]);
  });

  it('a step whose message was lost is put back on the queue once it stalled, and the request completes', async () => {
    const tenant = await newTenant();
    const request = await create(tenant);
    await workFor(request.id); // the discovery message is lost
    now = new Date(now.getTime() + STALLED_AFTER_MS - 60_000);
    await services.recovery.recoverTenant(tenant, summary());
    expect(await workFor(request.id)).toEqual([]);
    now = new Date(now.getTime() + 120_000);
    const run = summary();
    await services.recovery.recoverTenant(tenant, run);
    expect(run).toMatchObject({ resumed: 1 });
    const [message] = await workFor(request.id);
    await invokeQueue(
      dsrWork,
      services,
      { tenantId: tenant.tenantId, requestId: request.id, ...message },
      invocationContext('dsrWork'),
    );
    expect((await services.requests.get(tenant, request.id)).status).toBe('awaitingReview');
  });

  it(`a request that stalls more than ${STALL_LIMIT} times ends failed, with a code and a reason`, async () => {
    const tenant = await newTenant();
    const request = await create(tenant);
    for (let round = 0; round <= STALL_LIMIT; round++) {
      now = new Date(now.getTime() + STALLED_AFTER_MS + 1000);
      await services.recovery.recoverTenant(tenant, summary());
    }
    const failed = await services.requests.get(tenant, request.id);
    expect(failed).toMatchObject({ status: 'failed', failure: { step: 'discover', code: 'Stalled' } });
    expect(failed.failure?.reason).toMatch(/stopped making progress 3 times/);
    expect(await actions(tenant, request.id)).toEqual(['dsr.created', 'dsr.failed']);
  });
});
