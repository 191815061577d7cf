// The shape of every function the app declares. functions/registry.ts lists them; functions/index.ts hands
// them to @azure/functions and local/ runs the very same list.
import type { InvocationContext, Timer } from '@azure/functions';

import type { Services } from '../composition';
import type { Operations } from '../http/apiOperation';

export interface HttpFunction {
  kind: 'http';
  name: string;
  /** Route template without the `api/` prefix, e.g. `tenants/{tenantId}/dsr/{requestId}`. */
  route: string;
  operations: Operations;
}

export interface TimerFunction {
  kind: 'timer';
  name: string;
  /** NCRONTAB with seconds: `{second} {minute} {hour} {day} {month} {day-of-week}`, UTC. */
  schedule: string;
  run(services: Services, timer: Timer, context: InvocationContext): Promise<void>;
}

export interface QueueFunction {
  kind: 'queue';
  name: string;
  queueName: string;
  /** App setting naming the storage account of the queue. */
  connection: string;
  /** The message as the Functions host delivers it: parsed JSON when it is JSON, the string otherwise. */
  handle(services: Services, message: unknown, context: InvocationContext): Promise<void>;
}

export type FunctionDefinition = HttpFunction | TimerFunction | QueueFunction;
