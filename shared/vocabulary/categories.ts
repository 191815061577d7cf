// The categories of personal data the service holds (SPEC §4): the vocabulary every capability shares.

export const RECORD_CATEGORIES = [
  'device',
  'deviceSecurity',
  'deviceHealth',
  'deviceDiagnostics',
  'directory',
  'policy',
  'alert',
  'windowsDiagnostic',
  'usage',
  'systemLog',
  /** A tenant admin's own contact data (SPEC §9), kept through /admin-contacts/me. */
  'adminContact',
  /** A user's acceptances and withdrawals of the tenant's terms (SPEC §10), kept through /terms/acceptances. */
  'termsAcceptance',
] as const;
export type RecordCategory = (typeof RECORD_CATEGORIES)[number];

/** Categories the service collects itself, through their own APIs, never from events. */
export const SERVICE_CATEGORIES = ['adminContact', 'termsAcceptance'] as const;
type ServiceCategory = (typeof SERVICE_CATEGORIES)[number];

/** Categories the platform reports in events. */
export const EVENT_CATEGORIES = RECORD_CATEGORIES.filter(
  (category): category is Exclude<RecordCategory, ServiceCategory> =>
    !(SERVICE_CATEGORIES as readonly string[]).includes(category),
);
