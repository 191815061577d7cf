import type { InvocationContext } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';

import type { PoisonedMessage } from '../../shared/hosting/queueFailures';
import { poisonQueueOf } from '../../shared/storage/names';
import { decodeMessage, encodeMessage } from '../../shared/storage/queueMessages';
import {
  messageCount,
  queueFunction,
  startHost,
  stopHosts,
  storage,
  uniqueQueue,
  waitFor,
} from './localHostFixtures';

afterEach(stopHosts);

describe('LocalHost queues', () => {
  it('consumes a base64 message, hands over its metadata, and deletes it', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    const received: { message: unknown; metadata: Record<string, unknown> }[] = [];
    await startHost([
      queueFunction(queueName, async (_services, message, context: InvocationContext) => {
        received.push({ message, metadata: context.triggerMetadata ?? {} });
      }),
    ]);

    const sent = await queue.sendMessage(encodeMessage({ type: 'ping', n: 1 }));
    await queue.sendMessage(Buffer.from('not json', 'utf8').toString('base64'));
    await waitFor(() => received.length === 2, 'both messages');
    await waitFor(async () => (await messageCount(queue)) === 0, 'the messages to be deleted');

    const json = received.find((r) => r.metadata.id === sent.messageId);
    expect(json?.message).toEqual({ type: 'ping', n: 1 });
    expect(json?.metadata).toEqual({
      id: sent.messageId,
      dequeueCount: 1,
      insertionTime: sent.insertedOn.toISOString(),
      expirationTime: sent.expiresOn.toISOString(),
      nextVisibleTime: expect.any(String),
      popReceipt: expect.any(String),
    });
    expect(received.map((r) => r.message)).toContain('not json');
  });

  it('delivers a message that keeps failing 5 times, after which it is in <queue>-poison with the reason', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    const poison = await storage.global.queue(poisonQueueOf(queueName));
    const deliveries: unknown[] = [];
    await startHost([
      queueFunction(queueName, async (_services, _message, context) => {
        deliveries.push(context.triggerMetadata?.dequeueCount);
        throw new Error('storage is on fire');
      }),
    ]);

    await queue.sendMessage(encodeMessage({ type: 'ping', n: 2 }));
    await waitFor(
      async () => (await poison.peekMessages()).peekedMessageItems.length > 0,
      'the poison message',
    );

    expect(deliveries).toEqual([1, 2, 3, 4, 5]);
    const [item] = (await poison.peekMessages()).peekedMessageItems;
    expect(decodeMessage(item!.messageText)).toMatchObject({
      queue: queueName,
      reason: 'Failed 5 times: storage is on fire',
      dequeueCount: 5,
      message: { type: 'ping', n: 2 },
    } satisfies Partial<PoisonedMessage>);
    await waitFor(async () => (await messageCount(queue)) === 0, 'the message to leave the queue');
  });

  it('copies the original text to <queue>-poison itself when host.json allows fewer deliveries', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    const poison = await storage.global.queue(poisonQueueOf(queueName));
    let deliveries = 0;
    const { log } = await startHost(
      [
        queueFunction(queueName, async () => {
          deliveries++;
          throw new Error('no');
        }),
      ],
      { settings: { maxDequeueCount: 2 } },
    );

    const text = encodeMessage({ type: 'ping', n: 3 });
    await queue.sendMessage(text);
    await waitFor(
      async () => (await poison.peekMessages()).peekedMessageItems.length > 0,
      'the poison message',
    );

    expect(deliveries).toBe(2);
    expect((await poison.peekMessages()).peekedMessageItems[0]?.messageText).toBe(text);
    await waitFor(async () => (await messageCount(queue)) === 0, 'the message to leave the queue');
    expect(log.some((line) => line.startsWith('warning: host.json maxDequeueCount is 2'))).toBe(true);
  });

  it('runs at most batchSize messages of a queue at once', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    let running = 0;
    let mostAtOnce = 0;
    let done = 0;
    await startHost(
      [
        queueFunction(queueName, async () => {
          mostAtOnce = Math.max(mostAtOnce, ++running);
          await new Promise((resolve) => setTimeout(resolve, 150));
          running--;
          done++;
        }),
      ],
      { settings: { batchSize: 4, newBatchThreshold: 2 } },
    );

    await Promise.all(Array.from({ length: 12 }, (_, n) => queue.sendMessage(encodeMessage({ n }))));
    await waitFor(() => done === 12, 'all twelve messages');

    expect(mostAtOnce).toBeGreaterThan(1);
    expect(mostAtOnce).toBeLessThanOrEqual(4);
  });

  it('consumes a queue whose connection is an app setting holding a connection string', async () => {
    const queueName = uniqueQueue();
    const connectionString = process.env.STORAGE_EU!;
    const queue = new QueueClient(connectionString, queueName);
    await queue.createIfNotExists();
    const received: unknown[] = [];
    await startHost(
      [queueFunction(queueName, async (_services, message) => void received.push(message), 'OTHER_STORAGE')],
      { env: { OTHER_STORAGE: connectionString } },
    );

    await queue.sendMessage(encodeMessage({ account: 'eu' }));

    await waitFor(() => received.length === 1, 'the message');
    expect(received).toEqual([{ account: 'eu' }]);
  });

  it('keeps a message invisible while its function runs longer than the lease', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    const deliveries: unknown[] = [];
    await startHost(
      [
        queueFunction(queueName, async (_services, _message, context) => {
          deliveries.push(context.triggerMetadata?.dequeueCount);
          await new Promise((resolve) => setTimeout(resolve, 2_200));
        }),
      ],
      { settings: { leaseSeconds: 1 } },
    );

    await queue.sendMessage(encodeMessage({ slow: true }));
    await waitFor(
      async () => deliveries.length > 0 && (await messageCount(queue)) === 0,
      'the message to be done',
    );

    expect(deliveries).toEqual([1]);
  });

  it('finishes a running invocation before stop() resolves', async () => {
    const queueName = uniqueQueue();
    const queue = await storage.global.queue(queueName);
    let started = false;
    let finished = false;
    const { host } = await startHost([
      queueFunction(queueName, async () => {
        started = true;
        await new Promise((resolve) => setTimeout(resolve, 300));
        finished = true;
      }),
    ]);
    await queue.sendMessage(encodeMessage({ slow: true }));
    await waitFor(() => started, 'the invocation to start');

    await host.stop();

    expect(finished).toBe(true);
    expect(await messageCount(queue)).toBe(0);
  });
});
