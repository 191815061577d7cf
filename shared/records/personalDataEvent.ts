// Events other systems of the platform put on `personal-data-events` (SPEC §4), as zod schemas.
import { z } from 'zod';

import { EVENT_CATEGORIES } from '../vocabulary/categories';
import { subjectSchema } from '../vocabulary/dataSubject';

const envelope = {
  tenantId: z.uuid().transform((v) => v.toLowerCase()),
  eventId: z.string().min(1).max(200),
};
/** Sealed and base64-encoded, a record must fit a Table property (32K characters). */
export const MAX_DATA_BYTES = 16 * 1024;
const timestamp = z.iso.datetime({ offset: true });

export const personalDataEventSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('record.upserted'),
    ...envelope,
    category: z.enum(EVENT_CATEGORIES),
    recordId: z.string().min(1).max(200),
    subject: subjectSchema,
    occurredAt: timestamp,
    data: z
      .record(z.string(), z.unknown())
      .refine((data) => Buffer.byteLength(JSON.stringify(data)) <= MAX_DATA_BYTES, {
        message: `must be at most ${MAX_DATA_BYTES / 1024} KiB as JSON`,
      }),
    deviceName: z.string().min(1).max(200).optional(),
  }),
  z.object({
    type: z.literal('record.deleted'),
    ...envelope,
    category: z.enum(EVENT_CATEGORIES),
    recordId: z.string().min(1).max(200),
    deletedAt: timestamp,
  }),
  z.object({ type: z.literal('subject.deleted'), ...envelope, subject: subjectSchema, deletedAt: timestamp }),
  z.object({
    type: z.literal('device.retired'),
    ...envelope,
    deviceName: z.string().min(1).max(200),
    deletedAt: timestamp,
  }),
  z.object({
    type: z.literal('tenant.provisioned'),
    ...envelope,
    countryCode: z.string().regex(/^[A-Za-z]{2}$/, 'must be an ISO 3166-1 alpha-2 code'),
    displayName: z.string().trim().min(1).max(256),
  }),
  z.object({ type: z.literal('tenant.subscriptionEnded'), ...envelope, endedAt: timestamp }),
]);

export type PersonalDataEvent = z.infer<typeof personalDataEventSchema>;
