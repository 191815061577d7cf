// Applies the events of `personal-data-events` (SPEC §4); the trigger decodes them and poisons the invalid
// and the refused, and each item of a batch this refuses on its own. Processing is idempotent, so a
// redelivered event changes nothing.
import type { AuditLog } from '../audit/auditEvent';
import { SCHEMA_MISMATCH, validationDetails } from '../errorDetails';
import { DomainError, type ErrorCode } from '../errors';
import { deterministicId } from '../ids';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import {
  batchItemEvent,
  parseBatchItem,
  type PersonalDataEvent,
  type RecordsUpsertedBatch,
} from './personalDataEvent';
import type { RecordStore, UpsertInput } from './recordStore';

/** Domain errors that say the event itself is refused, so redelivering it cannot succeed. */
const REFUSALS: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ValidationFailed',
  'NotFound',
  'TenantNotFound',
  'NotEligible',
  'InvalidState',
]);

/**
 * Whether an error refuses the event itself (unknown tenant, closed geography): it would on every
 * redelivery, so the event is poisoned. Anything else (a busy audit chain, a tenant on the move, a storage
 * fault) is retried by redelivery.
 */
export const refusesEvent = (error: unknown): error is DomainError =>
  error instanceof DomainError && REFUSALS.has(error.code);

/**
 * An item of a batch refused on its own (invalid, or refused by a rule): the trigger poisons it as the
 * `record.upserted` event it stands for, with its reason, while the rest of its batch is stored.
 */
export interface RefusedItem {
  /** Its place in the batch (from 0): with the batch's event id it names the item's poison entry stably. */
  index: number;
  /** The item as a `record.upserted` event of its batch's tenant, as if it had come alone. */
  event: unknown;
  reason: string;
  details?: unknown;
}

export class PersonalDataEventProcessor {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly audit: AuditLog,
    private readonly records: RecordStore,
    /**
     * The write fence's bound (RESIDENCY_FENCE_SECONDS in ms): a tenant's directory entry is read at most
     * once per this long for its events, not for each one (TenantDirectory.resolveRecent).
     */
    private readonly fenceMs: number,
  ) {}

  /**
   * Applies a valid event; throws a refusal (see refusesEvent) or a failure to retry. Returns the items of a
   * batch refused on their own (none for any other event), for the trigger to poison.
   */
  async apply(event: PersonalDataEvent): Promise<RefusedItem[]> {
    if (event.type === 'records.upserted') return this.applyBatch(event);
    await this.applyOne(event);
    return [];
  }

  private async applyOne(event: Exclude<PersonalDataEvent, RecordsUpsertedBatch>): Promise<void> {
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
    const tenant = await this.directory.resolveRecent(event.tenantId, this.fenceMs);
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
   * Each item as if it had come alone, in the order given: its own eventId, the newer occurredAt wins (two
   * versions of one record in a batch included), deletions known for the record still cover it. The tenant
   * is resolved once: an unknown one refuses the whole batch. An item that does not validate, or that a rule
   * refuses, is returned to be poisoned after the valid rest is stored; any other failure is thrown at once,
   * so the whole batch is redelivered (its items already stored change nothing) and nothing is poisoned on
   * a delivery that does not finish its items.
   */
  private async applyBatch(batch: RecordsUpsertedBatch): Promise<RefusedItem[]> {
    const tenant = await this.directory.resolveRecent(batch.tenantId, this.fenceMs);
    // What depends on the items' rows (expiry entries, device lookups, counts) is written once, at the end.
    return this.records.batch(tenant, () => this.applyItems(tenant, batch));
  }

  private async applyItems(tenant: TenantScope, batch: RecordsUpsertedBatch): Promise<RefusedItem[]> {
    const refused: RefusedItem[] = [];
    const valid: { index: number; input: UpsertInput }[] = [];
    for (const [index, item] of batch.records.entries()) {
      const parsed = parseBatchItem(batch.tenantId, item);
      if (parsed.success) {
        valid.push({ index, input: parsed.data });
        continue;
      }
      const event = batchItemEvent(batch.tenantId, item);
      refused.push({ index, event, reason: SCHEMA_MISMATCH, details: validationDetails(parsed.error) });
    }
    // A subject's items go in one transaction where they can (RecordStore.upsertAll).
    const outcomes = await this.records.upsertAll(
      tenant,
      valid.map((item) => item.input),
    );
    for (const [n, outcome] of outcomes.entries()) {
      if (!('error' in outcome)) continue;
      const { error } = outcome;
      if (!refusesEvent(error)) throw error;
      const { index } = valid[n]!;
      const event = batchItemEvent(batch.tenantId, batch.records[index]);
      refused.push({ index, event, reason: `${error.code}: ${error.message}` });
    }
    return refused.sort((a, b) => a.index - b.index);
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
}
