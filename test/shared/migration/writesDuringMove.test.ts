// Work messages during a move (SPEC §8): a record event, a dsr-work step and a retention-work run for a tenant
// whose move is under way are put back on their queue, due after Retry-After, even on their last allowed
// delivery: nothing is poisoned, no request fails, nothing is written to the old geography. Delivered again
// after the move, each does its work in the new geography. (A global account of this file's own, so no
// other test's host takes these messages.)
import { randomUUID } from 'node:crypto';

import { TableClient } from '@azure/data-tables';

import { dsrWork } from '../../../functions/dsrWork';
import { personalDataEvents } from '../../../functions/personalDataEvents';
import { retentionWork } from '../../../functions/retentionWork';
import { accountNameOf, azuriteConnectionString } from '../../../local/azurite';
import { createServices, type Services } from '../../../shared/composition';
import type { QueueFunction } from '../../../shared/hosting/functionDefinition';
import { MAX_DEQUEUE_COUNT } from '../../../shared/hosting/queueFailures';
import { invokeQueue } from '../../../shared/hosting/invoke';
import { QUEUES, TABLES } from '../../../shared/storage/names';
import { decodeMessage } from '../../../shared/storage/queueMessages';
import { tenantPartitionFilter } from '../../../shared/storage/tenantRows';
import { invocationContext } from '../../support/invocation';
import { testConfig } from '../../support/testStorage';

const ports = JSON.parse(process.env.TEST_AZURITE_PORTS!) as { blob: number; queue: number; table: number };
const env = {
  // The AU account's queues and directory stand in for a global account nobody else uses (the input fuzzing
  // takes IN's).
  STORAGE_GLOBAL: azuriteConnectionString(accountNameOf('AU'), ports),
  RESIDENCY_FENCE_SECONDS: '0',
  RESIDENCY_RETRY_AFTER_SECONDS: '1',
};
const services: Services = createServices(testConfig(env));
const closedCh: Services = createServices(testConfig(env, ['STORAGE_CH']));

async function drain(queueName: string): Promise<unknown[]> {
  const queue = await services.storage.global.queue(queueName);
  const found: unknown[] = [];
  for (;;) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
    if (receivedMessageItems.length === 0) return found;
    for (const item of receivedMessageItems) {
      found.push(decodeMessage(item.messageText));
      await queue.deleteMessage(item.messageId, item.popReceipt);
    }
  }
}

const lastDelivery = (fn: QueueFunction) =>
  invocationContext(fn.name, { dequeueCount: MAX_DEQUEUE_COUNT, id: randomUUID() });

async function euRows(tenantId: string, table: string): Promise<number> {
  const raw = TableClient.fromConnectionString(process.env.STORAGE_EU!, table, {
    allowInsecureConnection: true,
  });
  let rows = 0;
  try {
    for await (const _ of raw.listEntities({ queryOptions: { filter: tenantPartitionFilter(tenantId) } }))
      rows++;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error; // no such table yet: no rows
  }
  return rows;
}

it('puts every kind of work message back while the tenant moves, and runs it in CH after', async () => {
  for (const name of [QUEUES.personalDataEvents, QUEUES.dsrWork, QUEUES.retentionWork]) await drain(name);
  const tenantId = randomUUID();
  await closedCh.events.apply({
    type: 'tenant.provisioned',
    tenantId,
    eventId: `p-${tenantId}`,
    countryCode: 'CH',
    displayName: 'Genf SA',
  });
  const actor = { actor: { type: 'user' as const, id: 'dpo' }, correlationId: 'test' };
  const tenant = await services.directory.resolve(tenantId);
  const subject = { upn: 'claire@genf.ch', objectId: randomUUID() };
  const request = await services.requests.create(
    tenant,
    { type: 'access', regulation: 'GDPR', subject, dataSubjectType: 'currentEmployee' },
    actor,
  );
  await drain(QUEUES.dsrWork); // the request's own discovery message: delivered by hand below
  const recordsBefore = await euRows(tenantId, TABLES.records);

  const job = await services.residency.start(tenant, actor.actor, 'test', { enqueue: false });
  const messages: [QueueFunction, Record<string, unknown>][] = [
    [
      personalDataEvents,
      {
        type: 'record.upserted',
        tenantId,
        eventId: `e-${tenantId}`,
        category: 'directory',
        recordId: 'during-the-move',
        subject,
        occurredAt: new Date().toISOString(),
        data: { note: 'sent while the tenant moved' },
      },
    ],
    [dsrWork, { tenantId, requestId: request.id, step: 'discover' }],
    [retentionWork, { tenantId, day: new Date().toISOString().slice(0, 10) }],
  ];
  for (const [fn, message] of messages) {
    // The last allowed delivery: anything but "put back" would poison the message or fail the request.
    await invokeQueue(fn, services, message, lastDelivery(fn));
  }
  expect(await euRows(tenantId, TABLES.records)).toBe(recordsBefore);
  expect((await services.requests.get(tenant, request.id)).status).toBe('received');
  for (const [fn] of messages) {
    const poison = await services.storage.global.queue(`${fn.queueName}-poison`);
    const peeked = await poison.peekMessages({ numberOfMessages: 32 });
    expect(peeked.peekedMessageItems.map((m) => decodeMessage(m.messageText))).not.toContainEqual(
      expect.objectContaining({ tenantId }),
    );
  }

  // Each is back on its queue, due after Retry-After (1 s here).
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const back = new Map<string, unknown[]>();
  for (const [fn] of messages) back.set(fn.queueName, await drain(fn.queueName));
  for (const [fn, message] of messages) expect(back.get(fn.queueName)).toEqual([message]);

  // The move ends; the messages delivered again do their work in CH.
  for (let slice = 0; slice < 20; slice++) {
    const now = await services.mover.run({ tenantId, migrationId: job.migrationId });
    if (now?.status === 'completed') break;
  }
  const moved = await services.directory.resolve(tenantId);
  expect(moved.geography).toBe('CH');
  for (const [fn, message] of messages) await invokeQueue(fn, services, message, invocationContext(fn.name));
  expect((await services.requests.get(moved, request.id)).status).toBe('awaitingReview');
  const subjectKey = (await services.records.subjectOf(moved, subject)).subjectKey;
  expect(await services.records.countByCategory(moved, subjectKey)).toMatchObject({ directory: 1 });
  expect(await euRows(tenantId, TABLES.records)).toBe(0);

  // Deadlines work unchanged after the move: two months on, the request is flagged overdue in CH.
  const later = new Date(Date.now() + 62 * 86_400_000);
  const run = await createServices(testConfig(env), { clock: () => later }).deadlines.run('after-the-move');
  expect(run.failures).toEqual([]);
  expect((await services.requests.get(moved, request.id)).deadline).toBe('overdue');
}, 60_000);
