// Processes one message of `personal-data-events`. Invalid events are never dropped: they go to the poison
// queue with their reason. Processing is idempotent, so a redelivered event changes nothing.
import type { InvocationContext } from '@azure/functions';

import type { AuditLog } from '../audit/auditEvent';
import { DomainError, type ErrorCode } from '../errors';
import type { PoisonQueue } from '../hosting/queueFailures';
import { deterministicId } from '../ids';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import { QUEUES } from '../storage/names';
import { type PersonalDataEvent, personalDataEventSchema } from './personalDataEvent';
import type { RecordStore } from './recordStore';

export type EventOutcome = 'processed' | 'poisoned';

/** Domain errors that say the event itself is refused, so redelivering it cannot succeed. */
const REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ValidationFailed',
  'NotFound',
  'TenantNotFound',
  'NotEligible',
  'InvalidState',
]);

export class PersonalDataEventProcessor {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly audit: AuditLog,
    private readonly poison: PoisonQueue,
    private readonly records: RecordStore,
  ) {}

  async process(message: unknown, context: InvocationContext): Promise<EventOutcome> {
    const event = await this.poison.decode(
      QUEUES.personalDataEvents,
      personalDataEventSchema,
      message,
      context,
    );
    if (!event) return 'poisoned';
    try {
      await this.apply(event);
      return 'processed';
    } catch (error) {
      // A rule that refuses the event (unknown tenant, closed geography) will refuse it on every redelivery;
      // anything else (a busy audit chain, a tenant on the move, a storage fault) passes: it is retried.
      if (error instanceof DomainError && REFUSALS.has(error.code)) {
        await this.reject(message, `${error.code}: ${error.message}`, context);
        return 'poisoned';
      }
      throw error;
    }
  }

  private async apply(event: PersonalDataEvent): Promise<void> {
    if (event.type === 'tenant.provisioned') {
      const { entry, created, reactivated } = await this.directory.provision(event);
      const target = { type: 'tenant', id: entry.tenantId };
      const details = {
        countryCode: entry.countryCode,
        geography: entry.geography,
        created,
        ...(reactivated ? { subscriptionEndedAt: reactivated, passiveDeletion: 'cancelled' } : {}),
      };
      const action = reactivated ? 'tenant.reactivated' : 'tenant.provisioned';
      return this.auditEvent(this.directory.scopeOf(entry), event, action, target, details);
    }
    if (event.type === 'tenant.subscriptionEnded') {
      const entry = await this.directory.endSubscription(event.tenantId, event.endedAt);
      const target = { type: 'tenant', id: entry.tenantId };
      return this.auditEvent(this.directory.scopeOf(entry), event, 'tenant.subscriptionEnded', target, {});
    }
    const tenant = await this.directory.resolve(event.tenantId);
    switch (event.type) {
      case 'record.upserted':
        await this.records.upsert(tenant, event);
        return;
      case 'record.deleted':
        await this.records.softDeleteRecord(tenant, event.category, event.recordId, event.deletedAt);
        return;
      case 'subject.deleted': {
        const softDeleted = await this.records.softDeleteSubject(tenant, event.subject, event.deletedAt);
        const target = { type: 'dataSubject', id: 'pseudonymous' };
        return this.auditEvent(tenant, event, 'records.subjectDeleted', target, { softDeleted });
      }
      case 'device.retired': {
        const softDeleted = await this.records.softDeleteDevice(tenant, event.deviceName, event.deletedAt);
        const target = { type: 'device', id: 'pseudonymous' };
        return this.auditEvent(tenant, event, 'records.deviceRetired', target, { softDeleted });
      }
    }
  }

  /**
   * Tenant events and bulk changes are audited (with counts); single record upserts and deletes are not,
   * since the platform's own systems log those and the audit log would otherwise grow with every device
   * check-in. Audit events are kept for a year and cannot be erased, so they name no data subject: targets
   * are pseudonymous. The id comes from the event id, so a redelivery writes no second event.
   */
  private async auditEvent(
    tenant: TenantScope,
    event: PersonalDataEvent,
    action: string,
    target: { type: string; id: string },
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.audit.append(tenant, {
      id: deterministicId(event.tenantId, 'event', event.eventId),
      action,
      actor: { type: 'system', id: 'personal-data-events' },
      target,
      outcome: 'success',
      correlationId: event.eventId,
      details,
    });
  }

  private reject(message: unknown, reason: string, context: InvocationContext, details?: unknown) {
    return this.poison.put(QUEUES.personalDataEvents, message, reason, context, details);
  }
}
