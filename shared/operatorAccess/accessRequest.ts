// Operator access requests and grants (SPEC §9): no standing access. An operator asks for time-limited,
// optionally scoped access to one tenant with a justification and a ticket; another operator approves (and
// the tenant too, when its policy says so); the grant's time starts at the last approval and ends by itself;
// an undecided request expires after 12 hours. Status is always computed from the times, so nothing depends
// on the expiry timer having run. Pure.
import { z } from 'zod';

import { DomainError } from '../errors';
import { RECORD_CATEGORIES, type RecordCategory } from '../vocabulary/categories';
import { type DataSubject, subjectSchema } from '../vocabulary/dataSubject';
import { categorySchema } from '../vocabulary/categorySchema';

export const UNDECIDED_EXPIRY_MS = 12 * 60 * 60 * 1000;
/** How long a grant may run, in minutes (SPEC §9). */
export const MIN_GRANT_MINUTES = 15;
export const MAX_GRANT_MINUTES = 480;
export const ACCESS_STATUSES = ['pending', 'active', 'denied', 'revoked', 'expired'] as const;
export type AccessStatus = (typeof ACCESS_STATUSES)[number];
/** Who decided: an operator approver, or the tenant (its Privacy.Admin). */
export type Party = 'operator' | 'tenant';

export const accessScopeSchema = z
  .strictObject({
    categories: z.array(categorySchema).min(1).max(RECORD_CATEGORIES.length).optional(),
    subject: subjectSchema.optional(),
  })
  .meta({ id: 'OperatorAccessScope' });
export type AccessScope = z.infer<typeof accessScopeSchema>;

export const accessRequestInputSchema = z
  .strictObject({
    tenantId: z.uuid(),
    justification: z.string().trim().min(10).max(1000),
    ticket: z
      .string()
      .trim()
      .min(1)
      .max(64)
      .regex(/^[\x21-\x7e]+( [\x21-\x7e]+)*$/, 'printable ASCII'),
    durationMinutes: z.number().int().min(MIN_GRANT_MINUTES).max(MAX_GRANT_MINUTES),
    scope: accessScopeSchema.optional(),
  })
  .meta({ id: 'OperatorAccessRequestInput' });
export type AccessRequestInput = z.infer<typeof accessRequestInputSchema>;

export interface Person {
  objectId: string;
  upn?: string | undefined;
}

export interface Decision {
  by: Person;
  at: string;
}

export interface AccessRequest {
  /** `{tenantId}.{key}`: names the tenant, so an operator route finds it from the id alone. */
  id: string;
  tenantId: string;
  requester: Person;
  justification: string;
  ticket: string;
  durationMinutes: number;
  scope?: AccessScope | undefined;
  /** The tenant's policy when the request was made: the tenant must approve it too. */
  requireTenantApproval: boolean;
  createdAt: string;
  /** An undecided request expires then. */
  decideBy: string;
  approvals: Partial<Record<Party, Decision>>;
  denial?: (Decision & { party: Party; reason: string }) | undefined;
  revocation?: (Decision & { party: Party }) | undefined;
  /** Set by the last approval: the grant runs from then for durationMinutes. */
  grant?: { startsAt: string; endsAt: string } | undefined;
  /** When the expiry was recorded (audited once) by the timer or a check. */
  expiryRecordedAt?: string | undefined;
}

export const accessRequestIdSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9]{13}-[0-9a-f]{8}$/);

/** A request's id: its tenant, then its row key (so the id alone says where the request is). */
export const accessRequestId = (tenantId: string, rowKey: string): string =>
  `${tenantId.toLowerCase()}.${rowKey}`;

export const keyOfId = (id: string): { tenantId: string; rowKey: string } => {
  const at = id.indexOf('.');
  return { tenantId: id.slice(0, at), rowKey: id.slice(at + 1) };
};

/** The status at `now`, from the decisions and the times alone. */
export function statusAt(request: AccessRequest, now: Date): AccessStatus {
  if (request.denial) return 'denied';
  if (request.revocation) return 'revoked';
  if (request.grant) return now.getTime() < Date.parse(request.grant.endsAt) ? 'active' : 'expired';
  return now.getTime() < Date.parse(request.decideBy) ? 'pending' : 'expired';
}

