// Error responses every tenant route can give, for the OpenAPI document.
import { z } from 'zod';

import type { ResponseSpec } from './apiOperation';

export const errorSchema = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.array(z.object({ target: z.string().optional(), message: z.string() })).optional(),
    }),
  })
  .meta({ id: 'Error' });

const err = (status: number, description: string): ResponseSpec => ({
  status,
  description,
  schema: errorSchema,
});

export const TENANT_ERRORS: ResponseSpec[] = [
  err(401, 'Unauthenticated: missing or invalid bearer token.'),
  err(403, 'Forbidden or TenantMismatch.'),
  err(404, 'NotFound or TenantNotFound.'),
];
export const BODY_ERRORS: ResponseSpec[] = [
  err(400, 'InvalidJson or ValidationFailed.'),
  err(413, 'PayloadTooLarge: body over 64 KiB.'),
  err(415, 'UnsupportedMediaType: body not application/json.'),
];
export const WRITE_ERRORS: ResponseSpec[] = [
  err(409, 'InvalidState, NotEligible or Conflict.'),
  err(423, 'TenantMigrating: writes are paused while the tenant moves geography.'),
];
