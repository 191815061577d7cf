// The request lifecycle as a pure state machine: received → discovering → awaitingReview → inProgress →
// completed, or declined, cancelled, failed. Illegal transitions are 409 InvalidState.
import type { Actor } from '../audit/auditEvent';
import { DomainError } from '../errors';
import type { DataSubjectRequest, RequestStatus } from './dataSubjectRequest';
import { dueDate } from './dueDates';

export type LifecycleAction =
  | 'startDiscovery'
  | 'completeDiscovery'
  | 'approve'
  | 'decline'
  | 'cancel'
  | 'complete'
  | 'fail'
  | 'retry'
  | 'extend';

/** Before fulfilment, and after a failure (SPEC §5: a failed request can be retried, declined or cancelled). */
const DECIDABLE: readonly RequestStatus[] = ['received', 'discovering', 'awaitingReview', 'failed'];

/** Which states each action may start from, and where it leads (`retry` returns to the failed step). */
const TRANSITIONS: Record<
  Exclude<LifecycleAction, 'retry' | 'extend'>,
  { from: readonly RequestStatus[]; to: RequestStatus }
> = {
  startDiscovery: { from: ['received'], to: 'discovering' },
  completeDiscovery: { from: ['discovering'], to: 'awaitingReview' },
  approve: { from: ['awaitingReview'], to: 'inProgress' },
  decline: { from: DECIDABLE, to: 'declined' },
  cancel: { from: DECIDABLE, to: 'cancelled' },
  complete: { from: ['inProgress'], to: 'completed' },
  // `received`: its discovery never started (the recovery timer gives up on it).
  fail: { from: ['received', 'discovering', 'inProgress'], to: 'failed' },
};

export const TERMINAL_STATUSES: readonly RequestStatus[] = ['completed', 'declined', 'cancelled'];
export const isOpen = (status: RequestStatus): boolean => !TERMINAL_STATUSES.includes(status);
/** Whether a request keeps retention off its subject: one being worked on; a failed one holds nothing back. */
export const holdsBackRetention = (status: RequestStatus): boolean => isOpen(status) && status !== 'failed';

export interface TransitionInput {
  actor: Actor;
  at: Date;
  reason?: string;
  /** For `fail`: the step that failed, and the failure's code. */
  step?: string;
  code?: string;
}

const invalid = (request: DataSubjectRequest, action: LifecycleAction, why?: string) =>
  new DomainError(
    'InvalidState',
    why ?? `A request in status '${request.status}' cannot be ${PAST_TENSE[action]}.`,
  );

const PAST_TENSE: Record<LifecycleAction, string> = {
  startDiscovery: 'discovered',
  completeDiscovery: 'reviewed',
  approve: 'approved',
  decline: 'declined',
  cancel: 'cancelled',
  complete: 'completed',
  fail: 'failed',
  retry: 'retried',
  extend: 'extended',
};

/** Applies one action, returning the new request; throws InvalidState when the action is not allowed. */
export function transition(
  request: DataSubjectRequest,
  action: LifecycleAction,
  input: TransitionInput,
): DataSubjectRequest {
  const at = input.at.toISOString();
  const record = (to: RequestStatus) => ({
    action,
    from: request.status,
    to,
    at,
    actor: input.actor,
    ...(input.reason ? { reason: input.reason } : {}),
  });

  if (action === 'extend') {
    if (!isOpen(request.status) || request.status === 'failed') throw invalid(request, action);
    if (request.extension)
      throw invalid(request, action, 'The deadline of this request was already extended once.');
    return {
      ...request,
      dueAt: dueDate(new Date(request.receivedAt), request.regulation, true).toISOString(),
      extension: { reason: input.reason ?? '', at, by: input.actor },
      history: [...request.history, record(request.status)],
    };
  }

  if (action === 'retry') {
    if (request.status !== 'failed' || !request.failure) throw invalid(request, action);
    const to: RequestStatus = request.failure.step === 'discover' ? 'discovering' : 'inProgress';
    const { failure: _failure, ...rest } = request;
    return { ...rest, status: to, history: [...request.history, record(to)] };
  }

  const rule = TRANSITIONS[action];
  if (!rule.from.includes(request.status)) throw invalid(request, action);
  const next: DataSubjectRequest = {
    ...request,
    status: rule.to,
    history: [...request.history, record(rule.to)],
  };
  if (action === 'decline') next.decision = { reason: input.reason ?? '' };
  if (action === 'fail')
    next.failure = {
      step: input.step ?? 'unknown',
      code: input.code ?? 'Internal',
      reason: input.reason ?? 'unknown',
      at,
    };
  return next;
}
