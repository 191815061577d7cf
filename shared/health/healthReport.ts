// Storage reachability per account (global and each geography) and the poison-queue backlog (SPEC §3, §4).
import type { PoisonQueue } from '../hosting/queueFailures';
import { QUEUES } from '../storage/names';
import type { StorageAccounts } from '../storage/storageAccounts';

const PROBE_TIMEOUT_MS = 5_000;

export interface AccountHealth {
  reachable: boolean;
  latencyMs: number;
  error?: string;
}

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  storage: Record<string, AccountHealth>;
  poisonMessages: Record<string, number | null>;
}

const withTimeout = <T>(promise: Promise<T>, ms: number): Promise<T> =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref(),
    ),
  ]);

export async function healthReport(storage: StorageAccounts, poison: PoisonQueue): Promise<HealthReport> {
  const accounts = storage.all();
  const probes = await Promise.all(
    accounts.map(async (account): Promise<[string, AccountHealth]> => {
      const started = performance.now();
      try {
        await withTimeout(account.ping(), PROBE_TIMEOUT_MS);
        return [account.label, { reachable: true, latencyMs: Math.round(performance.now() - started) }];
      } catch (error) {
        const message = error instanceof Error ? error.message.split('\n')[0] : 'unreachable';
        return [
          account.label,
          { reachable: false, latencyMs: Math.round(performance.now() - started), error: message },
        ];
      }
    }),
  );
  const queues = [QUEUES.personalDataEvents, QUEUES.dsrWork, QUEUES.retentionWork];
  const counts = await Promise.all(
    queues.map(async (queue): Promise<[string, number | null]> => {
      try {
        return [`${queue}-poison`, await withTimeout(poison.count(queue), PROBE_TIMEOUT_MS)];
      } catch {
        return [`${queue}-poison`, null];
      }
    }),
  );
  const storageHealth = Object.fromEntries(probes);
  return {
    status: probes.every(([, h]) => h.reachable) ? 'healthy' : 'unhealthy',
    storage: storageHealth,
    poisonMessages: Object.fromEntries(counts),
  };
}
