// Just-in-time operator access (SPEC §9): requests, decisions, the tenant's policy, reads under an active
// grant, and expiry. Every one of them is an event in the tenant's own audit chain naming the request (the
// grant), its justification and its ticket, so the tenant sees who looked at what and why.
import type { Actor, AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { newestFirstKey } from '../ids';
import { DomainError } from '../errors';
import type { Page, PageRequest } from '../paging';
import type { BrowsedRecord, RecordBrowser } from '../records/recordBrowser';
import type { RecordStore } from '../records/recordStore';
import type { RestrictionStore } from '../records/restrictions';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import type { IdempotencyStore } from '../requests/idempotencyStore';
import type { RecordCategory } from '../vocabulary/categories';
import type { DataSubject } from '../vocabulary/dataSubject';
import {
  type AccessRequest,
  type AccessRequestInput,
  accessRequestId,
  accessRequestView,
  approve,
  deny,
  keyOfId,
  newAccessRequest,
  type Party,
  type Person,
  readableCategories,
  revoke,
  statusAt,
} from './accessRequest';
import type { AccessRequestStore, OperatorAccessPolicy } from './accessRequestStore';

export type AccessRequestView = ReturnType<typeof accessRequestView>;
export type Decider = { party: Party; person: Person; actor: Actor };

export const operatorActor = (person: Person): Actor => ({
  type: 'operator',
  id: person.objectId,
  ...(person.upn ? { upn: person.upn } : {}),
});

export class OperatorAccessService {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly store: AccessRequestStore,
    private readonly audit: AuditLog,
    private readonly records: RecordStore,
    private readonly browser: RecordBrowser,
    private readonly restrictions: RestrictionStore,
    private readonly idempotency: IdempotencyStore,
    private readonly clock: Clock,
  ) {}

  /**
   * An operator asks for access to one tenant. The tenant must exist (404 otherwise). With an idempotency key,
   * the same operator's repeat within 24 h returns the first request (the claim lives in the tenant's
   * geography, scoped to the requester, since operators do not belong to the tenant).
   */
  async request(
    input: AccessRequestInput,
    requester: Person,
    correlationId: string,
    idempotencyKey?: string,
  ): Promise<AccessRequestView> {
    const tenant = await this.directory.resolve(input.tenantId);
    const now = this.clock();
    let key = newestFirstKey(now);
    if (idempotencyKey) {
      const id = accessRequestId(input.tenantId, key);
      const scope = `operatorAccess.request\n${requester.objectId}`;
      const claim = await this.idempotency.claim(tenant, scope, idempotencyKey, input, id);
      if (claim.replay) {
        const earlier = await this.store.get(tenant, claim.resourceId);
        if (earlier) return accessRequestView(earlier.request, now);
        // The first attempt claimed the key but stopped before storing its request: this one stores it.
        key = keyOfId(claim.resourceId).rowKey;
      }
    }
    const policy = await this.store.policy(tenant);
    const request = newAccessRequest(input, requester, policy.requireTenantApproval, now, key);
    // The log first: an attempt is on record even if storing the request then fails.
    await this.record(tenant, request, 'requested', operatorActor(requester), correlationId, {
      durationMinutes: request.durationMinutes,
      requireTenantApproval: request.requireTenantApproval,
      ...(await this.scopeDetails(tenant, request)),
    });
    await this.store.create(tenant, request);
    return accessRequestView(request, now);
  }

  /** The request behind an id, for an operator route (the id names its tenant). */
  async get(id: string): Promise<AccessRequestView> {
    const { stored } = await this.load(id);
    return accessRequestView(stored.request, this.clock());
  }

  async getForTenant(tenant: TenantScope, id: string): Promise<AccessRequestView> {
    const stored = await this.store.get(tenant, id);
    if (!stored) throw new DomainError('NotFound', `Access request ${id} was not found.`);
    return accessRequestView(stored.request, this.clock());
  }

  async list(tenant: TenantScope, page: PageRequest): Promise<Page<AccessRequestView>> {
    const found = await this.store.list(tenant, page);
    const now = this.clock();
    return { ...found, items: found.items.map((request) => accessRequestView(request, now)) };
  }

  async approve(
    id: string,
    decider: Decider,
    correlationId: string,
    tenant?: TenantScope,
  ): Promise<AccessRequestView> {
    return this.decide(
      id,
      decider,
      correlationId,
      'approved',
      (request, now) => approve(request, decider.party, decider.person, now),
      tenant,
    );
  }

  async deny(id: string, decider: Decider, reason: string, correlationId: string, tenant?: TenantScope) {
    return this.decide(
      id,
      decider,
      correlationId,
      'denied',
      (request, now) => deny(request, decider.party, decider.person, reason, now),
      tenant,
      { reason },
    );
  }

  async revoke(id: string, decider: Decider, correlationId: string, tenant?: TenantScope) {
    return this.decide(
      id,
      decider,
      correlationId,
      'revoked',
      (request, now) => revoke(request, decider.party, decider.person, now),
      tenant,
    );
  }

  async policy(tenant: TenantScope): Promise<OperatorAccessPolicy> {
    return this.store.policy(tenant);
  }

  async setPolicy(tenant: TenantScope, policy: OperatorAccessPolicy, actor: Actor, correlationId: string) {
    await this.audit.append(tenant, {
      action: 'operatorAccess.policyChanged',
      actor,
      target: { type: 'tenant', id: tenant.tenantId },
      outcome: 'success',
      correlationId,
      details: { ...policy },
    });
    await this.store.setPolicy(tenant, policy);
    return policy;
  }

  /**
   * An operator's read of the tenant's records: only under an active grant of theirs for this tenant, within
   * its scope; restricted subjects are never returned. Every read is audited with the grant it used.
   */
  async readRecords(
    tenant: TenantScope,
    operator: Person,
    ask: { category?: RecordCategory | undefined; subject?: DataSubject | undefined },
    page: PageRequest,
    correlationId: string,
  ): Promise<Page<BrowsedRecord> & { grant: string }> {
    const now = this.clock();
    const active: AccessRequest[] = [];
    for await (const request of this.store.byRequester(tenant, operator.objectId)) {
      if (statusAt(request, now) === 'active') active.push(request);
    }
    if (active.length === 0) {
      throw new DomainError('Forbidden', `You hold no active access grant for tenant ${tenant.tenantId}.`);
    }
    const askedKey = ask.subject ? (await this.records.subjectOf(tenant, ask.subject)).subjectKey : undefined;
    // Of several active grants, the newest whose scope covers the ask is the one used (and audited).
    let grant: AccessRequest | undefined;
    let categories: readonly RecordCategory[] = [];
    let refusal: unknown;
    for (const candidate of active) {
      const scopeKey = candidate.scope?.subject
        ? (await this.records.subjectOf(tenant, candidate.scope.subject)).subjectKey
        : undefined;
      try {
        categories = readableCategories(
          candidate,
          { category: ask.category, subjectKey: askedKey },
          scopeKey,
        );
        grant = candidate;
        break;
      } catch (error) {
        refusal ??= error;
      }
    }
    if (!grant) throw refusal;
    const exclude = await this.restrictions.restrictedSubjects(tenant);
    const found = await this.browser.page(tenant, { categories, subjectKey: askedKey, exclude }, page);
    await this.record(tenant, grant, 'read', operatorActor(operator), correlationId, {
      categories,
      ...(askedKey ? { subjectRef: askedKey } : {}),
      returned: found.items.length,
      subjectsReturned: new Set(found.items.map((record) => record.subjectRef)).size,
    });
    return { ...found, grant: grant.id };
  }

  /**
   * The expiry timer: requests that ended by themselves since (undecided after 12 hours, grants at their
   * end) are recorded as expired in their tenant's log, once. Checks never wait for this: statusAt compares
   * times on every call.
   */
  async expireDue(correlationId: string): Promise<{ expired: number; failures: string[] }> {
    const now = this.clock();
    let expired = 0;
    const failures: string[] = [];
    for await (const open of this.store.openEndingBefore(now)) {
      try {
        const tenant = await this.directory.resolve(open.tenantId).catch((error: unknown) => {
          if (error instanceof DomainError && error.code === 'TenantNotFound') return undefined;
          throw error;
        });
        const stored = tenant && (await this.store.get(tenant, open.id));
        if (!tenant || !stored) {
          await this.store.forgetOpen(open.id);
          continue;
        }
        const { request } = stored;
        if (statusAt(request, now) !== 'expired' || request.expiryRecordedAt) {
          await this.store.markOpen(request);
          continue;
        }
        await this.record(
          tenant,
          request,
          'expired',
          { type: 'system', id: 'operator-access-expiry' },
          correlationId,
          {
            ...(request.grant
              ? { grantEndedAt: request.grant.endsAt }
              : { undecidedSince: request.createdAt }),
          },
        );
        await this.store.save(tenant, { ...request, expiryRecordedAt: now.toISOString() }, stored.etag);
        expired++;
      } catch (error) {
        failures.push(`${open.id}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return { expired, failures };
  }

  private async decide(
    id: string,
    decider: Decider,
    correlationId: string,
    action: 'approved' | 'denied' | 'revoked',
    change: (request: AccessRequest, now: Date) => AccessRequest,
    onlyTenant?: TenantScope,
    extra: Record<string, unknown> = {},
  ): Promise<AccessRequestView> {
    const { tenant, stored } = await this.load(id, onlyTenant);
    const now = this.clock();
    const next = change(stored.request, now);
    await this.record(tenant, next, action, decider.actor, correlationId, {
      party: decider.party,
      ...(next.grant && !stored.request.grant
        ? { grantStartsAt: next.grant.startsAt, grantEndsAt: next.grant.endsAt }
        : {}),
      ...extra,
    });
    await this.store.save(tenant, next, stored.etag);
    return accessRequestView(next, now);
  }

  private async load(id: string, onlyTenant?: TenantScope) {
    const { tenantId } = keyOfId(id);
    if (onlyTenant && tenantId !== onlyTenant.tenantId) {
      throw new DomainError('NotFound', `Access request ${id} was not found.`);
    }
    const tenant =
      onlyTenant ??
      (await this.directory.resolve(tenantId).catch((error: unknown) => {
        if (error instanceof DomainError && error.code === 'TenantNotFound') {
          throw new DomainError('NotFound', `Access request ${id} was not found.`);
        }
        throw error;
      }));
    const stored = await this.store.get(tenant, id);
    if (!stored) throw new DomainError('NotFound', `Access request ${id} was not found.`);
    return { tenant, stored };
  }

  /** The scope in the log: categories as they are, the subject only as its pseudonymous reference. */
  private async scopeDetails(tenant: TenantScope, request: AccessRequest): Promise<Record<string, unknown>> {
    if (!request.scope) return { scope: 'all records' };
    return {
      scope: {
        ...(request.scope.categories ? { categories: request.scope.categories } : {}),
        ...(request.scope.subject
          ? { subjectRef: (await this.records.subjectOf(tenant, request.scope.subject)).subjectKey }
          : {}),
      },
    };
  }

  private async record(
    tenant: TenantScope,
    request: AccessRequest,
    action: string,
    actor: Actor,
    correlationId: string,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.audit.append(tenant, {
      // Deterministic for the one-off events: a redelivered expiry or a retried decision writes none twice.
      ...(action === 'expired' || action === 'requested'
        ? { id: `operatorAccess.${action}-${request.id}` }
        : {}),
      action: `operatorAccess.${action}`,
      actor,
      target: { type: 'operatorAccessRequest', id: request.id },
      outcome: 'success',
      correlationId,
      details: {
        accessRequestId: request.id,
        requester: request.requester,
        justification: request.justification,
        ticket: request.ticket,
        ...details,
      },
    });
  }
}
