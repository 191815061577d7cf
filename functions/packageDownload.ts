// GET /api/package-downloads/{token} (no bearer token: the link is the credential): the package a download
// link names, decrypted as it streams. Every download is an audit event, written before the first byte.
import { z } from 'zod';

import { operation } from '../shared/http/apiOperation';
import { errorSchema } from '../shared/http/standardResponses';
import type { HttpFunction } from '../shared/hosting/functionDefinition';
import { DOWNLOAD_ROUTE } from '../shared/requests/packageLinks';

/** A compact JWS: three base64url parts. Anything else names no package (404, like a bad signature). */
const downloadParams = z.object({
  token: z
    .string()
    .max(4096)
    .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
    .describe(
      'The token of a link from GET .../dsr/{requestId}/export or .../alert-data-requests/{alertRequestId}/export.',
    ),
});

export const packageDownload: HttpFunction = {
  kind: 'http',
  name: 'packageDownload',
  route: `${DOWNLOAD_ROUTE}/{token}`,
  operations: {
    GET: operation({
      operationId: 'downloadPackage',
      summary: 'Download the package a link names (a ZIP, application/zip), decrypted as it streams.',
      access: { kind: 'public' },
      params: downloadParams,
      responses: [
        { status: 200, description: 'The package: a ZIP whose SHA-256 and size the link gave.' },
        {
          status: 404,
          description:
            'NotFound: the link is not valid, has expired, or its package was deleted; or TenantNotFound.',
          schema: errorSchema,
        },
      ],
      async handle({ services, params }) {
        const download = await services.downloads.download(params.token);
        return {
          status: 200,
          body: download.stream,
          headers: {
            'content-type': 'application/zip',
            'content-disposition': `attachment; filename="${download.fileName}"`,
            'content-length': String(download.sizeBytes),
            'cache-control': 'no-store',
          },
        };
      },
    }),
  },
};
