// Taking in and moving alert data requests: each change is one ETag-guarded write of the request that also
// records its side effects (audit event, work message), carried out after it as for data subject requests
// (requests/outbox.ts): a crash right after the write leaves them on the request, and the next read of it, or
// the `alertRequestRecovery` timer, carries them out.
import type { Actor, AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { DomainError } from '../errors';
import { deterministicId } from '../ids';
import type { Page, PageRequest } from '../paging';
import type { IdempotencyStore } from '../requests/idempotencyStore';
import { carryOut, carryOutOrLeave, type EffectSinks, type OutboxEffect } from '../requests/outbox';
import type { PackageLink, PackageLinks } from '../requests/packageLinks';
import { newRequestId } from '../requests/requestRepository';
import type { TenantScope } from '../residency/tenantDirectory';
import { QUEUES } from '../storage/names';
import type { WorkQueue } from '../storage/workQueue';
import {
  advance,
  type AlertDataRequest,
  type AlertRequestAction,
  type AlertRequestCounts,
  type AlertRequestStatus,
  type AlertRequestView,
  type AlertTransitionInput,
  type CreateAlertDataRequestInput,
  newAlertDataRequest,
  viewOf,
} from './alertDataRequest';
import type { AlertRequestStore, StoredAlertRequest } from './alertRequestStore';

export interface AlertChangeContext {
  actor: Actor;
  correlationId: string;
}

const AUDIT_ACTION: Record<AlertRequestAction, string> = {
  create: 'alertDataRequest.created',
  start: 'alertDataRequest.started',
  complete: 'alertDataRequest.completed',
  fail: 'alertDataRequest.failed',
};

export const ALERT_REQUEST_TARGET = 'alertDataRequest';

export class AlertRequestService {
  constructor(
    private readonly store: AlertRequestStore,
    private readonly idempotency: IdempotencyStore,
    private readonly audit: AuditLog,
    private readonly workQueue: WorkQueue,
    private readonly links: PackageLinks,
    private readonly clock: Clock,
  ) {}

  /** Takes in a request. With an idempotency key, a repeat within 24 h returns the first request. */
  async create(
    tenant: TenantScope,
    input: CreateAlertDataRequestInput,
    change: AlertChangeContext,
    idempotencyKey?: string,
  ): Promise<AlertRequestView> {
    const now = this.clock();
    let id = newRequestId(now);
    if (idempotencyKey) {
      const claim = await this.idempotency.claim(
        tenant,
        'alertDataRequest.create',
        idempotencyKey,
        input,
        id,
      );
      if (claim.replay) {
        const earlier = await this.store.find(tenant, claim.resourceId);
        if (earlier) return viewOf((await this.settle(tenant, earlier)).request);
        id = claim.resourceId; // the first attempt claimed the key but stopped before storing the request
      }
    }
    const request = newAlertDataRequest(id, tenant.tenantId, input, change.actor, now);
    const stored = await this.store.insert(tenant, request, this.effectsOf(request, 'create', change));
    return viewOf((await this.settleOrLeave(tenant, stored)).request);
  }

  async get(tenant: TenantScope, id: string): Promise<AlertRequestView> {
    return viewOf(await this.load(tenant, id));
  }

  /** The stored request, with its internal progress (the worker resumes from it). */
  async load(tenant: TenantScope, id: string): Promise<AlertDataRequest> {
    return (await this.settle(tenant, await this.store.get(tenant, id))).request;
  }

  async list(
    tenant: TenantScope,
    filter: { status?: AlertRequestStatus },
    page: PageRequest,
  ): Promise<Page<AlertRequestView>> {
    const found = await this.store.list(tenant, filter, page);
    return { ...found, items: found.items.map(viewOf) };
  }

  /**
   * Applies a lifecycle step with its audit event, guarded by the ETag of the request as read: of two
   * workers, one wins and the other gets InvalidState. `amend` adds what the step established.
   */
  async change(
    tenant: TenantScope,
    id: string,
    action: Exclude<AlertRequestAction, 'create'>,
    change: AlertChangeContext,
    input: Omit<AlertTransitionInput, 'actor' | 'at'> = {},
    amend: (request: AlertDataRequest) => AlertDataRequest = (r) => r,
  ): Promise<AlertDataRequest> {
    const saved = await this.store.update(tenant, id, (stored) => {
      const next = amend(
        advance(stored.request, action, { ...input, actor: change.actor, at: this.clock() }),
      );
      return {
        request: next,
        outbox: [...stored.outbox, ...this.effectsOf(next, action, change)],
        etag: stored.etag,
      };
    });
    return (await this.settleOrLeave(tenant, saved!)).request;
  }

  /** Saves work progress without changing the request's state (no audit event: nothing happened yet). */
  async saveProgress(
    tenant: TenantScope,
    id: string,
    progress: NonNullable<AlertDataRequest['progress']>,
  ): Promise<AlertDataRequest> {
    const saved = await this.store.update(tenant, id, (stored) => ({
      ...stored,
      request: { ...stored.request, progress: { ...stored.request.progress, ...progress } },
    }));
    return saved!.request;
  }

  /**
   * The counts a deletion acts on, fixed once before anything is anonymised: the first worker's stand
   * (ETag-guarded), and every later or concurrent one reads them.
   */
  async fixCounts(tenant: TenantScope, id: string, counts: AlertRequestCounts): Promise<AlertRequestCounts> {
    let fixed: AlertRequestCounts | undefined;
    await this.store.update(tenant, id, (stored) => {
      // The first worker's counts stand: a later or concurrent one takes them.
      fixed = stored.request.progress?.counts;
      if (fixed) return undefined;
      return { ...stored, request: { ...stored.request, progress: { ...stored.request.progress, counts } } };
    });
    return fixed ?? counts;
  }

  /** A 15-minute download link to the package of a completed extraction (SPEC §5's shape, audited). */
  async packageLink(
    tenant: TenantScope,
    id: string,
    change: AlertChangeContext,
    baseUrl: string,
  ): Promise<PackageLink> {
    const request = await this.load(tenant, id);
    if (request.action !== 'extract') {
      throw new DomainError('InvalidState', 'A delete request has no package.');
    }
    if (request.status !== 'completed' || !request.package) {
      throw new DomainError('InvalidState', `The package is not ready: the request is '${request.status}'.`);
    }
    return this.links.issueFor(tenant, { type: ALERT_REQUEST_TARGET, id }, request.package, change, baseUrl);
  }

  /** After a change is durable: its effects now if they can be, or left for later (outbox.ts). */
  private settleOrLeave(tenant: TenantScope, stored: StoredAlertRequest): Promise<StoredAlertRequest> {
    return carryOutOrLeave(tenant, stored, this.sinks(), (t, s) => this.store.replace(t, s));
  }

  private sinks(): EffectSinks {
    return { audit: this.audit, workQueue: this.workQueue };
  }

  /** Carries out the effects recorded on a request, then clears them. */
  private settle(tenant: TenantScope, stored: StoredAlertRequest): Promise<StoredAlertRequest> {
    return carryOut(tenant, stored, this.sinks(), (t, s) => this.store.replace(t, s));
  }

  private effectsOf(
    request: AlertDataRequest,
    action: AlertRequestAction,
    change: AlertChangeContext,
  ): OutboxEffect[] {
    const last = request.history.at(-1);
    const effects: OutboxEffect[] = [
      {
        kind: 'audit',
        event: {
          id: deterministicId(request.tenantId, request.id, String(request.history.length), action),
          action: AUDIT_ACTION[action],
          actor: change.actor,
          target: { type: ALERT_REQUEST_TARGET, id: request.id },
          outcome: action === 'fail' ? 'failure' : 'success',
          correlationId: change.correlationId,
          // Device names stay with the request; the log says how many, why, and what came of it.
          details: {
            action: request.action,
            deviceCount: request.deviceNames.length,
            ...(last?.from ? { from: last.from } : {}),
            to: request.status,
            ...(action === 'create' ? { reason: request.reason } : {}),
            ...(action === 'complete' && request.result ? { result: request.result } : {}),
            ...(action === 'complete' && request.package
              ? { sha256: request.package.sha256, sizeBytes: request.package.sizeBytes }
              : {}),
            ...(action === 'fail' && request.failure
              ? { code: request.failure.code, reason: request.failure.reason }
              : {}),
          },
        },
      },
    ];
    if (action === 'create') {
      effects.push({
        kind: 'enqueue',
        queue: QUEUES.alertDataWork,
        message: { tenantId: request.tenantId, requestId: request.id },
      });
    }
    return effects;
  }
}
