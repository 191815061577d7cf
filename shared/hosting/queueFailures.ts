// Queue messages are never lost: an invalid one is moved to `<queue>-poison` at once with its reason, and
// one whose processing fails on its last allowed delivery is moved there with the error, just before the
// host would have moved it without one.
import type { InvocationContext } from '@azure/functions';

import type { z } from 'zod';

import type { Clock } from '../clock';
import { SCHEMA_MISMATCH, validationDetails } from '../errorDetails';
import type { StorageAccount } from '../storage/storageAccount';
import { poisonQueueOf } from '../storage/names';
import { sendJson } from '../storage/queueMessages';

export { SCHEMA_MISMATCH };

/** Matches host.json `extensions.queues.maxDequeueCount` and the local host. */
export const MAX_DEQUEUE_COUNT = 5;

/**
 * A poison message: why, and what was poisoned. For a queue whose messages carry personal data (events), the
 * message itself is not kept here: only its ids and a reference to its payload, set aside in the tenant's
 * geography. For the others (ids only) the message is kept when it is small; a poison record must always fit
 * a queue message, however large or odd what it records.
 */
export interface PoisonedMessage {
  queue: string;
  reason: string;
  details?: unknown;
  dequeueCount: number;
  poisonedAt: string;
  message?: unknown;
  /** The message was larger than a poison record keeps: its size as JSON. */
  messageBytes?: number;
  eventId?: string;
  tenantId?: string;
  reference?: string;
  /** Poisoned on its own out of a batch: the batch's event id (when fit to be shown) and its place there. */
  batch?: { eventId?: string; item: number };
}

/**
 * An item of a batch poisoned on its own. Its batch's event id and its place there name it stably: a batch
 * redelivered poisons the item again under the same reference, so a second poison message is recognisable.
 */
export interface BatchItem {
  eventId: string;
  item: number;
}

/** Sets a message's payload aside somewhere it may be kept, and says what the poison message may name. */
export type SetAside = (
  message: unknown,
  batch?: BatchItem,
) => Promise<{ eventId?: string; tenantId?: string; reference?: string; batch?: PoisonedMessage['batch'] }>;

/** What a poison record keeps of a message in the clear, of its reason, of its failing fields. */
const MAX_KEPT_MESSAGE_BYTES = 4096;
const MAX_REASON_CHARACTERS = 1000;
const MAX_DETAILS = 20;

export class PoisonQueue {
  constructor(
    private readonly account: StorageAccount,
    private readonly clock: Clock,
    /** Per queue whose messages may carry personal data: where their payload goes instead. */
    private readonly setAside: Readonly<Record<string, SetAside>> = {},
  ) {}

  async put(
    queue: string,
    message: unknown,
    reason: string,
    context: InvocationContext,
    details?: unknown,
    batch?: BatchItem,
  ) {
    const poisoned: PoisonedMessage = {
      queue,
      reason: reason.length > MAX_REASON_CHARACTERS ? `${reason.slice(0, MAX_REASON_CHARACTERS)}…` : reason,
      ...(details === undefined
        ? {}
        : { details: Array.isArray(details) ? details.slice(0, MAX_DETAILS) : details }),
      dequeueCount: dequeueCountOf(context),
      poisonedAt: this.clock().toISOString(),
      ...(await this.kept(queue, message, batch)),
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

  /** What the poison record says of the message itself. */
  private async kept(queue: string, message: unknown, batch?: BatchItem): Promise<Partial<PoisonedMessage>> {
    const setAside = this.setAside[queue];
    if (setAside) return setAside(message, batch);
    const bytes = Buffer.byteLength(JSON.stringify(message) ?? '');
    return {
      ...(bytes <= MAX_KEPT_MESSAGE_BYTES ? { message } : { messageBytes: bytes }),
      ...(batch ? { batch } : {}),
    };
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
