// Queue messages are never lost: an invalid one is moved to `<queue>-poison` at once with its reason, and
// one whose processing fails on its last allowed delivery is moved there with the error, just before the
// host would have moved it without one.
import type { InvocationContext } from '@azure/functions';

import type { Clock } from '../clock';
import type { StorageAccount } from '../storage/storageAccount';
import { poisonQueueOf } from '../storage/names';
import { sendJson } from '../storage/queueMessages';

/** Matches host.json `extensions.queues.maxDequeueCount` and the local host. */
export const MAX_DEQUEUE_COUNT = 5;

export interface PoisonedMessage {
  queue: string;
  reason: string;
  details?: unknown;
  dequeueCount: number;
  poisonedAt: string;
  message: unknown;
}

export class PoisonQueue {
  constructor(
    private readonly account: StorageAccount,
    private readonly clock: Clock,
  ) {}

  async put(queue: string, message: unknown, reason: string, context: InvocationContext, details?: unknown) {
    const poisoned: PoisonedMessage = {
      queue,
      reason,
      ...(details === undefined ? {} : { details }),
      dequeueCount: dequeueCountOf(context),
      poisonedAt: this.clock().toISOString(),
      message,
    };
    context.warn(`Message moved to ${poisonQueueOf(queue)}: ${reason}`);
    await sendJson(await this.account.queue(poisonQueueOf(queue)), poisoned);
  }

  /** Approximate number of messages waiting in `<queue>-poison`. */
  async count(queue: string): Promise<number> {
    const client = await this.account.queue(poisonQueueOf(queue));
    const properties = await client.getProperties();
    return properties.approximateMessagesCount ?? 0;
  }
}

export const dequeueCountOf = (context: InvocationContext): number => {
  const value = Number(context.triggerMetadata?.dequeueCount ?? 1);
  return Number.isFinite(value) && value > 0 ? value : 1;
};
