// Who a data subject is named as (SPEC §4-§5): at least one of a UPN, an Entra object id, an e-mail address.
import { z } from 'zod';

export const subjectSchema = z
  .strictObject({
    upn: z
      .string()
      .trim()
      .min(3)
      .max(320)
      .regex(/^[^@\s]+@[^@\s]+$/, 'must look like user@domain')
      .optional(),
    objectId: z.uuid().optional(),
    email: z.email().max(320).optional(),
  })
  .refine((s) => s.upn !== undefined || s.objectId !== undefined || s.email !== undefined, {
    message: 'at least one of upn, objectId or email is required',
  })
  .meta({ id: 'DataSubject' });
export type DataSubject = z.infer<typeof subjectSchema>;
