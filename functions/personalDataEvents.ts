// Queue trigger on `personal-data-events`: records collected or deleted, tenants provisioned or ended. Invalid
// events are never dropped: they go to the poison queue with their reason, as do events a rule refuses, and
// each item of a batch refused on its own (as the single event it stands for, its batch's rest stored).
import type { QueueFunction } from '../shared/hosting/functionDefinition';
import { personalDataEventSchema } from '../shared/records/personalDataEvent';
import { refusesEvent } from '../shared/records/personalDataEventProcessor';
import { QUEUE_CONNECTION, QUEUES } from '../shared/storage/names';

export const personalDataEvents: QueueFunction = {
  kind: 'queue',
  name: 'personalDataEvents',
  queueName: QUEUES.personalDataEvents,
  connection: QUEUE_CONNECTION,
  async handle(services, message, context) {
    const event = await services.poison.decode(
      QUEUES.personalDataEvents,
      personalDataEventSchema,
      message,
      context,
    );
    if (!event) return;
    try {
      const refused = await services.events.apply(event);
      for (const item of refused) {
        await services.poison.put(QUEUES.personalDataEvents, item.event, item.reason, context, item.details, {
          eventId: event.eventId,
          item: item.index,
        });
      }
    } catch (error) {
      if (!refusesEvent(error)) throw error; // redelivered
      await services.poison.put(
        QUEUES.personalDataEvents,
        message,
        `${error.code}: ${error.message}`,
        context,
      );
    }
  },
};