/** When the request stops being pending or active by itself; undefined once decided for good. */
export function endsAt(request: AccessRequest): string | undefined {
  if (request.denial || request.revocation) return undefined;
  return request.grant ? request.grant.endsAt : request.decideBy;
}

export function newAccessRequest(
  input: AccessRequestInput,
  requester: Person,
  requireTenantApproval: boolean,
  now: Date,
  key: string,
): AccessRequest {
  return {
    id: accessRequestId(input.tenantId, key),
    tenantId: input.tenantId.toLowerCase(),
    requester,
    justification: input.justification,
    ticket: input.ticket,
    durationMinutes: input.durationMinutes,
    ...(input.scope ? { scope: input.scope } : {}),
    requireTenantApproval,
    createdAt: now.toISOString(),
    decideBy: new Date(now.getTime() + UNDECIDED_EXPIRY_MS).toISOString(),
    approvals: {},
  };
}

const invalid = (request: AccessRequest, now: Date, what: string) =>
  new DomainError(
    'InvalidState',
    `Access request ${request.id} is ${statusAt(request, now)}: it cannot be ${what}.`,
  );

/**
 * An approval by an operator approver (never the requester) or by the tenant. The grant starts with the last
 * approval that was needed.
 */
export function approve(request: AccessRequest, party: Party, by: Person, now: Date): AccessRequest {
  if (statusAt(request, now) !== 'pending') throw invalid(request, now, 'approved');
  if (party === 'operator' && by.objectId === request.requester.objectId) {
    throw new DomainError('Forbidden', 'An operator cannot approve their own access request.');
  }
  if (party === 'tenant' && !request.requireTenantApproval) {
    throw new DomainError(
      'InvalidState',
      `Access request ${request.id} does not need the tenant's approval.`,
    );
  }
  if (request.approvals[party])
    throw new DomainError('InvalidState', `Access request ${request.id} has that approval already.`);
  const approvals = { ...request.approvals, [party]: { by, at: now.toISOString() } };
  const complete =
    approvals.operator !== undefined && (!request.requireTenantApproval || approvals.tenant !== undefined);
  return {
    ...request,
    approvals,
    ...(complete
      ? {
          grant: {
            startsAt: now.toISOString(),
            endsAt: new Date(now.getTime() + request.durationMinutes * 60_000).toISOString(),
          },
        }
      : {}),
  };
}

export function deny(
  request: AccessRequest,
  party: Party,
  by: Person,
  reason: string,
  now: Date,
): AccessRequest {
  if (statusAt(request, now) !== 'pending') throw invalid(request, now, 'denied');
  if (party === 'tenant' && !request.requireTenantApproval) {
    // A tenant that does not approve requests still ends access with a revocation.
    throw new DomainError(
      'InvalidState',
      `Access request ${request.id} awaits no decision of the tenant; revoke it.`,
    );
  }
  return { ...request, denial: { by, at: now.toISOString(), party, reason } };
}

export function revoke(request: AccessRequest, party: Party, by: Person, now: Date): AccessRequest {
  const status = statusAt(request, now);
  if (status !== 'pending' && status !== 'active') throw invalid(request, now, 'revoked');
  return { ...request, revocation: { by, at: now.toISOString(), party } };
}

/** What an operator read asks for. */
export interface ReadAsk {
  category?: RecordCategory | undefined;
  /** The subject asked for resolved to its subject key; the scope's subject resolved likewise. */
  subjectKey?: string | undefined;
}

/**
 * The categories a read may return under the grant: those asked for within the scope. Refused (403) when the
 * ask reaches beyond the scope: a category outside it, or any subject but the scope's.
 */
export function readableCategories(
  request: AccessRequest,
  ask: ReadAsk,
  scopeSubjectKey: string | undefined,
): readonly RecordCategory[] {
  const allowed = request.scope?.categories ?? RECORD_CATEGORIES;
  if (ask.category && !allowed.includes(ask.category)) {
    throw new DomainError('Forbidden', `The grant does not cover the category ${ask.category}.`);
  }
  if (request.scope?.subject && ask.subjectKey !== scopeSubjectKey) {
    throw new DomainError('Forbidden', 'The grant covers one data subject only: name that subject.');
  }
  return ask.category ? [ask.category] : allowed;
}

/** The view a route answers (the same for operators and the tenant). */
export function accessRequestView(request: AccessRequest, now: Date) {
  return { ...request, status: statusAt(request, now) };
}

export type { DataSubject };
