// GET /api/tenants/{tenantId}/dsr/{requestId}: one request with its history, deadline and outcome.
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import { TENANT_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { requestViewSchema } from '../shared/requests/dataSubjectRequest';

export const requestIdParams = z.object({ requestId: z.string().min(1).max(64) });

export const dsrRequest: HttpFunction = {
  kind: 'http',
  name: 'dsrRequest',
  route: 'tenants/{tenantId}/dsr/{requestId}',
  operations: {
    GET: operation({
      operationId: 'getDataSubjectRequest',
      summary: 'Read a data subject request.',
      access: { kind: 'tenant', roles: ['Privacy.Admin', 'Privacy.Reader'] },
      params: requestIdParams,
      responses: [{ status: 200, description: 'The request.', schema: requestViewSchema }, ...TENANT_ERRORS],
      async handle({ services, tenant, params }) {
        return { status: 200, body: await services.requests.get(tenant, params.requestId) };
      },
    }),
  },
};
