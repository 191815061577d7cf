// Queue trigger on `personal-data-events`: records collected or deleted, tenants provisioned or ended.
import type { QueueFunction } from '../shared/hosting/functionDefinition';
import { QUEUE_CONNECTION, QUEUES } from '../shared/storage/names';

export const personalDataEvents: QueueFunction = {
  kind: 'queue',
  name: 'personalDataEvents',
  queueName: QUEUES.personalDataEvents,
  connection: QUEUE_CONNECTION,
  async handle(services, message, context) {
    await services.events.process(message, context);
  },
};
