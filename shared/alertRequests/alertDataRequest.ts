// Alert data requests (SPEC §9): a tenant's security admin has the alerts of named devices extracted (a
// package, like an export) or deleted (their personal fields removed, as the 180-day rule does). The
// vocabulary, the schema of what callers send, the request's shape, its state machine and its counts. Pure.
import { z } from 'zod';

import type { Actor } from '../audit/auditEvent';
import { DomainError } from '../errors';

export const ALERT_DATA_ACTIONS = ['extract', 'delete'] as const;
export type AlertDataAction = (typeof ALERT_DATA_ACTIONS)[number];

export const ALERT_REQUEST_STATUSES = ['received', 'inProgress', 'completed', 'failed'] as const;
export type AlertRequestStatus = (typeof ALERT_REQUEST_STATUSES)[number];

export const MAX_DEVICES = 100;
/** A fully qualified DNS name has at most 253 characters; a NetBIOS name 15. */
export const MAX_DEVICE_NAME_LENGTH = 253;
export const MAX_REASON_LENGTH = 1000;

const deviceNameSchema = z
  .string()
  .trim()
  .min(1)
  .max(MAX_DEVICE_NAME_LENGTH)
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  .regex(/^[^\u0000-\u001f\u007f-\u009f]+$/, 'must not contain control characters');

export const createAlertDataRequestSchema = z
  .strictObject({
    action: z.enum(ALERT_DATA_ACTIONS),
    deviceNames: z
      .array(deviceNameSchema)
      .min(1)
      .max(MAX_DEVICES)
      .describe('The devices whose alerts the request acts on (names are not case-sensitive).'),
    reason: z.string().trim().min(1).max(MAX_REASON_LENGTH).describe('Why; kept with the request.'),
  })
  .meta({ id: 'CreateAlertDataRequest' });
export type CreateAlertDataRequestInput = z.infer<typeof createAlertDataRequestSchema>;

/**
 * The devices a request acts on: each once, in the order named, with its first spelling. Device names are
 * not case-sensitive (Windows, Intune; recordRows.deviceKeyOf), so `ADELE-PC` and `adele-pc` are one device.
 */
export function distinctDevices(names: readonly string[]): string[] {
  const seen = new Set<string>();
  const distinct: string[] = [];
  for (const name of names) {
    const key = name.trim().toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    distinct.push(name.trim());
  }
  return distinct;
}

/** What a completed request did (the counts of SPEC §9). */
export interface AlertRequestCounts {
  /** Alerts extracted into the package, or anonymised. */
  alerts: number;
  /** Alerts left as they are, and out of any package, because their subject is restricted (GDPR Art. 18). */
  restrictedAlertsLeftOut: number;
  /** Devices named for which no alert was found at all. */
  devicesWithoutAlerts: number;
}

/** What one device yielded: its alerts, and how many of them belong to restricted subjects. */
export interface DeviceTally {
  alerts: number;
  restricted: number;
}

/** The request's counts from what each of its devices yielded. */
export function countsOf(devices: readonly DeviceTally[]): AlertRequestCounts {
  let alerts = 0;
  let restricted = 0;
  let without = 0;
  for (const device of devices) {
    alerts += device.alerts;
    restricted += device.restricted;
    if (device.alerts + device.restricted === 0) without++;
  }
  return { alerts, restrictedAlertsLeftOut: restricted, devicesWithoutAlerts: without };
}

export interface AlertRequestTransition {
  action: AlertRequestAction;
  from?: AlertRequestStatus;
  to: AlertRequestStatus;
  at: string;
  actor: Actor;
}

/** Where an extraction's package is kept (internal: a link names it, callers see its checksum and size). */
export interface StoredAlertPackage {
  blobName: string;
  packageRow: string;
  /** The pseudo subject whose data key wraps the package key (alertPackageOwner). */
  subjectKey: string;
  sha256: string;
  sizeBytes: number;
  /** When its attempt began (its provisional expiry day, by which crashed attempts are found). */
  generatedAt: string;
}

export interface AlertDataRequest {
  id: string;
  tenantId: string;
  action: AlertDataAction;
  /** Distinct device names as given (distinctDevices), kept with the request in the tenant's geography. */
  deviceNames: string[];
  reason: string;
  status: AlertRequestStatus;
  requestedBy: Actor;
  receivedAt: string;
  startedAt?: string;
  completedAt?: string;
  history: AlertRequestTransition[];
  result?: AlertRequestCounts;
  /** Why the request failed: a code and words for people (never internals). */
  failure?: { code: string; reason: string; at: string };
  /** Internal, never shown as such: the extraction's package. */
  package?: StoredAlertPackage;
  /** Internal, never shown: what a step has established, so a re-run resumes from it. */
  progress?: {
    /** What a deletion acts on, counted before anonymisation removes what would count it. */
    counts?: AlertRequestCounts;
    /** How often the recovery timer put a stopped request back on the queue, and when it last did. */
    stalls?: number;
    resumedAt?: string;
  };
}

export type AlertRequestAction = 'create' | 'start' | 'complete' | 'fail';

const TRANSITIONS: Record<
  Exclude<AlertRequestAction, 'create'>,
  { from: readonly AlertRequestStatus[]; to: AlertRequestStatus }
> = {
  start: { from: ['received'], to: 'inProgress' },
  complete: { from: ['inProgress'], to: 'completed' },
  // `received`: its work never started (the recovery timer gives up on it).
  fail: { from: ['received', 'inProgress'], to: 'failed' },
};

