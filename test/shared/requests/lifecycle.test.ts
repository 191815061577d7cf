import {
  type DataSubjectRequest,
  REQUEST_STATUSES,
  type RequestStatus,
} from '../../../shared/requests/dataSubjectRequest';
import { type LifecycleAction, transition } from '../../../shared/requests/lifecycle';

const admin = { type: 'user' as const, id: 'admin-oid', upn: 'admin@contoso.com' };
const now = new Date('2026-03-01T12:00:00Z');

function request(status: RequestStatus, extra: Partial<DataSubjectRequest> = {}): DataSubjectRequest {
  return {
    id: 'r1',
    tenantId: 't1',
    type: 'export',
    regulation: 'GDPR',
    subject: { upn: 'adele@contoso.com' },
    dataSubjectType: 'currentEmployee',
    status,
    receivedAt: '2026-01-31T08:00:00.000Z',
    dueAt: '2026-02-28T08:00:00.000Z',
    history: [],
    createdBy: admin,
    ...extra,
  };
}

const ALL = REQUEST_STATUSES;

const ALLOWED: Record<Exclude<LifecycleAction, 'retry' | 'extend'>, [RequestStatus[], RequestStatus]> = {
  startDiscovery: [['received'], 'discovering'],
  completeDiscovery: [['discovering'], 'awaitingReview'],
  approve: [['awaitingReview'], 'inProgress'],
  // A failed request holds nothing back (SPEC §5): it can be retried, declined or cancelled.
  decline: [['received', 'discovering', 'awaitingReview', 'failed'], 'declined'],
  cancel: [['received', 'discovering', 'awaitingReview', 'failed'], 'cancelled'],
  complete: [['inProgress'], 'completed'],
  fail: [['received', 'discovering', 'inProgress'], 'failed'],
};

describe('request lifecycle', () => {
  for (const [action, [from, to]] of Object.entries(ALLOWED)) {
    for (const status of ALL) {
      if (from.includes(status)) {
        it(`${action} moves ${status} to ${to} and records who and when`, () => {
          const next = transition(request(status), action as LifecycleAction, {
            actor: admin,
            at: now,
            reason: 'why',
          });
          expect(next.status).toBe(to);
          expect(next.history).toEqual([
            { action, from: status, to, at: now.toISOString(), actor: admin, reason: 'why' },
          ]);
        });
      } else {
        it(`${action} from ${status} is InvalidState`, () => {
          expect(() =>
            transition(request(status), action as LifecycleAction, { actor: admin, at: now }),
          ).toThrow(expect.objectContaining({ code: 'InvalidState' }));
        });
      }
    }
  }

  it('keeps the decline reason on the request', () => {
    expect(
      transition(request('awaitingReview'), 'decline', {
        actor: admin,
        at: now,
        reason: 'identity not verified',
      }).decision,
    ).toEqual({
      reason: 'identity not verified',
    });
  });

  it('extends an open request once, from its receipt', () => {
    const extended = transition(request('awaitingReview'), 'extend', {
      actor: admin,
      at: now,
      reason: 'complex',
    });
    expect(extended.status).toBe('awaitingReview');
    expect(extended.dueAt).toBe('2026-04-30T08:00:00.000Z');
    expect(extended.extension).toEqual({ reason: 'complex', at: now.toISOString(), by: admin });
    expect(() => transition(extended, 'extend', { actor: admin, at: now })).toThrow(
      expect.objectContaining({ code: 'InvalidState' }),
    );
  });

  it.each(['completed', 'declined', 'cancelled', 'failed'] as RequestStatus[])(
    'refuses to extend a %s request',
    (status) => {
      expect(() => transition(request(status), 'extend', { actor: admin, at: now })).toThrow(
        expect.objectContaining({ code: 'InvalidState' }),
      );
    },
  );

  it('records the failed step and retries from it', () => {
    const failed = transition(request('inProgress'), 'fail', {
      actor: admin,
      at: now,
      reason: 'boom',
      step: 'fulfil',
    });
    expect(failed.failure).toEqual({
      step: 'fulfil',
      code: 'Internal',
      reason: 'boom',
      at: now.toISOString(),
    });
    const retried = transition(failed, 'retry', { actor: admin, at: now });
    expect(retried.status).toBe('inProgress');
    expect(retried.failure).toBeUndefined();

    const failedDiscovery = transition(request('discovering'), 'fail', {
      actor: admin,
      at: now,
      step: 'discover',
    });
    expect(transition(failedDiscovery, 'retry', { actor: admin, at: now }).status).toBe('discovering');
  });

  it('refuses to retry a request that has not failed', () => {
    expect(() => transition(request('inProgress'), 'retry', { actor: admin, at: now })).toThrow(
      expect.objectContaining({ code: 'InvalidState' }),
    );
  });
});
