// The one place that maps errors to HTTP responses, in the Microsoft REST API guidelines' error shape.
import type { HttpResponseInit, InvocationContext } from '@azure/functions';
import { ZodError } from 'zod';

import { validationDetails } from '../errorDetails';
import { DomainError, type ErrorCode, type ErrorDetail } from '../errors';
import { InvalidContinuationError } from '../paging';

const STATUS: Record<ErrorCode, number> = {
  InvalidJson: 400,
  ValidationFailed: 400,
  Unauthenticated: 401,
  Forbidden: 403,
  TenantMismatch: 403,
  NotFound: 404,
  TenantNotFound: 404,
  MethodNotAllowed: 405,
  InvalidState: 409,
  NotEligible: 409,
  Conflict: 409,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  TenantMigrating: 423,
  Internal: 500,
};

export const statusOf = (code: ErrorCode): number => STATUS[code];

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: ErrorDetail[] };
}

export function errorResponse(
  error: unknown,
  requestId: string,
  context?: Pick<InvocationContext, 'error'>,
): HttpResponseInit {
  let domain: DomainError;
  if (error instanceof DomainError) {
    domain = error;
  } else if (error instanceof InvalidContinuationError) {
    domain = new DomainError('ValidationFailed', error.message, [
      { target: 'skipToken', message: error.message },
    ]);
  } else if (error instanceof ZodError) {
    domain = new DomainError('ValidationFailed', 'The request is not valid.', validationDetails(error));
  } else {
    context?.error(`Unhandled error (request ${requestId}):`, error);
    domain = new DomainError('Internal', `An internal error occurred. Quote request id ${requestId}.`);
  }
  if (domain.code === 'Internal' && error === domain) {
    context?.error(`Internal error (request ${requestId}): ${domain.message}`);
    domain = new DomainError('Internal', `An internal error occurred. Quote request id ${requestId}.`);
  }
  const body: ErrorBody = {
    error: {
      code: domain.code,
      message: domain.message,
      ...(domain.details.length > 0 ? { details: domain.details } : {}),
    },
  };
  return {
    status: statusOf(domain.code),
    jsonBody: body,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'x-request-id': requestId,
      ...domain.headers,
    },
  };
}
