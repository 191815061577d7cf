// GET /api/tenants/{tenantId}/dsr/{requestId}/export: a single-purpose download link to a completed access or
// export package, valid 15 minutes and served by this app (functions/packageDownload.ts). Every link issued
// is an audit event.
import { z } from 'zod';

import { actorOf } from '../shared/auth/principal';
import { operation } from '../shared/http/apiOperation';
import { TENANT_ERRORS } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { requestIdParams } from './dsrRequest';
import { publicOrigin } from '../shared/http/publicOrigin';

export const downloadLinkSchema = z
  .object({ url: z.url(), expiresAt: z.iso.datetime(), sha256: z.string(), sizeBytes: z.number().int() })
  .meta({ id: 'DownloadLink' });

export const dsrExport: HttpFunction = {
  kind: 'http',
  name: 'dsrExport',
  route: 'tenants/{tenantId}/dsr/{requestId}/export',
  operations: {
    GET: operation({
      operationId: 'getDataSubjectRequestPackageLink',
      summary:
        'Issue a 15-minute download link to the package of a completed access or export request; the app decrypts the package as it serves it.',
      access: { kind: 'tenant', roles: ['Privacy.Admin'] },
      params: requestIdParams,
      responses: [
        { status: 200, description: 'The link.', schema: downloadLinkSchema },
        ...TENANT_ERRORS,
        { status: 409, description: 'InvalidState: the request has no package (yet).' },
      ],
      async handle({ services, tenant, principal, params, request, requestId }) {
        const baseUrl = publicOrigin(services.config, request);
        const link = await services.downloads.issue(
          tenant,
          params.requestId,
          { actor: actorOf(principal), correlationId: requestId },
          baseUrl,
        );
        return { status: 200, body: link, headers: { 'cache-control': 'no-store' } };
      },
    }),
  },
};
