// Queue messages are never lost: an invalid one is moved to `<queue>-poison` at once with its reason, and
// one whose processing fails on its last allowed delivery is moved there with the error, just before the
// host would have moved it without one.
import type { InvocationContext } from '@azure/functions';

import type { z } from 'zod';

import type { Clock } from '../clock';
import { validationDetails } from '../http/errorResponse';
import type { StorageAccount } from '../storage/storageAccount';
import { poisonQueueOf } from '../storage/names';
import { sendJson } from '../storage/queueMessages';

export const SCHEMA_MISMATCH = 'The message does not match the schema.';

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

  /**
   * The message decoded by its schema, or undefined when it does not match: then it is already in
   * `<queue>-poison` with the failing fields, and the caller simply returns (no redelivery would help).
   */
  async decode<T>(queue: string, schema: z.ZodType<T>, message: unknown, context: InvocationContext) {
    const parsed = schema.safeParse(message);
    if (parsed.success) return parsed.data;
    await this.put(queue, message, SCHEMA_MISMATCH, context, validationDetails(parsed.error));
    return undefined;
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
