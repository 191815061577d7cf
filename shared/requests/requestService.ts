// Taking in and deciding data subject requests: each change is one ETag-guarded write of the request that
// also records its side effects (audit event, next work message), which are then carried out (outbox.ts).
import type { Actor, AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { deterministicId } from '../ids';
import type { Page, PageRequest } from '../paging';
import type { TenantScope } from '../residency/tenantDirectory';
import { QUEUES } from '../storage/names';
import type { WorkQueue } from '../storage/workQueue';
import type { DataSubject } from '../vocabulary/dataSubject';
import type { CreateRequestInput, DataSubjectRequest, DeadlineFlag } from './dataSubjectRequest';
import { daysLeft, dueDate } from './dueDates';
import type { IdempotencyStore } from './idempotencyStore';
import { isOpen, type LifecycleAction, transition } from './lifecycle';
import { carryOut, carryOutOrLeave, type EffectSinks, type OutboxEffect } from './outbox';
import {
  newRequestId,
  type RequestFilter,
  type RequestRepository,
  type StoredRequest,
} from './requestRepository';

/** A request as callers see it: with the days left until its deadline. */
export type RequestView = DataSubjectRequest & { daysLeft: number };

export type Decision = Extract<LifecycleAction, 'approve' | 'decline' | 'cancel' | 'extend' | 'retry'>;

const AUDIT_ACTION: Record<LifecycleAction | 'create', string> = {
  create: 'dsr.created',
  startDiscovery: 'dsr.discoveryStarted',
  completeDiscovery: 'dsr.discoveryCompleted',
  approve: 'dsr.approved',
  decline: 'dsr.declined',
  cancel: 'dsr.cancelled',
  complete: 'dsr.completed',
  fail: 'dsr.failed',
  retry: 'dsr.retried',
  extend: 'dsr.extended',
};

/** Work that follows a change, put on `dsr-work` (its worker comes with the records capability). */
const NEXT_STEP: Partial<Record<LifecycleAction | 'create', string>> = {
  create: 'discover',
  approve: 'fulfil',
};

/** After a retry, the request is back in the state of its failed step; that step runs again. */
const stepOf = (request: DataSubjectRequest, action: LifecycleAction | 'create'): string | undefined =>
  action === 'retry' ? (request.status === 'discovering' ? 'discover' : 'fulfil') : NEXT_STEP[action];

export interface ChangeContext {
  actor: Actor;
  correlationId: string;
  reason?: string;
  /** For `fail`: the step that failed, and the failure's code. */
  step?: string;
  code?: string;
}

/** Which subject a request names (records capability): read only, at intake. */
export type SubjectResolver = (
  tenant: TenantScope,
  subject: DataSubject,
) => Promise<{ subjectKey: string; holder: 'object' | 'alias' }>;

export class DataSubjectRequestService {
  constructor(
    private readonly repository: RequestRepository,
    private readonly idempotency: IdempotencyStore,
    private readonly audit: AuditLog,
    private readonly workQueue: WorkQueue,
    private readonly clock: Clock,
    private readonly subjectOf: SubjectResolver,
  ) {}

  view(request: DataSubjectRequest): RequestView {
    // A deadline flag means nothing once the request is closed; the hourly timer visits open ones only.
    const { progress: _internal, subjectKey: _key, subjectHolder: _holder, deadline, ...visible } = request;
    return {
      ...visible,
      ...(request.result ? { result: visibleResult(request.result) } : {}),
      ...(deadline && isOpen(request.status) ? { deadline } : {}),
      daysLeft: daysLeft(new Date(request.dueAt), this.clock()),
    };
  }

  /** The stored request, with its internal progress (workers resume from it). */
  async load(tenant: TenantScope, id: string): Promise<DataSubjectRequest> {
    return (await this.settle(tenant, await this.repository.get(tenant, id))).request;
  }

  /** Saves work progress on a request without changing its state (no audit event: nothing happened yet). */
  async saveProgress(
    tenant: TenantScope,
    id: string,
    progress: NonNullable<DataSubjectRequest['progress']>,
  ): Promise<DataSubjectRequest> {
    const saved = await this.repository.update(tenant, id, (stored) => ({
      ...stored,
      request: { ...stored.request, progress: { ...stored.request.progress, ...progress } },
    }));
    return saved!.request;
  }

  /** Takes in a request. With an idempotency key, a repeat within 24 h returns the first request. */
  async create(
    tenant: TenantScope,
    input: CreateRequestInput,
    change: ChangeContext,
    idempotencyKey?: string,
  ): Promise<RequestView> {
    const now = this.clock();
    let id = newRequestId(now);
    if (idempotencyKey) {
      const claim = await this.idempotency.claim(tenant, 'dsr.create', idempotencyKey, input, id);
      if (claim.replay) {
        const earlier = await this.repository.find(tenant, claim.resourceId);
        if (earlier) return this.view((await this.settle(tenant, earlier)).request);
        id = claim.resourceId; // the first attempt claimed the key but stopped before storing the request
      }
    }
    const named = await this.subjectOf(tenant, input.subject);
    const request: DataSubjectRequest = {
      id,
      tenantId: tenant.tenantId,
      type: input.type,
      regulation: input.regulation,
      subject: input.subject,
      dataSubjectType: input.dataSubjectType,
      ...(input.notes ? { notes: input.notes } : {}),
      ...(input.rectifications ? { rectifications: input.rectifications } : {}),
      status: 'received',
      receivedAt: now.toISOString(),
      dueAt: dueDate(now, input.regulation).toISOString(),
      history: [{ action: 'create', to: 'received', at: now.toISOString(), actor: change.actor }],
      createdBy: change.actor,
      subjectKey: named.subjectKey,
      subjectHolder: named.holder,
    };
    const stored = await this.repository.insert(tenant, request, this.effectsOf(request, 'create', change));
    return this.view((await this.settleOrLeave(tenant, stored)).request);
  }

  async get(tenant: TenantScope, id: string): Promise<RequestView> {
    const stored = await this.repository.get(tenant, id);
    return this.view((await this.settle(tenant, stored)).request);
  }

  async list(tenant: TenantScope, filter: RequestFilter, page: PageRequest): Promise<Page<RequestView>> {
    const result = await this.repository.list(tenant, filter, page);
    return { ...result, items: result.items.map((request) => this.view(request)) };
  }

  /** An admin's decision: approve, decline, cancel, extend. */
  decide(tenant: TenantScope, id: string, decision: Decision, change: ChangeContext): Promise<RequestView> {
    return this.change(tenant, id, decision, change);
  }

  /** Applies a lifecycle action with its audit event and follow-up work; retried on concurrent changes. */
  async change(
    tenant: TenantScope,
    id: string,
    action: LifecycleAction,
    change: ChangeContext,
    amend: (request: DataSubjectRequest) => DataSubjectRequest = (r) => r,
  ): Promise<RequestView> {
    const saved = await this.repository.update(tenant, id, (stored) => {
      const next = amend(
        transition(stored.request, action, {
          actor: change.actor,
          at: this.clock(),
          ...(change.reason ? { reason: change.reason } : {}),
          ...(change.step ? { step: change.step } : {}),
          ...(change.code ? { code: change.code } : {}),
        }),
      );
      return {
        request: next,
        outbox: [...stored.outbox, ...this.effectsOf(next, action, change)],
        etag: stored.etag,
      };
    });
    return this.view((await this.settleOrLeave(tenant, saved!)).request);
  }

  /**
   * Sets the deadline flag that `flagOf` gives for an open request as it is stored at the time of the write
   * (so an extension made meanwhile is seen), in one ETag-guarded write with its audit event. A raised flag
   * is audited once per flag and due date: the event id is derived from them, and the append is idempotent.
   * Returns the request when this call changed its flag, undefined when there was nothing to change.
   */
  async flagDeadline(
    tenant: TenantScope,
    id: string,
    flagOf: (request: DataSubjectRequest) => DeadlineFlag | undefined,
    change: ChangeContext,
  ): Promise<RequestView | undefined> {
    const saved = await this.repository.update(tenant, id, async (read) => {
      // What its last change left to do is carried out first; its ETag is then the one to write under.
      const stored = await this.settle(tenant, read);
      if (!isOpen(stored.request.status)) return undefined;
      const flag = flagOf(stored.request);
      if (flag === stored.request.deadline) return undefined;
      const { deadline: _previous, ...unflagged } = stored.request;
      const next: DataSubjectRequest = flag ? { ...unflagged, deadline: flag } : unflagged;
      const effects: OutboxEffect[] = flag
        ? [
            {
              kind: 'audit',
              event: {
                id: deterministicId(next.tenantId, next.id, flag, next.dueAt),
                action: `dsr.${flag}`,
                actor: change.actor,
                target: { type: 'dataSubjectRequest', id: next.id },
                outcome: 'success',
                correlationId: change.correlationId,
                details: {
                  type: next.type,
                  regulation: next.regulation,
                  status: next.status,
                  dueAt: next.dueAt,
                  daysLeft: daysLeft(new Date(next.dueAt), this.clock()),
                  ...(next.subjectKey ? { subjectRef: next.subjectKey } : {}),
                },
              },
            },
          ]
        : [];
      return { request: next, outbox: [...stored.outbox, ...effects], etag: stored.etag };
    });
    return saved && this.view((await this.settleOrLeave(tenant, saved)).request);
  }

  /** After a change is durable: its effects now if they can be, or left for later (outbox.ts). */
  private settleOrLeave(tenant: TenantScope, stored: StoredRequest): Promise<StoredRequest> {
    return carryOutOrLeave(tenant, stored, this.sinks(), (t, s) => this.repository.replace(t, s));
  }

  private sinks(): EffectSinks {
    return { audit: this.audit, workQueue: this.workQueue };
  }

  /** Carries out the effects recorded on a request, then clears them. */
  private settle(tenant: TenantScope, stored: StoredRequest): Promise<StoredRequest> {
    return carryOut(tenant, stored, this.sinks(), (t, s) => this.repository.replace(t, s));
  }

  private effectsOf(request: DataSubjectRequest, action: LifecycleAction | 'create', change: ChangeContext) {
    const last = request.history[request.history.length - 1];
    const effects: OutboxEffect[] = [
      {
        kind: 'audit',
        event: {
          id: deterministicId(request.tenantId, request.id, String(request.history.length), action),
          action: AUDIT_ACTION[action],
          actor: change.actor,
          target: { type: 'dataSubjectRequest', id: request.id },
          outcome: 'success',
          correlationId: change.correlationId,
          details: {
            type: request.type,
            regulation: request.regulation,
            ...(last?.from ? { from: last.from } : {}),
            to: request.status,
            dueAt: request.dueAt,
            ...(change.reason ? { reason: change.reason } : {}),
            // Pseudonymous: discovery of the subject finds their own request history by it (SPEC §5).
            ...(request.subjectKey ? { subjectRef: request.subjectKey } : {}),
          },
        },
      },
    ];
    const step = stepOf(request, action);
    if (step) {
      effects.push({
        kind: 'enqueue',
        queue: QUEUES.dsrWork,
        message: { tenantId: request.tenantId, requestId: request.id, step },
      });
    }
    return effects;
  }
}

/** A result as callers see it: a package by its checksum and size, not by where and how it is stored. */
function visibleResult(result: Record<string, unknown>): Record<string, unknown> {
  const pkg = result.package as { sha256?: string; sizeBytes?: number } | undefined;
  if (!pkg) return result;
  return { ...result, package: { sha256: pkg.sha256, sizeBytes: pkg.sizeBytes } };
}
