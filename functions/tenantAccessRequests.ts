// Operator access (SPEC §9), the tenant's side: GET /api/tenants/{tid}/access-requests (every request for
// the tenant, newest first) and one of them; approve and deny (when its policy requires the tenant's own
// approval) and revoke (always), by Privacy.Admin; and the policy itself at .../operator-access-policy.
import { z } from 'zod';

import { actorOf, type Principal } from '../shared/auth/principal';
import { operation } from '../shared/http/apiOperation';
import { collection, collectionSchema, pageRequestOf, pagingQuery } from '../shared/http/paging';
import { BODY_ERRORS, TENANT_ERRORS, WRITE_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import type { Decider } from '../shared/operatorAccess/operatorAccessService';
import { accessRequestParams, accessRequestSchema, reasonBody } from './operatorAccess';

const READERS = ['Privacy.Admin', 'Privacy.Reader'] as const;

const tenantDecider = (principal: Principal): Decider => ({
  party: 'tenant',
  person: { objectId: principal.objectId, ...(principal.upn ? { upn: principal.upn } : {}) },
  actor: actorOf(principal),
});

export const tenantAccessRequests: HttpFunction = {
  kind: 'http',
  name: 'tenantAccessRequests',
  route: 'tenants/{tenantId}/access-requests',
  operations: {
    GET: operation({
      operationId: 'listTenantAccessRequests',
      summary: 'Every operator access request for this tenant, newest first.',
      access: { kind: 'tenant', roles: [...READERS] },
      query: z.strictObject({ ...pagingQuery }),
      responses: [
        { status: 200, description: 'A page of requests.', schema: collectionSchema(accessRequestSchema) },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, query, request }) {
        const page = await services.operatorAccess.list(tenant, pageRequestOf(query));
        return { status: 200, body: collection(page, request.url) };
      },
    }),
  },
};

export const tenantAccessRequest: HttpFunction = {
  kind: 'http',
  name: 'tenantAccessRequest',
  route: 'tenants/{tenantId}/access-requests/{accessRequestId}',
  operations: {
    GET: operation({
      operationId: 'getTenantAccessRequest',
      summary: 'One operator access request for this tenant.',
      access: { kind: 'tenant', roles: [...READERS] },
      params: accessRequestParams,
      responses: [
        { status: 200, description: 'The request.', schema: accessRequestSchema },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant, params }) {
        return {
          status: 200,
          body: await services.operatorAccess.getForTenant(tenant, params.accessRequestId),
        };
      },
    }),
  },
};

function tenantDecision(kind: 'approve' | 'deny' | 'revoke', summary: string): HttpFunction {
  return {
    kind: 'http',
    name: `tenantAccess${kind[0]!.toUpperCase()}${kind.slice(1)}`,
    route: `tenants/{tenantId}/access-requests/{accessRequestId}/${kind}`,
    operations: {
      POST: operation({
        operationId: `${kind}TenantAccessRequest`,
        summary,
        access: { kind: 'tenant', roles: ['Privacy.Admin'] },
        params: accessRequestParams,
        ...(kind === 'deny' ? { body: reasonBody } : {}),
        responses: [
          { status: 200, description: 'The request after the decision.', schema: accessRequestSchema },
          ...(kind === 'deny' ? BODY_ERRORS : []),
          ...TENANT_ERRORS,
          ...WRITE_ERRORS,
        ],
        async handle({ services, tenant, principal, params, body, requestId }) {
          const id = params.accessRequestId;
          const decider = tenantDecider(principal);
          const access = services.operatorAccess;
          if (kind === 'approve')
            return { status: 200, body: await access.approve(id, decider, requestId, tenant) };
          if (kind === 'deny') {
            const { reason } = body as { reason: string };
            return { status: 200, body: await access.deny(id, decider, reason, requestId, tenant) };
          }
          return { status: 200, body: await access.revoke(id, decider, requestId, tenant) };
        },
      }),
    },
  };
}

export const tenantAccessApprove = tenantDecision(
  'approve',
  "The tenant's own approval of an operator access request (when its policy requires it).",
);
export const tenantAccessDeny = tenantDecision(
  'deny',
  'The tenant denies an operator access request, with a reason.',
);
export const tenantAccessRevoke = tenantDecision(
  'revoke',
  'The tenant ends a pending request or an active grant.',
);

const policySchema = z
  .strictObject({
    requireTenantApproval: z
      .boolean()
      .describe("Operators' access requests need this tenant's own approval too (from the next request on)."),
  })
  .meta({ id: 'OperatorAccessPolicy' });

export const operatorAccessPolicy: HttpFunction = {
  kind: 'http',
  name: 'operatorAccessPolicy',
  route: 'tenants/{tenantId}/operator-access-policy',
  operations: {
    GET: operation({
      operationId: 'getOperatorAccessPolicy',
      summary: "The tenant's operator access policy.",
      access: { kind: 'tenant', roles: [...READERS] },
      responses: [{ status: 200, description: 'The policy.', schema: policySchema }, ...TENANT_ERRORS],
      async handle({ services, tenant }) {
        return { status: 200, body: await services.operatorAccess.policy(tenant) };
      },
    }),
    PUT: operation({
      operationId: 'setOperatorAccessPolicy',
      summary: 'Require (or stop requiring) the tenant’s own approval of operator access.',
      access: { kind: 'tenant', roles: ['Privacy.Admin'] },
      body: policySchema,
      responses: [
        { status: 200, description: 'The policy now.', schema: policySchema },
        ...BODY_ERRORS,
        ...TENANT_ERRORS,
        ...WRITE_ERRORS,
      ],
      async handle({ services, tenant, principal, body, requestId }) {
        return {
          status: 200,
          body: await services.operatorAccess.setPolicy(tenant, body, actorOf(principal), requestId),
        };
      },
    }),
  },
};
