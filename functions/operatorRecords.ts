// GET /api/operator/tenants/{tenantId}/records (SPEC §9): an operator reads a tenant's records, only under an
// active grant of theirs for that tenant and within its scope (category, one subject); restricted subjects
// are never returned; every read is audited in the tenant's log with the grant, justification and ticket.
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import { collectionSchema, pageRequestOf, pagingQuery, collection } from '../shared/http/paging';
import { TENANT_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { categorySchema } from '../shared/vocabulary/categorySchema';

const recordSchema = z
  .object({
    subjectRef: z.string().describe('Pseudonymous reference of the data subject.'),
    category: categorySchema,
    recordId: z.string(),
    occurredAt: z.string(),
    deletedAt: z.string().optional(),
    deviceName: z.string().optional(),
    subject: z.object({
      upn: z.string().optional(),
      objectId: z.string().optional(),
      email: z.string().optional(),
    }),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'OperatorRecord' });

export const operatorRecords: HttpFunction = {
  kind: 'http',
  name: 'operatorRecords',
  route: 'operator/tenants/{tenantId}/records',
  operations: {
    GET: operation({
      operationId: 'readRecordsAsOperator',
      summary: "Read a tenant's records under an active access grant, within its scope.",
      access: { kind: 'operator', roles: ['Operator'] },
      query: z.strictObject({
        category: categorySchema.optional(),
        upn: z.string().trim().min(3).max(320).optional(),
        objectId: z.uuid().optional(),
        email: z.email().max(320).optional(),
        ...pagingQuery,
      }),
      responses: [
        {
          status: 200,
          description: 'A page of records, and the grant it was read under.',
          schema: collectionSchema(recordSchema).extend({ grant: z.string() }),
        },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, principal, query, request, requestId }) {
        const subject =
          query.upn || query.objectId || query.email
            ? {
                ...(query.upn ? { upn: query.upn } : {}),
                ...(query.objectId ? { objectId: query.objectId } : {}),
                ...(query.email ? { email: query.email } : {}),
              }
            : undefined;
        const page = await services.operatorAccess.readRecords(
          tenant,
          { objectId: principal.objectId, ...(principal.upn ? { upn: principal.upn } : {}) },
          { category: query.category, subject },
          pageRequestOf(query),
          requestId,
        );
        return { status: 200, body: { ...collection(page, request.url), grant: page.grant } };
      },
    }),
  },
};
