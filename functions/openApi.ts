// GET /api/openapi.json (no auth): the OpenAPI 3.1 document of every HTTP function, from their zod schemas,
// naming the server it is served from.
import { operation } from '../shared/http/apiOperation';
import { API_VERSION, describeApi, type OpenApiDocument, servedFrom } from '../shared/http/openApiDocument';
import type { FunctionDefinition, HttpFunction } from '../shared/hosting/functionDefinition';
import { publicOrigin } from '../shared/http/publicOrigin';

/** Takes the registry lazily: the registry lists this function too. */
export function openApiFunction(registry: () => readonly FunctionDefinition[]): HttpFunction {
  let api: OpenApiDocument | undefined;
  return {
    kind: 'http',
    name: 'openApi',
    route: 'openapi.json',
    operations: {
      GET: operation({
        operationId: 'getOpenApiDocument',
        summary: 'This API described as OpenAPI 3.1.',
        access: { kind: 'public' },
        responses: [{ status: 200, description: 'The OpenAPI document.' }],
        async handle({ services, request }) {
          api ??= describeApi(
            registry().filter((fn): fn is HttpFunction => fn.kind === 'http'),
            API_VERSION,
          );
          // The address callers reach the app at, as download links name it (PUBLIC_BASE_URL behind a gateway).
          const server = publicOrigin(services.config, request);
          return { status: 200, body: JSON.stringify(servedFrom(api, server)) };
        },
      }),
    },
  };
}
