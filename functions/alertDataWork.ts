// Queue trigger on `alert-data-work`: runs an alert data request's extraction or deletion. A malformed
// message goes to the poison queue with its reason; work that fails on its last delivery ends the request
// as `failed`.
import { DomainError } from '../shared/errors';
import type { QueueFunction } from '../shared/hosting/functionDefinition';
import { dequeueCountOf, MAX_DEQUEUE_COUNT } from '../shared/hosting/queueFailures';
import { alertWorkMessageSchema } from '../shared/alertRequests/alertRequestFulfilment';
import { QUEUE_CONNECTION, QUEUES } from '../shared/storage/names';
import { isTenantMigrating } from '../shared/storage/residencyGuard';

export const alertDataWork: QueueFunction = {
  kind: 'queue',
  name: 'alertDataWork',
  queueName: QUEUES.alertDataWork,
  connection: QUEUE_CONNECTION,
  async handle(services, message, context) {
    const work = await services.poison.decode(QUEUES.alertDataWork, alertWorkMessageSchema, message, context);
    if (!work) return;
    try {
      await services.alertFulfilment.run(work);
    } catch (error) {
      // A request or tenant that does not exist will not exist on the next delivery either.
      if (error instanceof DomainError && (error.code === 'NotFound' || error.code === 'TenantNotFound')) {
        await services.poison.put(QUEUES.alertDataWork, message, `${error.code}: ${error.message}`, context);
        return;
      }
      // The tenant is moving geography: the work waits for the move (invokeQueue puts it back), never fails.
      if (isTenantMigrating(error)) throw error;
      if (dequeueCountOf(context) >= MAX_DEQUEUE_COUNT) {
        context.error(`alert-data-work of request ${work.requestId} failed for good:`, error);
        await services.alertFulfilment.fail(work, error);
      }
      throw error; // redelivered, or moved to alert-data-work-poison with this reason by the host adapter
    }
  },
};
