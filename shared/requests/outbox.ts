// Side effects of a request change (its audit event, its next work message), stored on the request in the
// same write as the change and carried out after it. A crash in between leaves them on the request, and the
// next operation on it carries them out: no audit event or work message is ever lost. Audit appends are
// idempotent by event id and work messages are idempotent at their consumer, so repeating one is harmless.
import type { AuditEventInput } from '../audit/auditEvent';

export type OutboxEffect =
  | { kind: 'audit'; event: AuditEventInput & { id: string } }
  | { kind: 'enqueue'; queue: string; message: Record<string, unknown> };
