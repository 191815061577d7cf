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
] as const;
export type RecordCategory = (typeof RECORD_CATEGORIES)[number];
