// The local host's queue trigger: polls one queue and runs each message with the Azure host's delivery,
// lease, retry and poison semantics (host.json `extensions.queues`).
import { setTimeout as sleep } from 'node:timers/promises';

import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';

import type { QueueFunction } from '../shared/hosting/functionDefinition';
import { poisonQueueOf } from '../shared/storage/names';
import { decodeMessage } from '../shared/storage/queueMessages';
import { describeError, type HostLog } from './hostLog';
import { type HostSettings, MAX_RECEIVE_BATCH } from './hostSettings';

export type RunQueueFunction = (message: unknown, triggerMetadata: Record<string, unknown>) => Promise<void>;

/** Polls one queue and runs each message with the Azure host's delivery, retry and poison semantics. */
export class QueueListener {
  private readonly abort = new AbortController();
  private readonly processing = new Set<Promise<void>>();
  private slotWaiters: (() => void)[] = [];
  private loop?: Promise<void>;
  private queue?: QueueClient;
  private poison?: QueueClient;
  private failing = false;

  constructor(
    private readonly fn: QueueFunction,
    private readonly settings: HostSettings,
    private readonly log: HostLog,
    private readonly open: (name: string) => Promise<QueueClient>,
    private readonly run: RunQueueFunction,
  ) {}

  start(): void {
    this.loop = this.poll();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wakeSlotWaiters();
    await this.loop;
    await Promise.allSettled([...this.processing]);
  }

  private async poll(): Promise<void> {
    const { batchSize, newBatchThreshold, minPollingIntervalMs, maxPollingIntervalMs, leaseSeconds } =
      this.settings;
    let idleMs = minPollingIntervalMs;
    while (!this.abort.signal.aborted) {
      // A new batch is fetched once the running ones drop to newBatchThreshold, never beyond batchSize at once.
      if (this.processing.size > newBatchThreshold || this.processing.size >= batchSize) {
        await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
        continue;
      }
      let messages: DequeuedMessageItem[] = [];
      try {
        this.queue ??= await this.open(this.fn.queueName);
        const response = await this.queue.receiveMessages({
          numberOfMessages: Math.min(MAX_RECEIVE_BATCH, batchSize - this.processing.size),
          visibilityTimeout: leaseSeconds,
        });
        messages = response.receivedMessageItems;
        if (this.failing)
          this.log('information', `[${this.fn.name}] queue ${this.fn.queueName} is reachable again.`);
        this.failing = false;
      } catch (error) {
        if (!this.failing) {
          this.log(
            'error',
            `[${this.fn.name}] cannot receive from queue ${this.fn.queueName}: ${describeError(error)}`,
          );
        }
        this.failing = true;
      }
      // Messages already received are still run when a stop is under way, so none waits out its lease.
      for (const message of messages) this.begin(message);
      if (messages.length > 0) {
        idleMs = minPollingIntervalMs;
        continue;
      }
      await sleep(idleMs, undefined, { signal: this.abort.signal }).catch(() => undefined);
      idleMs = Math.min(idleMs * 2, maxPollingIntervalMs);
    }
  }

  private begin(message: DequeuedMessageItem): void {
    const work = this.process(message).catch((error: unknown) => {
      this.log('error', `[${this.fn.name}] message ${message.messageId}: ${describeError(error)}`);
    });
    this.processing.add(work);
    void work.finally(() => {
      this.processing.delete(work);
      this.wakeSlotWaiters();
    });
  }

  private wakeSlotWaiters(): void {
    const waiters = this.slotWaiters;
    this.slotWaiters = [];
    for (const wake of waiters) wake();
  }

  private async process(message: DequeuedMessageItem): Promise<void> {
    const queue = this.queue!;
    const { maxDequeueCount, visibilityTimeoutSeconds } = this.settings;
    // Its lease ran out after its last allowed delivery (a crash or a stop mid-run): it is not run again.
    if (message.dequeueCount > maxDequeueCount) {
      await this.moveToPoison(message, message.popReceipt);
      return;
    }
    const lease = this.keepInvisible(message);
    let failure: unknown;
    try {
      await this.run(decodeMessage(message.messageText), {
        id: message.messageId,
        dequeueCount: message.dequeueCount,
        insertionTime: message.insertedOn.toISOString(),
        expirationTime: message.expiresOn.toISOString(),
        nextVisibleTime: message.nextVisibleOn.toISOString(),
        popReceipt: message.popReceipt,
      });
    } catch (error) {
      failure = error ?? new Error('The function failed.');
    }
    const popReceipt = await lease.release();
    if (failure === undefined) {
      await queue.deleteMessage(message.messageId, popReceipt);
      return;
    }
    this.log(
      'warning',
      `[${this.fn.name}] failed on delivery ${message.dequeueCount} of ${maxDequeueCount}: ${describeError(failure)}`,
    );
    if (message.dequeueCount >= maxDequeueCount) {
      await this.moveToPoison(message, popReceipt);
    } else {
      await queue.updateMessage(message.messageId, popReceipt, message.messageText, visibilityTimeoutSeconds);
    }
  }

  /** Copies the message text unchanged to `<queue>-poison`, as the Azure host does, then removes it. */
  private async moveToPoison(message: DequeuedMessageItem, popReceipt: string): Promise<void> {
    const poisonName = poisonQueueOf(this.fn.queueName);
    this.poison ??= await this.open(poisonName);
    await this.poison.sendMessage(message.messageText);
    await this.queue!.deleteMessage(message.messageId, popReceipt);
    this.log('warning', `[${this.fn.name}] message ${message.messageId} moved to ${poisonName}.`);
  }

  /** Renews the message's invisibility while the function runs, so a long run is not delivered twice. */
  private keepInvisible(message: DequeuedMessageItem): { release(): Promise<string> } {
    const queue = this.queue!;
    const { leaseSeconds } = this.settings;
    let popReceipt = message.popReceipt;
    let released = false;
    let renewal = Promise.resolve();
    const handle = setInterval(
      () => {
        renewal = renewal.then(async () => {
          if (released) return;
          try {
            const renewed = await queue.updateMessage(
              message.messageId,
              popReceipt,
              message.messageText,
              leaseSeconds,
            );
            if (renewed.popReceipt) popReceipt = renewed.popReceipt;
          } catch (error) {
            this.log(
              'warning',
              `[${this.fn.name}] could not renew message ${message.messageId}: ${describeError(error)}`,
            );
          }
        });
      },
      (leaseSeconds * 1000) / 2,
    );
    return {
      release: async () => {
        released = true;
        clearInterval(handle);
        await renewal;
        return popReceipt;
      },
    };
  }
}
