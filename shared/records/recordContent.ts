// What is sealed of a record (SPEC §4): everything that could name someone; for system logs, pseudonymised.
import { hmacWith } from '../crypto/pseudonymizer';
import type { PseudonymousSubject } from './personalDataRecord';
import type { SealedContent } from './recordRows';
import type { DataSubject } from '../vocabulary/dataSubject';
import type { RecordCategory } from '../vocabulary/categories';
import { IDENTIFIER_KINDS } from './subjectIdentity';
import { pseudonymiseSystemLog, pseudonymToken } from './systemLogPseudonyms';

/** A record as an event brings it. */
export interface UpsertInput {
  category: RecordCategory;
  recordId: string;
  subject: DataSubject;
  occurredAt: string;
  data: Record<string, unknown>;
  deviceName?: string;
}

/**
 * What is sealed of a record. System logs are pseudonymised (SPEC §4): the subject's identifiers, wherever
 * they occur (envelope, device name, data, free text included), become their per-tenant HMACs. Pure.
 */
export function recordContent(pseudonymKey: Buffer, input: UpsertInput): SealedContent {
  if (input.category !== 'systemLog') {
    return {
      recordId: input.recordId,
      subject: input.subject,
      ...(input.deviceName ? { deviceName: input.deviceName } : {}),
      data: input.data,
    };
  }
  const pseudonym = (kind: string, value: string) => hmacWith(pseudonymKey, kind, value);
  const subject: PseudonymousSubject = { pseudonymous: true };
  for (const kind of IDENTIFIER_KINDS) {
    const value = input.subject[kind];
    if (value !== undefined) subject[kind] = pseudonym(kind, value);
  }
  const device = input.deviceName;
  return {
    recordId: input.recordId,
    subject,
    ...(device ? { deviceName: pseudonymToken('device', pseudonym('device', device)) } : {}),
    data: pseudonymiseSystemLog(input.data, { ...input.subject, deviceName: device }, pseudonym),
  };
}
