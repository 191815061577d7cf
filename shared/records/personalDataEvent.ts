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

/** One record stored or replaced; also what each item of a `records.upserted` batch stands for. */
export const recordUpsertedSchema = z.object({
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
});

/** Items of one `records.upserted` message: as many as a device's check-in needs, within a queue message. */
export const MAX_BATCH_ITEMS = 100;

export const personalDataEventSchema = z.discriminatedUnion('type', [
  recordUpsertedSchema,
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
  // Only the envelope decides whether a batch is taken: each item is validated on its own (parseBatchItem),
  // so one invalid item is poisoned alone and the valid rest stored.
  z.object({
    type: z.literal('records.upserted'),
    ...envelope,
    records: z
      .array(z.unknown())
      .min(1)
      .max(MAX_BATCH_ITEMS, `must hold at most ${MAX_BATCH_ITEMS} items; send more as further messages`),
  }),
]);

export type PersonalDataEvent = z.infer<typeof personalDataEventSchema>;
export type RecordUpsertedEvent = z.infer<typeof recordUpsertedSchema>;
export type RecordsUpsertedBatch = Extract<PersonalDataEvent, { type: 'records.upserted' }>;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * An item of a batch as the `record.upserted` event it stands for, as if it had come alone: the item's own
 * fields (its eventId among them) under its batch's tenant. An item that is no object stays as it is, for
 * the schema to refuse. Pure.
 */
export const batchItemEvent = (tenantId: string, item: unknown): unknown =>
  isObject(item) ? { type: 'record.upserted', ...item, tenantId } : item;

/**
 * Validates an item exactly as that `record.upserted` event. An item may repeat its batch's tenant, not name
 * another: the batch's sender sent it, and it is never stored, nor sealed when poisoned, for another. Pure.
 */
export function parseBatchItem(tenantId: string, item: unknown) {
  const named = isObject(item) ? item.tenantId : undefined;
  if (named !== undefined && (typeof named !== 'string' || named.toLowerCase() !== tenantId)) {
    const issue = {
      code: 'custom' as const,
      path: ['tenantId'],
      message: "must be the batch's tenant",
      input: named,
    };
    return { success: false as const, error: new z.ZodError([issue]) };
  }
  return recordUpsertedSchema.safeParse(batchItemEvent(tenantId, item));
}
