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

class ProbeTimeout extends Error {}

const withTimeout = <T>(promise: Promise<T>, ms: number): Promise<T> =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new ProbeTimeout()), ms).unref()),
  ]);

/** Why an account did not answer, in words that name no host, address or library (the log has the rest). */
const TIMED_OUT = `no answer within ${PROBE_TIMEOUT_MS / 1000} s`;
const UNREACHABLE = 'unreachable';

export async function healthReport(
  storage: StorageAccounts,
  poison: PoisonQueue,
  log: (message: string, error: unknown) => void = () => undefined,
): Promise<HealthReport> {
  const accounts = storage.all();
  const probes = await Promise.all(
    accounts.map(async (account): Promise<[string, AccountHealth]> => {
      const started = performance.now();
      try {
        await withTimeout(account.ping(), PROBE_TIMEOUT_MS);
        return [account.label, { reachable: true, latencyMs: Math.round(performance.now() - started) }];
      } catch (error) {
        log(`Storage account ${account.label} did not answer the health probe:`, error);
        const reason = error instanceof ProbeTimeout ? TIMED_OUT : UNREACHABLE;
        return [
          account.label,
          { reachable: false, latencyMs: Math.round(performance.now() - started), error: reason },
        ];
      }
    }),
  );
  const queues = [QUEUES.personalDataEvents, QUEUES.dsrWork, QUEUES.retentionWork, QUEUES.alertDataWork];
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
