// GET /api/tenants/{tenantId}/audit/verify checks the tenant's audit hash chain and names the first event
// that does not fit.
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import { TENANT_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';

export const auditVerificationSchema = z
  .object({
    valid: z.boolean(),
    checked: z.number().int().min(0).describe('Events read, up to and including the first broken one.'),
    firstBrokenEventId: z
      .string()
      .optional()
      .describe('The first event that was altered, follows a gap, or is missing from the end of the chain.'),
  })
  .meta({ id: 'AuditVerification' });

export const auditVerification: HttpFunction = {
  kind: 'http',
  name: 'auditVerification',
  route: 'tenants/{tenantId}/audit/verify',
  operations: {
    GET: operation({
      operationId: 'verifyAuditLog',
      summary: 'Verify the hash chain of the audit log (from the purge checkpoint, if any).',
      access: { kind: 'tenant', roles: ['Privacy.Admin', 'Privacy.Reader'] },
      responses: [
        { status: 200, description: 'The result of the verification.', schema: auditVerificationSchema },
        ...TENANT_ERRORS,
      ],
      async handle({ services, tenant }) {
        const verification = await services.audit.verify(tenant);
        return { status: 200, body: verification };
      },
    }),
  },
};
