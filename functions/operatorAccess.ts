// Operator access (SPEC §9), the operators' side: POST /api/operator/access-requests (an Operator asks for
// time-limited access to one tenant), GET .../{id}, and the decisions approve and deny (an Operator.Approver
// other than the requester) and revoke (the requester or an approver). Every call needs MFA and the
// privileged-workstation authentication context (httpEndpoint's operator access).
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import { BODY_ERRORS, TENANT_ERRORS, WRITE_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { DomainError } from '../shared/errors';
import { reasonSchema } from '../shared/requests/dataSubjectRequest';
import type { Principal } from '../shared/auth/principal';
import {
  ACCESS_STATUSES,
  accessRequestIdSchema,
  accessRequestInputSchema,
  accessScopeSchema,
} from '../shared/operatorAccess/accessRequest';
import { type Decider, operatorActor } from '../shared/operatorAccess/operatorAccessService';

const personSchema = z.object({ objectId: z.string(), upn: z.string().optional() });
const decisionSchema = z.object({ by: personSchema, at: z.string() });

export const accessRequestSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    status: z.enum(ACCESS_STATUSES),
    requester: personSchema,
    justification: z.string(),
    ticket: z.string(),
    durationMinutes: z.number().int(),
    scope: accessScopeSchema.optional(),
    requireTenantApproval: z.boolean(),
    createdAt: z.string(),
    decideBy: z.string().describe('An undecided request expires then (12 hours after it was made).'),
    approvals: z.object({ operator: decisionSchema.optional(), tenant: decisionSchema.optional() }),
    denial: decisionSchema.extend({ party: z.enum(['operator', 'tenant']), reason: z.string() }).optional(),
    revocation: decisionSchema.extend({ party: z.enum(['operator', 'tenant']) }).optional(),
    grant: z
      .object({ startsAt: z.string(), endsAt: z.string() })
      .optional()
      .describe('From the last approval, for durationMinutes.'),
    expiryRecordedAt: z.string().optional(),
  })
  .meta({ id: 'OperatorAccessRequest' });

export const accessRequestParams = z.strictObject({ accessRequestId: accessRequestIdSchema });
/** A denial's reason: the same body as a request's decline. */
export const reasonBody = reasonSchema;

const OPERATOR_ERRORS = TENANT_ERRORS;
export const accessRequestLocation = (id: string) => `/api/operator/access-requests/${id}`;

const personOf = (principal: Principal) => ({
  objectId: principal.objectId,
  ...(principal.upn ? { upn: principal.upn } : {}),
});
const operatorDecider = (principal: Principal): Decider => ({
  party: 'operator',
  person: personOf(principal),
  actor: operatorActor(personOf(principal)),
});

export const operatorAccessRequests: HttpFunction = {
  kind: 'http',
  name: 'operatorAccessRequests',
  route: 'operator/access-requests',
  operations: {
    POST: operation({
      operationId: 'requestOperatorAccess',
      summary: 'Ask for time-limited access to one tenant, with a justification and a ticket.',
      access: { kind: 'operator', roles: ['Operator'] },
      body: accessRequestInputSchema,
      idempotent: true,
      responses: [
        { status: 201, description: 'The request, pending approval.', schema: accessRequestSchema },
        ...BODY_ERRORS,
        ...OPERATOR_ERRORS,
        ...WRITE_ERRORS,
      ],
      async handle({ services, principal, body, requestId, idempotencyKey }) {
        const created = await services.operatorAccess.request(
          body,
          personOf(principal),
          requestId,
          idempotencyKey,
        );
        return { status: 201, body: created, headers: { Location: accessRequestLocation(created.id) } };
      },
    }),
  },
};

export const operatorAccessRequest: HttpFunction = {
  kind: 'http',
  name: 'operatorAccessRequest',
  route: 'operator/access-requests/{accessRequestId}',
  operations: {
    GET: operation({
      operationId: 'getOperatorAccessRequest',
      summary: 'One access request: status, approvals, the grant.',
      access: { kind: 'operator', roles: ['Operator', 'Operator.Approver'] },
      params: accessRequestParams,
      responses: [
        { status: 200, description: 'The request.', schema: accessRequestSchema },
        ...OPERATOR_ERRORS,
      ],
      async handle({ services, params }) {
        return { status: 200, body: await services.operatorAccess.get(params.accessRequestId) };
      },
    }),
  },
};

function decision(kind: 'approve' | 'deny' | 'revoke', summary: string): HttpFunction {
  const roles =
    kind === 'revoke' ? (['Operator', 'Operator.Approver'] as const) : (['Operator.Approver'] as const);
  return {
    kind: 'http',
    name: `operatorAccess${kind[0]!.toUpperCase()}${kind.slice(1)}`,
    route: `operator/access-requests/{accessRequestId}/${kind}`,
    operations: {
      POST: operation({
        operationId: `${kind}OperatorAccess`,
        summary,
        access: { kind: 'operator', roles: [...roles] },
        params: accessRequestParams,
        ...(kind === 'deny' ? { body: reasonBody } : {}),
        responses: [
          { status: 200, description: 'The request after the decision.', schema: accessRequestSchema },
          ...(kind === 'deny' ? BODY_ERRORS : []),
          ...OPERATOR_ERRORS,
          ...WRITE_ERRORS,
        ],
        async handle({ services, principal, params, body, requestId }) {
          const id = params.accessRequestId;
          const decider = operatorDecider(principal);
          if (kind === 'approve')
            return { status: 200, body: await services.operatorAccess.approve(id, decider, requestId) };
          if (kind === 'deny') {
            const { reason } = body as { reason: string };
            return { status: 200, body: await services.operatorAccess.deny(id, decider, reason, requestId) };
          }
          // An operator without the approver role revokes only their own request.
          if (!principal.roles.has('Operator.Approver')) {
            const current = await services.operatorAccess.get(id);
            if (current.requester.objectId !== principal.objectId) {
              throw new DomainError(
                'Forbidden',
                'Only the requester or an approver can revoke this request.',
              );
            }
          }
          return { status: 200, body: await services.operatorAccess.revoke(id, decider, requestId) };
        },
      }),
    },
  };
}

export const operatorAccessApprove = decision('approve', 'Approve an access request (not your own).');
export const operatorAccessDeny = decision('deny', 'Deny an access request, with a reason.');
export const operatorAccessRevoke = decision('revoke', 'Revoke a pending request or an active grant.');
