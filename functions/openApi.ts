// GET /api/openapi.json (no auth): the OpenAPI 3.1 document of every HTTP function, from their zod schemas.
import { operation } from '../shared/http/apiOperation';
import { API_VERSION, buildOpenApiDocument } from '../shared/http/openApiDocument';
import type { FunctionDefinition, HttpFunction } from '../shared/hosting/functionDefinition';

/** Takes the registry lazily: the registry lists this function too. */
export function openApiFunction(registry: () => readonly FunctionDefinition[]): HttpFunction {
  let document: string | undefined;
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
        async handle() {
          document ??= JSON.stringify(
            buildOpenApiDocument(
              registry().filter((fn): fn is HttpFunction => fn.kind === 'http'),
              API_VERSION,
            ),
          );
          return { status: 200, body: document };
        },
      }),
    },
  };
}
