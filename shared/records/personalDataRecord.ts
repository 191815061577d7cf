// A personal data record as the service holds it (SPEC §4), decrypted: what discovery counts, packages
// export and requests erase.
import type { DataSubject } from '../vocabulary/dataSubject';
import type { RecordCategory } from '../vocabulary/categories';

export interface PersonalDataRecord {
  category: RecordCategory;
  recordId: string;
  occurredAt: string;
  /** Soft-deleted records are still held until purged: they are exported, marked as deleted. */
  deletedAt?: string;
  deviceName?: string;
  /** For `systemLog` records: HMACs of the identifiers, never the identifiers themselves. */
  subject: DataSubject | PseudonymousSubject;
  data: Record<string, unknown>;
}

/** Subject identifiers replaced by a per-tenant HMAC (system logs are stored this way). */
export interface PseudonymousSubject {
  pseudonymous: true;
  upn?: string;
  objectId?: string;
  email?: string;
}

/** Categories reported by devices: corrected on the device, not here (rectify answers DeviceReported). */
export const DEVICE_REPORTED_CATEGORIES: readonly RecordCategory[] = [
  'device',
  'deviceSecurity',
  'deviceHealth',
  'deviceDiagnostics',
  'policy',
  'alert',
  'windowsDiagnostic',
  'usage',
];
