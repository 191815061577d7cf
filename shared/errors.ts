// Domain errors carry the stable codes of SPEC §3; the HTTP edge (shared/http/errorResponse.ts) is the one
// place that turns them into status codes.

export type ErrorCode =
  | 'InvalidJson'
  | 'ValidationFailed'
  | 'Unauthenticated'
  | 'Forbidden'
  | 'TenantMismatch'
  | 'NotFound'
  | 'TenantNotFound'
  | 'MethodNotAllowed'
  | 'InvalidState'
  | 'NotEligible'
  | 'Conflict'
  | 'PayloadTooLarge'
  | 'UnsupportedMediaType'
  | 'TenantMigrating'
  | 'Internal';

export interface ErrorDetail {
  target?: string;
  message: string;
  code?: string;
}

export class DomainError extends Error {
  constructor(
    public readonly code: ErrorCode,
    message: string,
    public readonly details: ErrorDetail[] = [],
    /** Extra response headers the edge should send (Retry-After, Allow, ...). */
    public readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const notFound = (what: string): DomainError => new DomainError('NotFound', `${what} was not found.`);
