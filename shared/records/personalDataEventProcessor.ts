// Processes one message of `personal-data-events`. Invalid events are never dropped: they go to the poison
// queue with their reason. Processing is idempotent, so a redelivered event changes nothing.
import type { InvocationContext } from '@azure/functions';

import type { AuditLog } from '../audit/auditEvent';
import { DomainError } from '../errors';
import type { PoisonQueue } from '../hosting/queueFailures';
import { validationDetails } from '../http/errorResponse';
import { deterministicId } from '../ids';
import type { TenantDirectory } from '../residency/tenantDirectory';
import { QUEUES } from '../storage/names';
import { type PersonalDataEvent, personalDataEventSchema } from './personalDataEvent';

export type EventOutcome = 'processed' | 'poisoned';

export class PersonalDataEventProcessor {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly audit: AuditLog,
    private readonly poison: PoisonQueue,
  ) {}

  async process(message: unknown, context: InvocationContext): Promise<EventOutcome> {
    const parsed = personalDataEventSchema.safeParse(message);
    if (!parsed.success) {
      await this.reject(
        message,
        'The event does not match the schema.',
        context,
        validationDetails(parsed.error),
      );
      return 'poisoned';
    }
    const event = parsed.data;
    try {
      await this.apply(event);
      return 'processed';
    } catch (error) {
      // A rule that refuses the event (unknown tenant, closed geography) will refuse it on every redelivery.
      if (error instanceof DomainError && error.code !== 'Internal') {
        await this.reject(message, `${error.code}: ${error.message}`, context);
        return 'poisoned';
      }
      throw error;
    }
  }

  private async apply(event: PersonalDataEvent): Promise<void> {
    switch (event.type) {
      case 'tenant.provisioned': {
        const { entry, created } = await this.directory.provision(event);
        await this.audit.append(this.directory.scopeOf(entry), {
          id: deterministicId(event.tenantId, 'event', event.eventId),
          action: 'tenant.provisioned',
          actor: { type: 'system', id: 'personal-data-events' },
          target: { type: 'tenant', id: entry.tenantId },
          outcome: 'success',
          correlationId: event.eventId,
          details: { countryCode: entry.countryCode, geography: entry.geography, created },
        });
        return;
      }
      default:
        // Valid record events wait in the poison queue, with this reason, until the records capability
        // processes them; they are kept, not lost, and can be replayed.
        throw new DomainError('NotEligible', `Events of type ${event.type} are not processed yet.`);
    }
  }

  private reject(message: unknown, reason: string, context: InvocationContext, details?: unknown) {
    return this.poison.put(QUEUES.personalDataEvents, message, reason, context, details);
  }
}
