// How a host runs each kind of function. The Azure host (functions/index.ts) and the local host (local/)
// both call these, so a function behaves the same under either.
import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from '@azure/functions';

import type { Services } from '../composition';
import { handleHttpRequest } from '../http/httpEndpoint';
import type { HttpFunction, QueueFunction, TimerFunction } from './functionDefinition';
import { dequeueCountOf, MAX_DEQUEUE_COUNT } from './queueFailures';

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
 * allowed delivery, where the message goes to `<queue>-poison` with the error as its reason.
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
    if (dequeueCountOf(context) < MAX_DEQUEUE_COUNT) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    await services.poison.put(fn.queueName, message, `Failed ${MAX_DEQUEUE_COUNT} times: ${reason}`, context);
  }
}
