// What an HTTP operation declares: who may call it, the zod schemas of its input and output (which both
// validate requests and generate the OpenAPI document), and its handler.
import type { HttpRequest, InvocationContext } from '@azure/functions';
import type { z } from 'zod';

import type { Principal, Role } from '../auth/principal';
import type { Services } from '../composition';
import type { TenantScope } from '../residency/tenantDirectory';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export type Access =
  /** No token (health, OpenAPI). */
  | { kind: 'public' }
  /** A tenant route: the token's tenant must match {tenantId}; `roles: 'anyUser'` admits any signed-in user. */
  | { kind: 'tenant'; roles: readonly Role[] | 'anyUser' }
  /**
   * An operator route (SPEC §9): a user of the service provider's own tenant with one of the roles, signed in
   * with MFA from a privileged workstation (the `acrs` authentication context). A `{tenantId}` in its path is
   * resolved, never matched against the token (the one exception of SPEC §2; the handler checks the grant).
   */
  | { kind: 'operator'; roles: readonly Role[] };

export interface ApiResult {
  status: number;
  /**
   * Sent as JSON, unless it is a string (sent as it is) or a Node Readable, which is streamed to the client
   * as it is read, with the content-type the handler sets.
   */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface OperationContext<P, Q, B> {
  services: Services;
  request: HttpRequest;
  log: Pick<InvocationContext, 'log' | 'warn' | 'error'>;
  requestId: string;
  params: P;
  query: Q;
  body: B;
  /** Present on tenant and operator routes. */
  principal: Principal;
  /** Present on tenant routes, and on operator routes with a {tenantId}. */
  tenant: TenantScope;
  idempotencyKey?: string;
}

export interface ResponseSpec {
  status: number;
  description: string;
  schema?: z.ZodType;
}

export interface ApiOperation<P = unknown, Q = unknown, B = unknown> {
  operationId: string;
  summary: string;
  access: Access;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Honours the Idempotency-Key header (POSTs that create). */
  idempotent?: boolean;
  responses: ResponseSpec[];
  handle(context: OperationContext<P, Q, B>): Promise<ApiResult>;
}

/** Keeps each operation's own type parameters while collecting them in one record. */
export const operation = <P, Q, B>(op: ApiOperation<P, Q, B>): ApiOperation<P, Q, B> => op;

export type Operations = Partial<Record<HttpMethod, ApiOperation<any, any, any>>>; // eslint-disable-line @typescript-eslint/no-explicit-any
