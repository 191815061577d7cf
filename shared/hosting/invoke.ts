// How a host runs each kind of function. The Azure host (functions/index.ts) and the local host (local/)
// both call these, so a function behaves the same under either.
import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from '@azure/functions';

import type { Services } from '../composition';
import { handleHttpRequest } from '../http/httpEndpoint';
import type { HttpFunction, QueueFunction, TimerFunction } from './functionDefinition';
import { dequeueCountOf, MAX_DEQUEUE_COUNT } from './queueFailures';
import { isTenantMigrating, retryAfterOf } from '../storage/residencyGuard';

export const invokeHttp = (
  fn: HttpFunction,
  services: Services,
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> => handleHttpRequest(fn.operations, services, request, context);

export const invokeTimer = (
  fn: TimerFunction,
  services: Services,
  timer: Timer,
  context: InvocationContext,
): Promise<void> => fn.run(services, timer, context);

/**
 * Runs a queue function. A failure is rethrown so the host redelivers the message, except on the last
 * allowed delivery, where the message goes to `<queue>-poison` with the error as its reason. A message
 * whose tenant is moving geography (SPEC §8: the write fence refused it) is put back on its queue, due
 * after the refusal's Retry-After, however often that happens: it waits for the move, never poisoned.
 */
export async function invokeQueue(
  fn: QueueFunction,
  services: Services,
  message: unknown,
  context: InvocationContext,
): Promise<void> {
  try {
    await fn.handle(services, message, context);
  } catch (error) {
    if (isTenantMigrating(error)) {
      const delay = retryAfterOf(error);
      await services.workQueue.send(fn.queueName, message, delay);
      context.log(`${fn.queueName}: ${error.message} The message comes back in ${delay} s.`);
      return;
    }
    if (dequeueCountOf(context) < MAX_DEQUEUE_COUNT) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    await services.poison.put(fn.queueName, message, `Failed ${MAX_DEQUEUE_COUNT} times: ${reason}`, context);
  }
}
