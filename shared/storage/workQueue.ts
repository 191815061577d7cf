// Messages for the service's own work queues (dsr-work, later retention-work). They carry ids only.
import type { StorageAccount } from './storageAccount';
import { sendJson } from './queueMessages';

export class WorkQueue {
  constructor(private readonly account: StorageAccount) {}

  async send(queueName: string, message: unknown, delaySeconds?: number): Promise<void> {
    await sendJson(await this.account.queue(queueName), message, delaySeconds);
  }
}
