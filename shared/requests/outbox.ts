// Side effects of a request change (its audit event, its next work message), stored on the request in the
// same write as the change and carried out after it. A crash in between leaves them on the request, and the
// next operation on it carries them out: no audit event or work message is ever lost. Audit appends are
// idempotent by event id and work messages are idempotent at their consumer, so repeating one is harmless.
import type { AuditEventInput, AuditLog } from '../audit/auditEvent';
import type { TenantScope } from '../residency/tenantDirectory';
import { ConcurrentChangeError, type StoredDocument } from '../storage/documentTable';
import type { WorkQueue } from '../storage/workQueue';

export type OutboxEffect =
  | { kind: 'audit'; event: AuditEventInput & { id: string } }
  | { kind: 'enqueue'; queue: string; message: Record<string, unknown> };

/** Where effects go: the tenant's audit chain and the work queues. */
export interface EffectSinks {
  audit: AuditLog;
  workQueue: WorkQueue;
}

type Stored<T> = StoredDocument<T, OutboxEffect>;

/**
 * Carries out the effects recorded on a stored document, then clears them (guarded by its ETag: if it changed
 * meanwhile, whoever changed it carries the remaining effects out again, idempotently).
 */
export async function carryOut<T, S extends TenantScope>(
  tenant: S,
  stored: Stored<T>,
  sinks: EffectSinks,
  replace: (tenant: S, stored: Stored<T>) => Promise<Stored<T>>,
): Promise<Stored<T>> {
  if (stored.outbox.length === 0) return stored;
  for (const effect of stored.outbox) {
    if (effect.kind === 'audit') await sinks.audit.append(tenant, effect.event);
    else await sinks.workQueue.send(effect.queue, effect.message);
  }
  try {
    return await replace(tenant, { ...stored, outbox: [] });
  } catch (error) {
    if (error instanceof ConcurrentChangeError) return stored;
    throw error;
  }
}

/**
 * After a change is durable: its effects are carried out now if they can be; if not (the audit chain is busy,
 * storage faltered), the change stands and they stay on the document, where the next operation on it or a
 * recovery timer carries them out.
 */
export async function carryOutOrLeave<T, S extends TenantScope>(
  tenant: S,
  stored: Stored<T>,
  sinks: EffectSinks,
  replace: (tenant: S, stored: Stored<T>) => Promise<Stored<T>>,
): Promise<Stored<T>> {
  try {
    return await carryOut(tenant, stored, sinks, replace);
  } catch {
    return stored;
  }
}
