// The human words for each category of personal data, once (SPEC §10): what it holds, where it comes from,
// why it is processed, whose it is and who receives it. The processing register, the Art. 15 access report
// and the OpenAPI descriptions all read this table; retention and storage location are not words here but
// derived from the tables the service enforces (retention/categoryRetention.ts, the tenant's geography).
// Sources and purposes follow the data-usage table of the seed documents (Microsoft Managed Desktop).
import { RECORD_CATEGORIES, type RecordCategory } from './categories';

export interface CategoryWords {
  /** The category's name in words, as a heading. */
  label: string;
  /** What the records hold. */
  holds: string;
  /** The system the data comes from. */
  source: string;
  /** Why it is processed. */
  purpose: string;
  /** Whose data it is. */
  subjects: string;
  /** Who receives it (beyond the service itself). */
  recipients: string;
}

const USERS = 'Users of devices the organisation manages (employees, contractors and other users)';
const ADMINS_AND_GRANTS =
  "The organisation's administrators through the admin portal and its API; the service's operators only " +
  'under an approved, time-limited and audited access grant';

export const CATEGORY_WORDS: Readonly<Record<RecordCategory, CategoryWords>> = {
  device: {
    label: 'Device data',
    holds: 'Device name, model, manufacturer, operating system, serial number, enrolment and ownership',
    source: 'Microsoft Intune, from enrolled devices',
    purpose: 'To identify each device the organisation manages and deliver its configuration',
    subjects: USERS,
    recipients: ADMINS_AND_GRANTS,
  },
  deviceSecurity: {
    label: 'Device security settings',
    holds: 'Encryption, firewall, antivirus and secure boot state, and security baselines applied',
    source: 'Microsoft Intune, from enrolled devices',
    purpose: 'To keep managed devices secure and show their security state in reports',
    subjects: USERS,
    recipients: ADMINS_AND_GRANTS,
  },
  deviceHealth: {
    label: 'Device health',
    holds: 'Aggregated information about device health: crashes, performance, battery and disk state',
    source: 'Microsoft Intune and Windows, from enrolled devices',
    purpose: 'To find and fix devices that do not work well',
    subjects: USERS,
    recipients: ADMINS_AND_GRANTS,
  },
  deviceDiagnostics: {
    label: 'Device diagnostic information',
    holds: 'Diagnostic logs collected from a device to troubleshoot it',
    source: 'Microsoft Intune, collected from the device on request',
    purpose: 'To troubleshoot a device problem',
    subjects: USERS,
    recipients: ADMINS_AND_GRANTS,
  },
  directory: {
    label: 'Directory profile',
    holds: 'Name, user principal name, e-mail address, department, job title and group memberships',
    source: 'Microsoft Entra ID (Azure Active Directory)',
    purpose: 'To know which user a device belongs to, and for the reports tenant admins see',
    subjects: USERS,
    recipients: ADMINS_AND_GRANTS,
  },
  policy: {
    label: 'Policy and configuration data',
    holds: 'The policies, profiles and apps assigned to a device or user, and whether they applied',
    source: 'Microsoft Intune',
    purpose: "To deliver and verify the organisation's configuration on each device",
    subjects: USERS,
    recipients: ADMINS_AND_GRANTS,
  },
  alert: {
    label: 'Security alerts',
    holds: 'Microsoft Defender for Endpoint alerts on a device: what was detected, when, and the evidence',
    source: 'Microsoft Defender for Endpoint',
    purpose: 'To address security threats detected on managed devices',
    subjects: USERS,
    recipients:
      "The organisation's security administrators (alert data requests) and administrators; the service's " +
      'operators only under an approved, time-limited and audited access grant',
  },
  windowsDiagnostic: {
    label: 'Windows diagnostic data',
    holds: 'Windows diagnostic data such as update status, installed builds and reliability events',
    source: 'Windows, from enrolled devices',
    purpose: 'To determine the update status of managed devices and to provide and improve the service',
    subjects: USERS,
    recipients: ADMINS_AND_GRANTS,
  },
  usage: {
    label: 'Product and service usage data',
    holds: 'Which features of the service and its apps were used, and when',
    source: 'Microsoft Intune and the service itself',
    purpose: 'To provide the service and show its use in reports',
    subjects: USERS,
    recipients: ADMINS_AND_GRANTS,
  },
  systemLog: {
    label: 'System logs',
    holds:
      "Logs of the service's own operations; stored pseudonymised (identifiers replaced by a keyed hash)",
    source: 'The service itself',
    purpose: 'To run, secure and troubleshoot the service',
    subjects: 'Users and administrators named in the service’s operations',
    recipients: "The service's operators only under an approved, time-limited and audited access grant",
  },
  adminContact: {
    label: 'Administrator contact information',
    holds: "An administrator's name, e-mail address, and optionally phone number and job title",
    source: 'The administrator, through the admin portal',
    purpose: "To communicate with the organisation's administrators about the service",
    subjects: "The organisation's administrators",
    recipients: "The organisation's privacy administrators; the service's operators under a grant",
  },
  termsAcceptance: {
    label: 'Acceptances of the terms',
    holds: 'Which version of the terms and privacy statement a user accepted or withdrew, and when',
    source: 'The user, when shown the terms before enrolling',
    purpose: 'To keep evidence that users were informed and accepted the terms',
    subjects: USERS,
    recipients: ADMINS_AND_GRANTS,
  },
};

/** The words of a category. */
export const wordsOf = (category: RecordCategory): CategoryWords => CATEGORY_WORDS[category];

/** The categories in words, for an OpenAPI description: `device` (Device data), … */
export const categoriesInWords = (categories: readonly RecordCategory[] = RECORD_CATEGORIES): string =>
  categories.map((category) => `\`${category}\` (${CATEGORY_WORDS[category].label})`).join(', ');
