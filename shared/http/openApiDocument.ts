// Generates the OpenAPI 3.1 document from the registry's HTTP operations and the same zod schemas that
// validate requests (zod-openapi does the schema conversion and component references).
import { z } from 'zod';
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from 'zod-openapi';

import type { ApiOperation, Operations } from './apiOperation';

type ZodObjectInput = NonNullable<NonNullable<ZodOpenApiOperationObject['requestParams']>['path']>;

const JSON_TYPE = 'application/json';

/** The version of the HTTP contract (SPEC.md), not of the package. */

/** What the document is made from: each HTTP function's route and operations (hosting's HttpFunction is one). */
export interface DescribedRoute {
  route: string;
  operations: Operations;
}

export const API_VERSION = '1.0.0';

export type OpenApiDocument = ReturnType<typeof createDocument>;

/** The document as served from `serverUrl`: the origin its paths (all under `/api`) are reached at. */
export function buildOpenApiDocument(
  functions: readonly DescribedRoute[],
  version: string,
  serverUrl: string,
): OpenApiDocument {
  return servedFrom(describeApi(functions, version), serverUrl);
}

/**
 * The same document naming another server. The host serves it from more than one address (a gateway, the app's
 * own), so the costly part is built once and only `servers` changes.
 */
export function servedFrom(document: OpenApiDocument, serverUrl: string): OpenApiDocument {
  const { openapi, info, ...rest } = document;
  return { openapi, info, servers: [{ url: serverUrl.replace(/\/+$/, '') }], ...rest };
}

/** Everything but `servers`, from the operations' zod schemas. */
export function describeApi(functions: readonly DescribedRoute[], version: string): OpenApiDocument {
  const paths: ZodOpenApiPathsObject = {};
  for (const fn of functions) {
    const path = `/api/${fn.route}`;
    const item: Record<string, ZodOpenApiOperationObject> = {};
    for (const [method, op] of Object.entries(fn.operations)) {
      if (op) item[method.toLowerCase()] = describeOperation(fn, op);
    }
    paths[path] = item;
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Privacy data service',
      version,
      description:
        'Data subject requests (GDPR, CCPA), retention, audit and data residency for a device-management platform.',
      // The package is private ("private": true): no licence is granted. SPDX names such terms LicenseRef-*.
      license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
    },
    components: {
      securitySchemes: {
        entraId: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'Microsoft Entra ID access token.',
        },
      },
    },
    paths,
  });
}

function describeOperation(fn: DescribedRoute, op: ApiOperation): ZodOpenApiOperationObject {
  const pathParams = routeParameters(fn.route);
  const paramsSchema = z.object(
    Object.fromEntries(
      pathParams.map((name) => {
        const shape = (op.params as z.ZodObject | undefined)?.shape?.[name] as z.ZodType | undefined;
        return [
          name,
          name === 'tenantId' ? z.uuid().describe('The tenant (Entra ID tenant id).') : (shape ?? z.string()),
        ];
      }),
    ),
  );
  const responses: ZodOpenApiOperationObject['responses'] = {};
  for (const response of op.responses) {
    responses[`${response.status}` as '200'] = {
      description: response.description,
      ...(response.schema ? { content: { [JSON_TYPE]: { schema: response.schema } } } : {}),
    };
  }
  const description =
    op.access.kind === 'tenant'
      ? `Roles: ${op.access.roles === 'anyUser' ? 'any signed-in user of the tenant' : op.access.roles.join(', ')}.`
      : op.access.kind === 'operator'
        ? `Roles: ${op.access.roles.join(', ')}, as a user of the service provider's tenant, signed in with MFA ` +
          'from a privileged access workstation (the authentication context of OPERATOR_AUTH_CONTEXT in `acrs`).'
        : undefined;
  return {
    operationId: op.operationId,
    summary: op.summary,
    ...(description ? { description } : {}),
    ...(op.access.kind === 'public' ? { security: [] } : { security: [{ entraId: [] }] }),
    requestParams: {
      ...(pathParams.length > 0 ? { path: paramsSchema as ZodObjectInput } : {}),
      ...(op.query ? { query: op.query as unknown as ZodObjectInput } : {}),
      ...(op.idempotent
        ? {
            header: z.object({
              'Idempotency-Key': z
                .string()
                .optional()
                .describe('Repeating a create with the same key within 24 h returns the first resource.'),
            }) as ZodObjectInput,
          }
        : {}),
    },
    ...(op.body ? { requestBody: { required: true, content: { [JSON_TYPE]: { schema: op.body } } } } : {}),
    responses,
  };
}

const routeParameters = (route: string): string[] =>
  [...route.matchAll(/\{([A-Za-z]+)\??\}/g)]
    .map((match) => match[1])
    .filter((name): name is string => !!name);
