// What an export package holds of each record and audit event: other people's identifiers redacted, and a
// soft-deleted record (not yet purged) marked as deleted.
import type { AuditEvent } from '../audit/auditEvent';
import type { PersonalDataRecord } from '../records/personalDataRecord';
import { type OwnIdentifiers, redactOtherPeople } from './redaction';

/** A record as the package holds it: redacted, and marked when soft-deleted but not yet purged. */
export type PackagedRecord = Omit<PersonalDataRecord, 'deletedAt'> & { deleted: boolean; deletedAt?: string };

/**
 * Packages records of one subject. Only the requester's identifiers stay readable, never a record's own
 * envelope as such: a record's identifiers that are not the requester's are redacted like anyone's.
 */
export function recordPackager(own: OwnIdentifiers): (record: PersonalDataRecord) => PackagedRecord {
  return (record) => {
    const { deletedAt, deviceName } = record;
    // Fields in the order of the file format; `deleted` says what soft-deleted-but-not-purged means.
    const packaged: Record<string, unknown> = {
      category: record.category,
      recordId: record.recordId,
      occurredAt: record.occurredAt,
      deleted: deletedAt !== undefined,
    };
    if (deletedAt !== undefined) packaged.deletedAt = deletedAt;
    if (deviceName !== undefined) packaged.deviceName = deviceName;
    packaged.subject = record.subject;
    packaged.data = record.data;
    return redactOtherPeople(packaged, own) as PackagedRecord;
  };
}

export function redactAuditEvent(event: AuditEvent, own: OwnIdentifiers): AuditEvent {
  const redacted = redactOtherPeople(event, own) as AuditEvent;
  // Apps and the service itself are not people: their ids say who acted and stay.
  if (event.actor.type === 'app' || event.actor.type === 'system') redacted.actor = event.actor;
  return redacted;
}
