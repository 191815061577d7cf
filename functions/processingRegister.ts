// GET /api/tenants/{tenantId}/processing-register (SPEC §10): the processor's record of processing for the
// tenant (GDPR Art. 30(2)), as JSON, or as a page for people with `Accept: text/html`. Built from the tables
// the service enforces (shared/transparency/), never written by hand.
import { z } from 'zod';

import { type ApiResult, operation } from '../shared/http/apiOperation';
import { accepts } from '../shared/http/contentNegotiation';
import { TENANT_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { registerHtml } from '../shared/transparency/registerHtml';
import { categoriesInWords } from '../shared/vocabulary/categoryWords';
import { categorySchema } from '../shared/vocabulary/categorySchema';

const ruleSchema = z.object({
  rule: z.string(),
  action: z.enum(['delete', 'anonymise']),
  after: z.string().describe('The period in words.'),
  period: z.union([z.object({ days: z.number().int() }), z.object({ years: z.number().int() })]),
  from: z.string().describe('What the period counts from.'),
});

export const processingRegisterSchema = z
  .object({
    tenantId: z.string(),
    generatedAt: z.string(),
    controller: z.object({ tenantId: z.string(), name: z.string(), countryCode: z.string() }),
    processor: z.object({ name: z.string(), role: z.string() }),
    categories: z
      .array(
        z.object({
          category: categorySchema,
          label: z.string(),
          holds: z.string(),
          source: z.string(),
          purpose: z.string(),
          subjects: z.string(),
          recipients: z.string(),
          retention: z.object({ words: z.string(), rules: z.array(ruleSchema) }),
          storedIn: z.object({ geography: z.string(), serves: z.string(), how: z.string() }),
          staffAccess: z.string(),
        }),
      )
      .describe(`Every category: ${categoriesInWords()}.`),
    retentionPolicy: z.array(ruleSchema.extend({ data: z.string() })),
    transfers: z.string(),
    operatorAccess: z.object({
      standingAccess: z.literal(false),
      grantMinutes: z.object({ min: z.number().int(), max: z.number().int() }),
      undecidedRequestsExpireAfterHours: z.number(),
      tenantApprovalRequired: z.boolean(),
      authenticationContext: z.string(),
      staffLocations: z.array(z.string()),
      rules: z.array(z.string()),
    }),
    measures: z.array(z.object({ name: z.string(), description: z.string() })),
    profilingAdvertisingMarketing: z.string(),
  })
  .meta({ id: 'ProcessingRegister' });

export const processingRegister: HttpFunction = {
  kind: 'http',
  name: 'processingRegister',
  route: 'tenants/{tenantId}/processing-register',
  operations: {
    GET: operation({
      operationId: 'getProcessingRegister',
      summary:
        "The processor's record of processing for this tenant (GDPR Art. 30(2)); with Accept: text/html, as a page for people.",
      access: { kind: 'tenant', roles: ['Privacy.Admin', 'Privacy.Reader'] },
      responses: [
        {
          status: 200,
          description: 'The register (JSON, or HTML when asked for).',
          schema: processingRegisterSchema,
        },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, request }): Promise<ApiResult> {
        const register = await services.processingRegister.register(tenant);
        if (accepts(request.headers.get('accept'), 'text/html')) {
          return {
            status: 200,
            body: registerHtml(register),
            headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
          };
        }
        return { status: 200, body: register, headers: { 'cache-control': 'no-store' } };
      },
    }),
  },
};
