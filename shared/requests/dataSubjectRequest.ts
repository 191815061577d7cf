// The data subject request (SPEC §5): its vocabulary, the zod schemas of what callers send, and its shape.
import { z } from 'zod';

import type { Actor } from '../audit/auditEvent';
import type { RecordCategory } from '../vocabulary/categories';
import { type DataSubject, subjectSchema } from '../vocabulary/dataSubject';
import { categorySchema } from '../vocabulary/categorySchema';

export const REQUEST_TYPES = ['access', 'export', 'delete', 'rectify', 'restrict', 'unrestrict'] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

export const REGULATIONS = ['GDPR', 'CCPA'] as const;
export type Regulation = (typeof REGULATIONS)[number];

export const REQUEST_STATUSES = [
  'received',
  'discovering',
  'awaitingReview',
  'inProgress',
  'completed',
  'declined',
  'cancelled',
  'failed',
] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** Set by the hourly `requestDeadlines` timer on open requests: due within 7 days, or past the due date. */
export const DEADLINE_FLAGS = ['dueSoon', 'overdue'] as const;
export type DeadlineFlag = (typeof DEADLINE_FLAGS)[number];

/** As in Microsoft Graph's subjectRightsRequest. */
export const DATA_SUBJECT_TYPES = [
  'customer',
  'currentEmployee',
  'formerEmployee',
  'prospectiveEmployee',
  'student',
  'teacher',
  'faculty',
  'other',
] as const;

export const rectificationSchema = z.strictObject({
  category: categorySchema,
  recordId: z.string().min(1).max(200).optional(),
  field: z.string().min(1).max(100),
  value: z.union([z.string().max(1000), z.number(), z.boolean(), z.null()]),
});

export const createRequestSchema = z
  .strictObject({
    type: z.enum(REQUEST_TYPES),
    regulation: z.enum(REGULATIONS),
    subject: subjectSchema,
    dataSubjectType: z.enum(DATA_SUBJECT_TYPES).default('other'),
    notes: z.string().max(2000).optional(),
    rectifications: z.array(rectificationSchema).min(1).max(100).optional(),
  })
  .superRefine((body, ctx) => {
    if (body.type === 'rectify' && !body.rectifications) {
      ctx.addIssue({
        code: 'custom',
        path: ['rectifications'],
        message: 'is required for a rectify request',
      });
    }
    if (body.type !== 'rectify' && body.rectifications) {
      ctx.addIssue({
        code: 'custom',
        path: ['rectifications'],
        message: 'is only allowed on a rectify request',
      });
    }
  })
  .meta({ id: 'CreateDataSubjectRequest' });
export type CreateRequestInput = z.infer<typeof createRequestSchema>;

export const reasonSchema = z
  .strictObject({ reason: z.string().trim().min(1).max(2000) })
  .meta({ id: 'Reason' });

export interface Transition {
  action: string;
  from?: RequestStatus;
  to: RequestStatus;
  at: string;
  actor: Actor;
  reason?: string;
}

export interface DataSubjectRequest {
  id: string;
  tenantId: string;
  type: RequestType;
  regulation: Regulation;
  subject: DataSubject;
  dataSubjectType: (typeof DATA_SUBJECT_TYPES)[number];
  notes?: string;
  rectifications?: z.infer<typeof rectificationSchema>[];
  status: RequestStatus;
  receivedAt: string;
  dueAt: string;
  extension?: { reason: string; at: string; by: Actor };
  /** Absent while the deadline is more than 7 days away (or was extended out of that window). */
  deadline?: DeadlineFlag;
  decision?: { reason: string };
  history: Transition[];
  /**
   * Per-category counts, set by discovery; for a request naming only an alias, how many other people held
   * that alias before (never who, never their data).
   */
  discovery?: {
    counts: Partial<Record<RecordCategory | 'auditEvents', number>>;
    completedAt: string;
    earlierHolders?: number;
  };
  result?: Record<string, unknown>;
  /** Why the request failed: the step, a code, and words for people (never internals). */
  failure?: { step: string; code?: string; reason: string; at: string };
  createdBy: Actor;
  /**
   * Internal, never shown: the subject the request acts on (SPEC §4-§5), pinned when it is taken in (an
   * alias's holder then) and settled by discovery. Its key is the pseudonymous subject reference that the
   * request's audit events carry.
   */
  subjectKey?: string;
  subjectHolder?: 'object' | 'alias';
  /** Internal, never shown: what a fulfilment step has established, so a re-run resumes from it. */
  progress?: {
    /** What a delete request erases, counted before erasure removes what would count it. */
    counts?: Record<string, number>;
    packages?: number;
    /** How often the recovery timer put a stopped step back on the queue, and when it last did. */
    stalls?: number;
    resumedAt?: string;
  };
}

const actorSchema = z.object({
  type: z.enum(['user', 'app', 'system', 'operator']),
  id: z.string(),
  upn: z.string().optional(),
});

/** The request as the API returns it (documentation of the response; not used to validate input). */
export const requestViewSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    type: z.enum(REQUEST_TYPES),
    regulation: z.enum(REGULATIONS),
    subject: z.object({
      upn: z.string().optional(),
      objectId: z.string().optional(),
      email: z.string().optional(),
    }),
    dataSubjectType: z.enum(DATA_SUBJECT_TYPES),
    notes: z.string().optional(),
    rectifications: z.array(rectificationSchema).optional(),
    status: z.enum(REQUEST_STATUSES),
    receivedAt: z.iso.datetime(),
    dueAt: z.iso.datetime(),
    daysLeft: z.number().int(),
    deadline: z.enum(DEADLINE_FLAGS).optional(),
    extension: z.object({ reason: z.string(), at: z.iso.datetime(), by: actorSchema }).optional(),
    decision: z.object({ reason: z.string() }).optional(),
    history: z.array(
      z.object({
        action: z.string(),
        from: z.enum(REQUEST_STATUSES).optional(),
        to: z.enum(REQUEST_STATUSES),
        at: z.iso.datetime(),
        actor: actorSchema,
        reason: z.string().optional(),
      }),
    ),
    discovery: z
      .object({
        counts: z.record(z.string(), z.number()),
        completedAt: z.iso.datetime(),
        earlierHolders: z
          .number()
          .int()
          .optional()
          .describe('For a request naming only a UPN or e-mail: how many other people held it before.'),
      })
      .optional(),
    result: z.record(z.string(), z.unknown()).optional(),
    failure: z
      .object({ step: z.string(), code: z.string().optional(), reason: z.string(), at: z.iso.datetime() })
      .optional(),
    createdBy: actorSchema,
  })
  .meta({ id: 'DataSubjectRequest' });
