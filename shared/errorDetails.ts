// Error details of invalid input (zod issues), in the error shape of SPEC §3: what the HTTP edge answers and
// what a poisoned queue message records.
import type { ZodError } from 'zod';

import type { ErrorDetail } from './errors';

/** The reason a poisoned queue message (or batch item) gives when it does not match its schema. */
export const SCHEMA_MISMATCH = 'The message does not match the schema.';

/** Turns zod issues into error details whose target is the dotted path (`subject.upn`). */
export function validationDetails(error: ZodError, prefix?: string): ErrorDetail[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const target = [prefix, path].filter(Boolean).join('.');
    return { ...(target ? { target } : {}), message: issue.message };
  });
}
