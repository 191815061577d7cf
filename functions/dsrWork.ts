// Queue trigger on `dsr-work`: runs a request's discovery or fulfilment step. A malformed message goes to
// the poison queue with its reason; a step that fails on its last delivery ends the request as `failed`.
import { DomainError } from '../shared/errors';
import type { QueueFunction } from '../shared/hosting/functionDefinition';
import { dequeueCountOf, MAX_DEQUEUE_COUNT } from '../shared/hosting/queueFailures';
import { dsrWorkMessageSchema } from '../shared/requests/requestFulfilment';
import { QUEUE_CONNECTION, QUEUES } from '../shared/storage/names';
import { isTenantMigrating } from '../shared/storage/residencyGuard';

export const dsrWork: QueueFunction = {
  kind: 'queue',
  name: 'dsrWork',
  queueName: QUEUES.dsrWork,
  connection: QUEUE_CONNECTION,
  async handle(services, message, context) {
    const work = await services.poison.decode(QUEUES.dsrWork, dsrWorkMessageSchema, message, context);
    if (!work) return;
    try {
      await services.fulfilment.run(work);
    } catch (error) {
      // A request or tenant that does not exist will not exist on the next delivery either.
      if (error instanceof DomainError && (error.code === 'NotFound' || error.code === 'TenantNotFound')) {
        await services.poison.put(QUEUES.dsrWork, message, `${error.code}: ${error.message}`, context);
        return;
      }
      // The tenant is moving geography: the step waits for the move (invokeQueue puts it back), never fails.
      if (isTenantMigrating(error)) throw error;
      if (dequeueCountOf(context) >= MAX_DEQUEUE_COUNT) {
        context.error(`dsr-work ${work.step} of request ${work.requestId} failed for good:`, error);
        await services.fulfilment.fail(work, error);
      }
      throw error; // redelivered, or moved to dsr-work-poison with this reason by the host adapter
    }
  },
};
