// The audit event of SPEC §7 and the port the rest of the service writes through.
import type { Page, PageRequest } from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';

export type ActorType = 'user' | 'app' | 'system' | 'operator';

export interface Actor {
  type: ActorType;
  id: string;
  upn?: string;
}

export interface AuditEventInput {
  /**
   * A deterministic id makes the append idempotent: appending an id already in the log returns the stored
   * event instead of writing a second one (retries and redeliveries rely on this). Omitted: a random id.
   */
  id?: string;
  action: string;
  actor: Actor;
  target: { type: string; id: string };
  outcome: 'success' | 'failure' | 'denied';
  correlationId: string;
  details?: Record<string, unknown>;
}

export interface AuditEvent {
  id: string;
  /** Position in the tenant's chain, from 1. */
  sequence: number;
  time: string;
  tenantId: string;
  actor: Actor;
  action: string;
  target: { type: string; id: string };
  outcome: AuditEventInput['outcome'];
  correlationId: string;
  details: Record<string, unknown>;
  previousHash: string;
  hash: string;
}

export interface AuditFilter {
  from?: Date;
  to?: Date;
  /** Actor id (object id) or UPN. */
  actor?: string;
  action?: string;
  /** Events whose actor (id or UPN) or target id is any of these (discovery of a data subject). */
  involving?: readonly string[];
  /** Or whose `details.subjectRef` is any of these: requests about the subject (pseudonymous). */
  subjectRefs?: readonly string[];
}

export interface AuditVerification {
  valid: boolean;
  checked: number;
  firstBrokenEventId?: string;
}

export interface AuditPurgeResult {
  /** Events this call deleted; rows an earlier, interrupted or a concurrent purge deleted are not counted. */
  purged: number;
  /** Where the chain now starts (the last purged event); absent while nothing was ever purged. */
  checkpoint?: { sequence: number; hash: string; lastEventId?: string };
}

export interface AuditLog {
  append(tenant: TenantScope, event: AuditEventInput): Promise<AuditEvent>;
  list(tenant: TenantScope, filter: AuditFilter, page: PageRequest): Promise<Page<AuditEvent>>;
  verify(tenant: TenantScope): Promise<AuditVerification>;
  /**
   * Retention only (SPEC §6: audit events are deleted after 1 year; no route calls this): deletes the events
   * whose time is before `cutoff`, oldest first, and moves the chain's checkpoint past them first, so that
   * verification stays valid even when the purge stops part-way. Idempotent and resumable; safe beside appends.
   */
  purgeBefore(tenant: TenantScope, cutoff: Date): Promise<AuditPurgeResult>;
}
