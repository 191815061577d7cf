// The local host as its tests start it: on a free port against the test Azurite, with short queue waits and
// its log kept; and small functions of each kind to run in it.
import { randomUUID } from 'node:crypto';

import type { QueueClient } from '@azure/storage-queue';

import type { HostSettings } from '../../local/hostSettings';
import { LocalHost } from '../../local/localHost';
import type { Services } from '../../shared/composition';
import type {
  FunctionDefinition,
  HttpFunction,
  QueueFunction,
  TimerFunction,
} from '../../shared/hosting/functionDefinition';
import { PoisonQueue } from '../../shared/hosting/queueFailures';
import { testStorage } from '../support/testStorage';

export const storage = testStorage();
const services = {
  storage,
  poison: new PoisonQueue(storage.global, () => new Date()),
} as unknown as Services;
/** Short waits so redeliveries happen in milliseconds rather than host.json's seconds. */
const FAST: Partial<HostSettings> = {
  minPollingIntervalMs: 20,
  maxPollingIntervalMs: 100,
  visibilityTimeoutSeconds: 0,
};

const hosts: LocalHost[] = [];

/** Stops every host the test started (each test file runs it after each test). */
export async function stopHosts(): Promise<void> {
  await Promise.all(hosts.splice(0).map((host) => host.stop()));
}

export async function startHost(
  functions: FunctionDefinition[],
  options: { settings?: Partial<HostSettings>; env?: NodeJS.ProcessEnv } = {},
) {
  const log: string[] = [];
  const host = new LocalHost({
    functions,
    services,
    port: 0,
    log: (level, message) => log.push(`${level}: ${message}`),
    settings: { ...FAST, ...options.settings },
    ...(options.env ? { env: options.env } : {}),
  });
  hosts.push(host);
  const { baseUrl } = await host.start();
  return { host, baseUrl, log };
}

export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export const uniqueQueue = () => `local-host-${randomUUID().slice(0, 8)}`;
export const messageCount = async (queue: QueueClient) =>
  (await queue.getProperties()).approximateMessagesCount ?? 0;

/** An HTTP function whose GET answers with its own name and the route parameters it received. */
export const echoRoute = (name: string, route: string): HttpFunction => ({
  kind: 'http',
  name,
  route,
  operations: {
    GET: {
      operationId: name,
      summary: name,
      access: { kind: 'public' },
      responses: [],
      handle: async ({ request }) => ({ status: 200, body: { fn: name, params: request.params } }),
    },
  },
});

export const timerFunction = (name: string, schedule: string, run: TimerFunction['run']): TimerFunction => ({
  kind: 'timer',
  name,
  schedule,
  run,
});

export const queueFunction = (
  queueName: string,
  handle: QueueFunction['handle'],
  connection = 'STORAGE_GLOBAL',
) => ({ kind: 'queue', name: `consume-${queueName}`, queueName, connection, handle }) satisfies QueueFunction;
