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
] as const;
export type RecordCategory = (typeof RECORD_CATEGORIES)[number];

/** Categories the platform reports in events; admin contacts are kept only through their own API. */
export const EVENT_CATEGORIES = RECORD_CATEGORIES.filter(
  (category): category is Exclude<RecordCategory, 'adminContact'> => category !== 'adminContact',
);
