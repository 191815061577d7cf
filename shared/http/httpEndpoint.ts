// Runs one HTTP operation the same way under every host: request id, method, token, tenant match, roles,
// tenant existence, migration lock, input validation, then the handler; every error goes through
// errorResponse().
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';

import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { z } from 'zod';

import { hasAnyRole, type Principal, type Role } from '../auth/principal';
import type { ServiceConfig } from '../config';
import type { Services } from '../composition';
import { DomainError, type ErrorDetail } from '../errors';
import type { TenantScope } from '../residency/tenantDirectory';
import type { ApiOperation, HttpMethod, Operations } from './apiOperation';
import { validationDetails } from '../errorDetails';
import { errorResponse } from './errorResponse';
import { tenantMigrating } from '../storage/residencyGuard';

export const MAX_BODY_BYTES = 64 * 1024;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function handleHttpRequest(
  operations: Operations,
  services: Services,
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const incomingId = request.headers.get('x-request-id');
  const requestId = incomingId && REQUEST_ID.test(incomingId) ? incomingId : randomUUID();
  try {
    const method = request.method.toUpperCase() as HttpMethod;
    const op = operations[method];
    if (!op) {
      const allow = Object.keys(operations).join(', ');
      throw new DomainError('MethodNotAllowed', `${request.method} is not allowed here; use ${allow}.`, [], {
        Allow: allow,
      });
    }
    const result = await runOperation(op, services, request, context, requestId, method);
    const headers: Record<string, string> = { 'x-request-id': requestId, ...result.headers };
    if (result.body === undefined) return { status: result.status, headers };
    // A stream (a package decrypted as it downloads) goes out as it is read; its handler sets its content type.
    if (result.body instanceof Readable) return { status: result.status, headers, body: result.body };
    headers['content-type'] ??= 'application/json; charset=utf-8';
    return {
      status: result.status,
      headers,
      body: typeof result.body === 'string' ? result.body : JSON.stringify(result.body),
    };
  } catch (error) {
    return errorResponse(error, requestId, context);
  }
}

async function runOperation(
  op: ApiOperation,
  services: Services,
  request: HttpRequest,
  context: InvocationContext,
  requestId: string,
  method: HttpMethod,
) {
  let principal: Principal | undefined;
  let tenant: TenantScope | undefined;
  if (op.access.kind === 'tenant') {
    principal = await services.verifyToken(request.headers.get('authorization'));
    const tenantId = (request.params.tenantId ?? '').toLowerCase();
    if (tenantId !== principal.tenantId) {
      throw new DomainError('TenantMismatch', 'The token was not issued for this tenant.');
    }
    if (op.access.roles !== 'anyUser' && !hasAnyRole(principal, op.access.roles)) {
      throw new DomainError(
        'Forbidden',
        `This operation needs one of the roles ${op.access.roles.join(', ')}.`,
      );
    }
    tenant = await services.directory.resolve(tenantId);
  }

  if (op.access.kind === 'operator') {
    principal = await services.verifyToken(request.headers.get('authorization'));
    requireOperator(principal, op.access.roles, services.config.operators);
    if (request.params.tenantId !== undefined) {
      const tenantId = request.params.tenantId.toLowerCase();
      // Not matched against the token, so checked here: anything but a tenant id names no tenant.
      if (!TENANT_ID.test(tenantId)) throw new DomainError('TenantNotFound', 'The tenant was not found.');
      tenant = await services.directory.resolve(tenantId);
    }
  }
  // Writes of a tenant on the move are refused before any input is read; the storage layer's fence refuses
  // the writes of a request already under way when the move began (also 423).
  if (tenant && method !== 'GET' && tenant.entry.migration) {
    throw tenantMigrating(tenant.tenantId, services.config.residency.retryAfterSeconds);
  }

  const { tenantId: _tenantId, ...routeParams } = request.params;
  // A malformed id in the path names no resource: 404, not 400.
  const params = op.params
    ? parseOrThrow(op.params, routeParams, () => new DomainError('NotFound', 'The resource was not found.'))
    : {};
  const query = op.query
    ? parseOrThrow(op.query, Object.fromEntries(request.query.entries()), (error) =>
        invalid('The query is not valid.', validationDetails(error, 'query')),
      )
    : {};
  const body = op.body
    ? parseOrThrow(op.body, await readJsonBody(request), (error) =>
        invalid('The body is not valid.', validationDetails(error)),
      )
    : undefined;

  let idempotencyKey: string | undefined;
  if (op.idempotent) {
    const key = request.headers.get('idempotency-key');
    if (key !== null) {
      if (!IDEMPOTENCY_KEY.test(key)) {
        throw new DomainError('ValidationFailed', 'The Idempotency-Key header is not valid.', [
          { target: 'Idempotency-Key', message: 'Use 1 to 255 printable ASCII characters.' },
        ]);
      }
      idempotencyKey = key;
    }
  }

  return op.handle({
    services,
    request,
    log: context,
    requestId,
    params,
    query,
    body,
    // Public operations never read these; tenant operations always have them.
    principal: principal as Principal,
    tenant: tenant as TenantScope,
    ...(idempotencyKey ? { idempotencyKey } : {}),
  });
}

/**
 * An operator is a user of the provider's own tenant (a customer's admin can assign app roles in theirs, so a
 * role alone proves nothing) with the role, MFA and the privileged-workstation authentication context.
 */
function requireOperator(
  principal: Principal,
  roles: readonly Role[],
  operators: ServiceConfig['operators'],
): void {
  if (!operators.tenantId || principal.tenantId !== operators.tenantId) {
    throw new DomainError('Forbidden', "Operator routes take tokens of the service provider's tenant only.");
  }
  if (!hasAnyRole(principal, roles)) {
    throw new DomainError('Forbidden', `This operation needs one of the roles ${roles.join(', ')}.`);
  }
  if (!principal.amr.includes('mfa')) {
    throw new DomainError(
      'Forbidden',
      'Operator access needs a sign-in with multi-factor authentication (amr mfa).',
    );
  }
  if (!principal.acrs.includes(operators.authContext)) {
    throw new DomainError(
      'Forbidden',
      `Operator access needs a privileged access workstation (authentication context ${operators.authContext}).`,
    );
  }
}

function parseOrThrow<T>(
  schema: z.ZodType<T>,
  input: unknown,
  onError: (error: z.ZodError) => DomainError,
): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw onError(parsed.error);
}

const invalid = (message: string, details: ErrorDetail[]) =>
  new DomainError('ValidationFailed', message, details);

async function readJsonBody(request: HttpRequest): Promise<unknown> {
  const contentType = request.headers.get('content-type') ?? '';
  if (!/^application\/json\s*(;|$)/i.test(contentType.trim())) {
    throw new DomainError('UnsupportedMediaType', 'The body must be sent as Content-Type: application/json.');
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const text = await request.text();
  if (Buffer.byteLength(text, 'utf8') > MAX_BODY_BYTES) throw tooLarge();
  if (text.trim() === '')
    throw new DomainError('InvalidJson', 'The body is empty; a JSON object is expected.');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new DomainError('InvalidJson', `The body is not valid JSON: ${(error as Error).message}`);
  }
}

const tooLarge = () =>
  new DomainError('PayloadTooLarge', `The body exceeds the limit of ${MAX_BODY_BYTES / 1024} KiB.`);
