// The retention table of SPEC §6, as one typed value: the purge engine applies it and
// GET /api/retention-policy serves it. Every rule is a pure function of dates and an injected clock.
import type { RecordCategory } from '../vocabulary/categories';

export type RetentionAction = 'delete' | 'anonymise';

export interface RetentionRule {
  /** What the rule covers, in the product's words. */
  data: string;
  /** What happens, and when. */
  action: RetentionAction;
  after: { days: number } | { years: number };
  /** The moment the period counts from. */
  from: 'occurredAt' | 'deletedAt' | 'endedAt' | 'completedAt' | 'time';
  categories?: readonly RecordCategory[];
}

export const SHORT_LIVED_CATEGORIES = [
  'windowsDiagnostic',
  'usage',
  'deviceDiagnostics',
  'systemLog',
] as const;

export const RETENTION_POLICY = {
  alertAnonymisation: {
    data: 'Alerts: personal fields removed; the anonymised alert then names and links to no one',
    action: 'anonymise',
    after: { days: 180 },
    from: 'occurredAt',
    categories: ['alert'],
  },
  alertDeletion: {
    data: 'Alerts (anonymised): deleted',
    action: 'delete',
    after: { years: 2 },
    from: 'occurredAt',
    categories: ['alert'],
  },
  shortLived: {
    data: 'Windows diagnostic, usage, device diagnostic data and system logs',
    action: 'delete',
    after: { days: 30 },
    from: 'occurredAt',
    categories: SHORT_LIVED_CATEGORIES,
  },
  softDeleted: {
    data: 'Other categories: kept while live, purged after soft deletion',
    action: 'delete',
    after: { days: 30 },
    from: 'deletedAt',
  },
  endedSubscription: {
    data: 'All data of a tenant whose subscription ended',
    action: 'delete',
    after: { days: 30 },
    from: 'endedAt',
  },
  auditEvents: {
    data: 'Audit events (a chain checkpoint keeps verification working); no API deletes them earlier',
    action: 'delete',
    after: { years: 1 },
    from: 'time',
  },
  exportPackages: {
    data: 'Access and export packages',
    action: 'delete',
    after: { days: 30 },
    from: 'completedAt',
  },
  poisonedEvents: {
    data: 'Events refused as invalid, set aside sealed in the tenant geography for investigation',
    action: 'delete',
    after: { days: 30 },
    from: 'time',
  },
} as const satisfies Record<string, RetentionRule>;

export type RetentionRuleName = keyof typeof RETENTION_POLICY;

/** The instant a rule falls due for data dated `from`. */
export function dueAt(rule: RetentionRule, from: Date): Date {
  const due = new Date(from.getTime());
  if ('days' in rule.after) due.setUTCDate(due.getUTCDate() + rule.after.days);
  else due.setUTCFullYear(due.getUTCFullYear() + rule.after.years);
  return due;
}

/**
 * The UTC day on which the daily purge acts on data due at `due`: that very day. The 02:00 run of the due
 * day purges everything due that day, never a day before it.
 */
export const dueDay = (due: Date): string => due.toISOString().slice(0, 10);

/** Whether a rule applies on `today` (a UTC day `yyyy-mm-dd`) to data dated `from`. */
export const isDue = (rule: RetentionRule, from: Date, today: string): boolean =>
  dueDay(dueAt(rule, from)) <= today;
