// host.json as the local host reads it: the HTTP route prefix and the queue settings (`extensions.queues`),
// with the Azure host's defaults for what is absent.
import { readFileSync } from 'node:fs';

/** host.json `extensions.queues` (and the route prefix), in the units the local host works with. */
export interface HostSettings {
  routePrefix: string;
  /** Longest wait between two polls of an empty queue. */
  maxPollingIntervalMs: number;
  /** First wait after an empty poll; it doubles up to maxPollingIntervalMs, as the Azure host's backoff does. */
  minPollingIntervalMs: number;
  /** How long a failed message stays invisible before its next delivery. */
  visibilityTimeoutSeconds: number;
  batchSize: number;
  newBatchThreshold: number;
  maxDequeueCount: number;
  /** How long a received message stays invisible while it runs; renewed at half-time like the host's lease. */
  leaseSeconds: number;
}

/** The Queue service hands out at most 32 messages per receive. */
export const MAX_RECEIVE_BATCH = 32;

/** Reads the queue settings and route prefix of host.json, with the Azure host's defaults for what is absent. */
export function readHostSettings(hostJsonPath: string): HostSettings {
  const hostJson = JSON.parse(readFileSync(hostJsonPath, 'utf8')) as {
    extensions?: { http?: { routePrefix?: string }; queues?: Record<string, unknown> };
  };
  const queues = hostJson.extensions?.queues ?? {};
  const number = (name: string, fallback: number) =>
    typeof queues[name] === 'number' ? queues[name] : fallback;
  const timeSpan = (name: string, fallbackMs: number) =>
    typeof queues[name] === 'string' ? parseTimeSpan(queues[name], `host.json queues.${name}`) : fallbackMs;
  const batchSize = Math.min(MAX_RECEIVE_BATCH, Math.max(1, number('batchSize', 16)));
  return {
    routePrefix: hostJson.extensions?.http?.routePrefix ?? 'api',
    maxPollingIntervalMs: timeSpan('maxPollingInterval', 60_000),
    minPollingIntervalMs: 100,
    visibilityTimeoutSeconds: Math.ceil(timeSpan('visibilityTimeout', 0) / 1000),
    batchSize,
    newBatchThreshold: number('newBatchThreshold', Math.floor(batchSize / 2)),
    maxDequeueCount: number('maxDequeueCount', 5),
    leaseSeconds: 60,
  };
}

/** A .NET TimeSpan (`[d.]hh:mm:ss[.fffffff]`) in milliseconds. */
function parseTimeSpan(value: string, what: string): number {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(value.trim());
  if (!match) throw new Error(`${what}: "${value}" is not a time span like 00:00:02.`);
  const [, days = '0', hours = '0', minutes = '0', seconds = '0', fraction = ''] = match;
  return (
    ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000 +
    Number(seconds) * 1000 +
    Math.round(Number(`0.${fraction || '0'}`) * 1000)
  );
}