export const WORKING_STATUSES: readonly AlertRequestStatus[] = ['received', 'inProgress'];

export interface AlertTransitionInput {
  actor: Actor;
  at: Date;
  /** For `complete`. */
  result?: AlertRequestCounts;
  /** For `fail`. */
  failure?: { code: string; reason: string };
}

/** A new request as taken in. */
export function newAlertDataRequest(
  id: string,
  tenantId: string,
  input: CreateAlertDataRequestInput,
  actor: Actor,
  at: Date,
): AlertDataRequest {
  const receivedAt = at.toISOString();
  return {
    id,
    tenantId,
    action: input.action,
    deviceNames: distinctDevices(input.deviceNames),
    reason: input.reason.trim(),
    status: 'received',
    requestedBy: actor,
    receivedAt,
    history: [{ action: 'create', to: 'received', at: receivedAt, actor }],
  };
}

/** Applies one step of the lifecycle; 409 InvalidState when the request is not where the step starts. */
export function advance(
  request: AlertDataRequest,
  action: Exclude<AlertRequestAction, 'create'>,
  input: AlertTransitionInput,
): AlertDataRequest {
  const rule = TRANSITIONS[action];
  if (!rule.from.includes(request.status)) {
    throw new DomainError(
      'InvalidState',
      `An alert data request in status '${request.status}' cannot ${action === 'start' ? 'start' : action}.`,
    );
  }
  const at = input.at.toISOString();
  const next: AlertDataRequest = {
    ...request,
    status: rule.to,
    history: [...request.history, { action, from: request.status, to: rule.to, at, actor: input.actor }],
  };
  if (action === 'start') next.startedAt = at;
  if (action === 'complete') {
    if (!input.result) throw new DomainError('Internal', 'A completed alert data request needs its counts.');
    next.completedAt = at;
    next.result = input.result;
  }
  if (action === 'fail') {
    next.failure = { code: input.failure?.code ?? 'Internal', reason: input.failure?.reason ?? '', at };
  }
  return next;
}

/**
 * The pseudo subject that holds an extraction's package key: a package spans several subjects, so it gets
 * a data key of its own. Real subject keys are hex HMACs, so `alertreq-…` never names a person's subject.
 */
export const alertPackageOwner = (requestId: string): string => `alertreq-${requestId}`;

/** A request that has not changed for this long has stopped (a package of 100 devices takes far less). */
export const STALLED_AFTER_MS = 30 * 60 * 1000;
/** Resumptions before a stalled request ends failed. */
export const STALL_LIMIT = 3;

/** Whether a working request stopped making progress: no transition or resumption for STALLED_AFTER_MS. */
export function isStalled(request: AlertDataRequest, now: Date): boolean {
  if (!WORKING_STATUSES.includes(request.status)) return false;
  const last = Math.max(
    Date.parse(request.history.at(-1)?.at ?? request.receivedAt),
    Date.parse(request.progress?.resumedAt ?? request.receivedAt),
  );
  return now.getTime() - last >= STALLED_AFTER_MS;
}

/** The request as callers see it: counts, and a package by its checksum and size only. */
export type AlertRequestView = Omit<AlertDataRequest, 'package' | 'progress' | 'result'> & {
  deviceCount: number;
  result?: AlertRequestCounts & { package?: { sha256: string; sizeBytes: number } };
};

export function viewOf(request: AlertDataRequest): AlertRequestView {
  const { package: stored, progress: _internal, result, ...visible } = request;
  return {
    ...visible,
    deviceCount: request.deviceNames.length,
    ...(result
      ? {
          result: {
            ...result,
            ...(stored ? { package: { sha256: stored.sha256, sizeBytes: stored.sizeBytes } } : {}),
          },
        }
      : {}),
  };
}

const actorSchema = z.object({
  type: z.enum(['user', 'app', 'system', 'operator']),
  id: z.string(),
  upn: z.string().optional(),
});

/** The request as the API returns it (documentation of the response; not used to validate input). */
export const alertRequestViewSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    action: z.enum(ALERT_DATA_ACTIONS),
    deviceNames: z.array(z.string()),
    deviceCount: z.number().int(),
    reason: z.string(),
    status: z.enum(ALERT_REQUEST_STATUSES),
    requestedBy: actorSchema,
    receivedAt: z.iso.datetime(),
    startedAt: z.iso.datetime().optional(),
    completedAt: z.iso.datetime().optional(),
    history: z.array(
      z.object({
        action: z.string(),
        from: z.enum(ALERT_REQUEST_STATUSES).optional(),
        to: z.enum(ALERT_REQUEST_STATUSES),
        at: z.iso.datetime(),
        actor: actorSchema,
      }),
    ),
    result: z
      .object({
        alerts: z.number().int().describe('Alerts extracted into the package, or anonymised.'),
        restrictedAlertsLeftOut: z
          .number()
          .int()
          .describe('Alerts of restricted subjects: left as they are and out of any package.'),
        devicesWithoutAlerts: z.number().int(),
        package: z.object({ sha256: z.string(), sizeBytes: z.number().int() }).optional(),
      })
      .optional(),
    failure: z.object({ code: z.string(), reason: z.string(), at: z.iso.datetime() }).optional(),
  })
  .meta({ id: 'AlertDataRequest' });
