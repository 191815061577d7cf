// An admin's decisions on a request: POST .../dsr/{requestId}/approve | decline | cancel | extend.
import type { z } from 'zod';

import { actorOf } from '../shared/auth/principal';
import { operation } from '../shared/http/apiOperation';
import { BODY_ERRORS, TENANT_ERRORS, WRITE_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { reasonSchema, requestViewSchema } from '../shared/requests/dataSubjectRequest';
import type { Decision } from '../shared/requests/requestService';
import { requestIdParams } from './dsrRequest';
import { requestLocation } from './dsrRequests';

function decisionFunction(
  name: string,
  decision: Decision,
  summary: string,
  body?: z.ZodType<{ reason: string }>,
): HttpFunction {
  // Approval and retry start long-running work: 202 with Location. The others finish at once: 200.
  const status = decision === 'approve' || decision === 'retry' ? 202 : 200;
  return {
    kind: 'http',
    name,
    route: `tenants/{tenantId}/dsr/{requestId}/${decision}`,
    operations: {
      POST: operation({
        operationId: `${decision}DataSubjectRequest`,
        summary,
        access: { kind: 'tenant', roles: ['Privacy.Admin'] },
        params: requestIdParams,
        ...(body ? { body } : {}),
        responses: [
          { status, description: 'The request after the decision.', schema: requestViewSchema },
          ...(body ? BODY_ERRORS : []),
          ...TENANT_ERRORS,
          ...WRITE_ERRORS,
        ],
        async handle({ services, tenant, principal, params, body: input, requestId }) {
          const decided = await services.requests.decide(tenant, params.requestId, decision, {
            actor: actorOf(principal),
            correlationId: requestId,
            ...(input?.reason ? { reason: input.reason } : {}),
          });
          return {
            status,
            body: decided,
            ...(status === 202
              ? { headers: { Location: requestLocation(tenant.tenantId, decided.id) } }
              : {}),
          };
        },
      }),
    },
  };
}

export const dsrApprove = decisionFunction(
  'dsrApprove',
  'approve',
  'Approve a reviewed request; fulfilment starts.',
);
export const dsrDecline = decisionFunction(
  'dsrDecline',
  'decline',
  'Decline a request, with a reason.',
  reasonSchema,
);
export const dsrCancel = decisionFunction(
  'dsrCancel',
  'cancel',
  'Cancel a request before fulfilment starts.',
);
export const dsrExtend = decisionFunction(
  'dsrExtend',
  'extend',
  'Extend the deadline once (GDPR: two further months; CCPA: 45 days), with a reason.',
  reasonSchema,
);
export const dsrRetry = decisionFunction(
  'dsrRetry',
  'retry',
  'Retry a failed request from the step that failed.',
);
