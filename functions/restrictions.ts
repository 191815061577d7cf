// GET /api/tenants/{tenantId}/restrictions: the subjects whose processing is restricted in this tenant.
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import { collection, collectionSchema, pageRequestOf, pagingQuery } from '../shared/http/paging';
import { TENANT_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';

const restrictionSchema = z
  .object({
    subject: z.object({
      upn: z.string().optional(),
      objectId: z.string().optional(),
      email: z.string().optional(),
    }),
    requestId: z.string(),
    restrictedAt: z.iso.datetime(),
  })
  .meta({ id: 'Restriction' });

export const restrictions: HttpFunction = {
  kind: 'http',
  name: 'restrictions',
  route: 'tenants/{tenantId}/restrictions',
  operations: {
    GET: operation({
      operationId: 'listRestrictions',
      summary: 'List restricted data subjects.',
      access: { kind: 'tenant', roles: ['Privacy.Admin', 'Privacy.Reader'] },
      query: z.strictObject({ ...pagingQuery }),
      responses: [
        { status: 200, description: 'A page of restrictions.', schema: collectionSchema(restrictionSchema) },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, query, request }) {
        const page = await services.restrictions.list(tenant, pageRequestOf(query));
        const items = page.items.map(({ subjectKey: _key, ...visible }) => visible);
        return { status: 200, body: collection({ ...page, items }, request.url) };
      },
    }),
  },
};
