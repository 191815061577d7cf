// GET /api/tenants/{tenantId}/privacy-report (SPEC §9): requests by status and type, overdue and due soon,
// days to complete, the CCPA metrics per type, records per category, what falls due for purge in the next 7
// and 30 days, restricted subjects, geography and migration. shared/reports/ says where each figure comes from.
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import { TENANT_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { REGULATIONS, REQUEST_STATUSES, REQUEST_TYPES } from '../shared/requests/dataSubjectRequest';
import { RECORD_CATEGORIES } from '../shared/vocabulary/categories';

const dateTime = z.iso.datetime({ offset: true });
const counts = <K extends string>(keys: readonly [K, ...K[]]) =>
  z.object(Object.fromEntries(keys.map((key) => [key, z.number().int()])) as Record<K, z.ZodNumber>);

const deadlineEntrySchema = z.object({
  id: z.string(),
  type: z.enum(REQUEST_TYPES),
  regulation: z.enum(REGULATIONS),
  status: z.enum(REQUEST_STATUSES),
  receivedAt: z.string(),
  dueAt: z.string(),
  daysLeft: z.number().int(),
});
const deadlineListSchema = z.object({
  count: z.number().int(),
  requests: z.array(deadlineEntrySchema).describe('The first 100, soonest due first.'),
});
const ccpaSchema = z.object({
  received: z.number().int(),
  compliedInWhole: z.number().int(),
  compliedInPart: z
    .number()
    .int()
    .describe('Completed with part refused (a rectification item not applied).'),
  denied: z.number().int(),
  denialReasons: z.array(z.object({ reason: z.string(), count: z.number().int() })),
  pending: z.number().int().describe('Not answered yet (open or failed).'),
  cancelled: z.number().int(),
});
const forecastSchema = z.object({
  records: z.object({
    delete: z.number().int().describe('Short-lived records reaching their 30 days.'),
    anonymise: z.number().int().describe('Alerts reaching their 180 days.'),
    purgeDeleted: z.number().int().describe('Soft-deleted records reaching their 30 days.'),
  }),
  anonymisedAlerts: z.number().int(),
  packages: z.number().int(),
  poisonedEvents: z.number().int(),
  total: z.number().int(),
});

export const privacyReportSchema = z
  .object({
    tenantId: z.string(),
    generatedAt: z.string(),
    period: z.object({ from: z.string(), to: z.string() }),
    requests: z.object({
      received: z.number().int().describe('Requests received in the period.'),
      byStatus: counts(REQUEST_STATUSES),
      byType: counts(REQUEST_TYPES),
      byTypeAndStatus: z
        .object(Object.fromEntries(REQUEST_TYPES.map((type) => [type, counts(REQUEST_STATUSES)])))
        .describe("Each type's requests received in the period, by status."),
      byRegulation: counts(REGULATIONS),
      overdue: deadlineListSchema.describe('Open requests past their due date, whenever received.'),
      dueSoon: deadlineListSchema.describe('Open requests due within 7 days, whenever received.'),
      completion: z.object({
        completed: z.number().int(),
        medianDays: z.number().nullable(),
        meanDays: z.number().nullable(),
      }),
    }),
    ccpa: z
      .object(Object.fromEntries(REQUEST_TYPES.map((type) => [type, ccpaSchema])))
      .describe('Per request type, CCPA requests received in the period.'),
    records: z.object({
      byCategory: counts(RECORD_CATEGORIES),
      total: z.number().int(),
      source: z.literal('counters'),
    }),
    purgeForecast: z
      .object({ next7Days: forecastSchema, next30Days: forecastSchema })
      .describe('What the rules make due by then, already-due entries included; holds are not subtracted.'),
    restrictedSubjects: z.number().int(),
    residency: z.object({
      geography: z.string(),
      countryCode: z.string(),
      migration: z
        .object({
          migrationId: z.string(),
          status: z.string(),
          from: z.string(),
          to: z.string(),
          createdAt: z.string(),
          completedAt: z.string().optional(),
        })
        .nullable(),
    }),
  })
  .meta({ id: 'PrivacyReport' });

const reportQuery = z
  .strictObject({
    from: dateTime.optional().describe('Start of the period (default: 12 months before `to`).'),
    to: dateTime.optional().describe('End of the period (default: now).'),
  })
  .refine((query) => !query.from || !query.to || Date.parse(query.from) <= Date.parse(query.to), {
    message: '`from` must not be after `to`.',
    path: ['to'],
  });

export const privacyReport: HttpFunction = {
  kind: 'http',
  name: 'privacyReport',
  route: 'tenants/{tenantId}/privacy-report',
  operations: {
    GET: operation({
      operationId: 'getPrivacyReport',
      summary:
        'The privacy report: requests by status and type, deadlines, days to complete, CCPA metrics, records per category, purges due, restrictions, residency.',
      access: { kind: 'tenant', roles: ['Privacy.Admin', 'Privacy.Reader'] },
      query: reportQuery,
      responses: [{ status: 200, description: 'The report.', schema: privacyReportSchema }, ...TENANT_ERRORS],
      async handle({ services, tenant, query }) {
        const report = await services.privacyReports.report(tenant, {
          ...(query.from ? { from: new Date(query.from) } : {}),
          ...(query.to ? { to: new Date(query.to) } : {}),
        });
        return { status: 200, body: report, headers: { 'cache-control': 'no-store' } };
      },
    }),
  },
};
