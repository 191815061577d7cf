// The processor's record of processing for one tenant (GDPR Art. 30(2), SPEC §10), built from the tables the
// service enforces and never written by hand: the categories and their words (vocabulary/categoryWords.ts),
// the retention each category gets from the purge's own rules (retention/categoryRetention.ts), the tenant's
// geography (residency), the operator access rules (operatorAccess/accessRequest.ts, the tenant's policy and
// the operator settings). Changing any of them changes the register. Pure.
import { MAX_GRANT_MINUTES, MIN_GRANT_MINUTES, UNDECIDED_EXPIRY_MS } from '../operatorAccess/accessRequest';
import { RETENTION_POLICY, type RetentionRuleName } from '../retention/retentionPolicy';
import { RECORD_CATEGORIES } from '../vocabulary/categories';
import type { Geography } from '../vocabulary/geographies';
import {
  type CategoryDisclosure,
  discloseCategory,
  type DisclosedRule,
  disclosedRule,
  NO_PROFILING,
} from './categoryDisclosure';

export interface RegisterInput {
  tenant: { tenantId: string; displayName: string; countryCode: string; geography: Geography };
  /** The tenant's operator access policy. */
  requireTenantApproval: boolean;
  /** The operator settings: where staff sit, which authentication context their sign-in needs. */
  operators: { staffLocations: readonly string[]; authContext: string };
  generatedAt: Date;
}

export interface RegisterCategory extends CategoryDisclosure {
  /** From where, and how, the service's staff may reach it. */
  staffAccess: string;
}

export interface ProcessingRegister {
  tenantId: string;
  generatedAt: string;
  controller: { tenantId: string; name: string; countryCode: string };
  processor: { name: string; role: string };
  categories: RegisterCategory[];
  /** Every retention rule of the service, including those that are not about one category. */
  retentionPolicy: (DisclosedRule & { data: string })[];
  transfers: string;
  operatorAccess: {
    standingAccess: false;
    grantMinutes: { min: number; max: number };
    undecidedRequestsExpireAfterHours: number;
    tenantApprovalRequired: boolean;
    authenticationContext: string;
    staffLocations: readonly string[];
    rules: string[];
  };
  measures: { name: string; description: string }[];
  profilingAdvertisingMarketing: string;
}

/** The technical and organisational measures, as the service implements them (Art. 32). */
export const MEASURES: readonly { name: string; description: string }[] = [
  {
    name: 'Encryption at rest per data subject',
    description:
      'Every record is sealed with AES-256-GCM under a data key of its own subject, wrapped by the tenant key; ' +
      'erasing a subject destroys the data key, so every copy (backups, old packages) is unreadable at once.',
  },
  {
    name: 'Data residency enforced by the storage layer',
    description:
      "A write for a tenant to any storage account but its geography's is refused before it is sent; moves " +
      'between geographies are verified by digest on both sides and recorded in the audit log.',
  },
  {
    name: 'No standing operator access',
    description:
      'Operators reach data only under an approved, time-limited grant, with a justification, a ticket, MFA and ' +
      'a privileged access workstation; every read is in the tenant’s audit log.',
  },
  {
    name: 'Tamper-evident audit log',
    description:
      'Every change, decision, export link, download, purge and operator read is an event in a SHA-256 hash ' +
      'chain per tenant that no API can edit or delete, and that anyone with the log can verify.',
  },
  {
    name: 'Pseudonymised system logs',
    description:
      'Identifiers in system logs are replaced by a keyed hash per tenant: the service can find them for a ' +
      'request, but the stored rows name no one.',
  },
  {
    name: 'Retention enforced daily',
    description:
      'A daily purge deletes or anonymises what falls due under the retention rules, and records what it did.',
  },
  {
    name: 'Data subject requests',
    description:
      'Access, export, deletion, rectification and restriction within the legal deadlines, with encrypted ' +
      'packages and 15-minute single-purpose download links, each issue and download audited.',
  },
  {
    name: 'Authenticated access',
    description:
      'Every call carries a Microsoft Entra ID token verified by signature, issuer, audience and lifetime; ' +
      'roles decide what each caller may do, and a tenant reaches only its own data.',
  },
];

export function buildProcessingRegister(input: RegisterInput): ProcessingRegister {
  const { tenant, operators } = input;
  const staff = operators.staffLocations.join(' and ');
  const staffAccess =
    `Only under an approved grant of at most ${MAX_GRANT_MINUTES / 60} hours, from privileged access ` +
    `workstations of the service's operations staff in ${staff || 'no location (no operators are configured)'}`;
  return {
    tenantId: tenant.tenantId,
    generatedAt: input.generatedAt.toISOString(),
    controller: { tenantId: tenant.tenantId, name: tenant.displayName, countryCode: tenant.countryCode },
    processor: {
      name: 'The privacy data service of the device-management platform',
      role: 'Processor on behalf of the controller (GDPR Art. 28); this is its record under Art. 30(2)',
    },
    categories: RECORD_CATEGORIES.map((category) => ({
      ...discloseCategory(category, tenant.geography),
      staffAccess,
    })),
    retentionPolicy: (Object.keys(RETENTION_POLICY) as RetentionRuleName[]).map((name) => ({
      ...disclosedRule(name),
      data: RETENTION_POLICY[name].data,
    })),
    transfers:
      `None: the tenant's data is stored only in the ${tenant.geography} geography. Operations staff in ` +
      `${staff || 'no location'} may read it there only under an approved, time-limited and audited grant.`,
    operatorAccess: {
      standingAccess: false,
      grantMinutes: { min: MIN_GRANT_MINUTES, max: MAX_GRANT_MINUTES },
      undecidedRequestsExpireAfterHours: UNDECIDED_EXPIRY_MS / 3_600_000,
      tenantApprovalRequired: input.requireTenantApproval,
      authenticationContext: operators.authContext,
      staffLocations: operators.staffLocations,
      rules: [
        'An operator asks with a justification and a ticket, for one tenant, optionally for some categories or one subject',
        'Another operator approves; nobody approves their own request',
        ...(input.requireTenantApproval ? ['The tenant approves each request too (its policy)'] : []),
        'Multi-factor authentication and a privileged access workstation on every call',
        'Restricted subjects are never shown',
        'Every request, decision, read and expiry is an event in the tenant’s audit log',
      ],
    },
    measures: [...MEASURES],
    profilingAdvertisingMarketing: NO_PROFILING,
  };
}
