// The dsr-work steps: discovery (received → discovering → awaitingReview) and fulfilment after approval
// (inProgress → completed). Each step checks the request's state first, so a redelivered or duplicated
// message does nothing twice, and every write is idempotent, so a step that stopped part-way runs again.
import { z } from 'zod';

import type { Actor, AuditEvent, AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { DomainError } from '../errors';
import { everyItem } from '../paging';
import type { PackageStore } from '../exports/packageStore';
import { type OwnIdentifiers, ownIdentifiers } from '../exports/redaction';
import { DEVICE_REPORTED_CATEGORIES } from '../records/personalDataRecord';
import type { RecordStore } from '../records/recordStore';
import type { RestrictionStore } from '../records/restrictions';
import type { SubjectErasure } from '../records/subjectErasure';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import { RECORD_CATEGORIES, type RecordCategory } from '../vocabulary/categories';
import type { DataSubjectRequest } from './dataSubjectRequest';
import type { DataSubjectRequestService } from './requestService';
import { stepFailure } from './stepFailure';

export const dsrWorkMessageSchema = z.object({
  tenantId: z.uuid(),
  requestId: z.string().min(1).max(64),
  step: z.enum(['discover', 'fulfil']),
});
export type DsrWorkMessage = z.infer<typeof dsrWorkMessageSchema>;

const WORKER: Actor = { type: 'system', id: 'dsr-work' };

export type RectificationOutcome = 'applied' | 'DeviceReported' | 'SystemGeneratedLog' | 'NotFound';

export class RequestFulfilment {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly requests: DataSubjectRequestService,
    private readonly records: RecordStore,
    private readonly erasure: SubjectErasure,
    private readonly audit: AuditLog,
    private readonly restrictions: RestrictionStore,
    private readonly packages: PackageStore,
    private readonly clock: Clock,
  ) {}

  async run(message: DsrWorkMessage): Promise<void> {
    const tenant = await this.directory.resolve(message.tenantId);
    const request = await this.requests.load(tenant, message.requestId);
    if (message.step === 'discover') await this.discover(tenant, request);
    else await this.fulfil(tenant, request);
  }

  /**
   * Marks the request failed at a step (the last delivery of a failing message), with a code and words for
   * people; the raw error is for the log only.
   */
  async fail(message: DsrWorkMessage, error: unknown): Promise<void> {
    const tenant = await this.directory.resolve(message.tenantId);
    const { code, reason } = stepFailure(error);
    try {
      await this.requests.change(tenant, message.requestId, 'fail', {
        actor: WORKER,
        correlationId: message.requestId,
        reason,
        code,
        step: message.step,
      });
    } catch (failure) {
      if (!(failure instanceof DomainError && failure.code === 'InvalidState')) throw failure;
    }
  }

  private change(
    tenant: TenantScope,
    request: DataSubjectRequest,
    action: 'startDiscovery' | 'completeDiscovery' | 'complete',
    amend?: (r: DataSubjectRequest) => DataSubjectRequest,
  ) {
    return this.requests.change(
      tenant,
      request.id,
      action,
      { actor: WORKER, correlationId: request.id },
      amend,
    );
  }

  private async discover(tenant: TenantScope, request: DataSubjectRequest): Promise<void> {
    if (request.status === 'received') {
      // A concurrent delivery may have started it first: either way, continue from what is stored.
      await this.settleRace(() => this.change(tenant, request, 'startDiscovery'));
      request = await this.requests.load(tenant, request.id);
    }
    if (request.status !== 'discovering') return;
    // Who the request acts on is settled here (SPEC §4): an alias's current holder, an object id with the
    // aliases it named that nobody else holds; the request keeps that subject from now on.
    const subject = await this.records.settleSubject(tenant, request.subject, pinnedOf(request));
    const counts: Record<string, number> = {
      ...(await this.records.countByCategory(tenant, subject.subjectKey)),
    };
    const settled = { ...request, subjectKey: subject.subjectKey, subjectHolder: subject.holder };
    counts.auditEvents = await this.countAuditEvents(tenant, settled, subject.earlierHolders);
    const completedAt = this.clock().toISOString();
    await this.settleRace(() =>
      this.change(tenant, request, 'completeDiscovery', (r) => ({
        ...r,
        subjectKey: subject.subjectKey,
        subjectHolder: subject.holder,
        discovery: {
          counts,
          completedAt,
          ...(request.subject.objectId ? {} : { earlierHolders: subject.earlierHolders }),
        },
      })),
    );
  }

  private async fulfil(tenant: TenantScope, stored: DataSubjectRequest): Promise<void> {
    if (stored.status !== 'inProgress') return;
    const request = await this.settled(tenant, stored);
    switch (request.type) {
      case 'access':
      case 'export':
        return this.exportPackage(tenant, request);
      case 'delete':
        return this.erase(tenant, request);
      case 'rectify':
        return this.rectify(tenant, request);
      case 'restrict':
      case 'unrestrict':
        return this.restrict(tenant, request);
    }
  }

  private async exportPackage(tenant: TenantScope, request: Settled): Promise<void> {
    const owner = request.subjectKey;
    const records = this.records;
    const generatedAt = this.clock();
    // Each attempt writes its own package (index row and blob); the one that completes the request is the
    // package, the others are removed. Concurrent deliveries never leave two packages or a half-written one.
    const written = await this.packages.write(tenant, owner, request.id, {
      kind: request.type === 'access' ? 'access' : 'export',
      // What each category is and the subject's rights (GDPR Art. 15), in the manifest and the report.
      disclosure: { geography: tenant.geography },
      request: {
        id: request.id,
        tenantId: request.tenantId,
        type: request.type,
        regulation: request.regulation,
        receivedAt: request.receivedAt,
        subject: request.subject,
      },
      generatedAt,
      // Only the requester's identifiers stay readable: those the request names, and those the subject was
      // seen with (never whatever a record happens to carry).
      own: await this.requesterIdentifiers(tenant, request),
      categories: (async function* () {
        // The next category's first page is fetched while this one is packaged.
        const start = (category: RecordCategory) => ({
          category,
          records: readAhead(records.listPages(tenant, owner, category)),
        });
        let upcoming = start(RECORD_CATEGORIES[0]);
        for (let i = 0; i < RECORD_CATEGORIES.length; i++) {
          const current = upcoming;
          const next = RECORD_CATEGORIES[i + 1];
          if (next) upcoming = start(next);
          yield current;
        }
      })(),
      auditEvents: this.auditEventsOf(tenant, request, request.discovery?.earlierHolders ?? 0),
    });
    const completedAt = this.clock();
    const { blobName, packageRow, sha256, sizeBytes } = written;
    const won = await this.settleRace(() =>
      this.change(tenant, request, 'complete', (r) => ({
        ...r,
        result: {
          package: { blobName, packageRow, subjectKey: owner, sha256, sizeBytes },
          counts: written.counts,
          completedAt: completedAt.toISOString(),
        },
      })),
    );
    if (!won) {
      await this.packages.remove(tenant, owner, packageRow);
      return;
    }
    // Packages are deleted 30 days after completion (SPEC §6).
    await this.packages.completed(tenant, owner, packageRow, completedAt);
    // Attempts that crashed, or lost to this one, leave packages of their own: only the package stays.
    await this.packages.removeOtherAttempts(tenant, owner, request.id, written, generatedAt);
  }

  private async erase(tenant: TenantScope, request: Settled): Promise<void> {
    // Fix how much before anything is erased: erasure removes what would count it.
    let progress = request.progress;
    if (!progress?.counts || progress.packages === undefined) {
      const counts = { ...(await this.records.countByCategory(tenant, request.subjectKey)) } as Record<
        string,
        number
      >;
      const packages = (await this.packages.list(tenant, request.subjectKey)).length;
      progress = (await this.requests.saveProgress(tenant, request.id, { counts, packages })).progress!;
    }
    await this.erasure.erase(tenant, request.subjectKey);
    const packagesDeleted = progress.packages!;
    const counts = progress.counts!;
    const completedAt = this.clock().toISOString();
    await this.settleRace(() =>
      this.change(tenant, request, 'complete', (r) => ({
        ...r,
        result: { erased: counts, packagesDeleted, auditEventsKept: true, completedAt },
      })),
    );
  }

  private async rectify(tenant: TenantScope, request: Settled): Promise<void> {
    const items: Array<Record<string, unknown> & { outcome: RectificationOutcome }> = [];
    for (const item of request.rectifications ?? []) {
      let outcome: RectificationOutcome;
      // An acceptance of the terms is evidence of what the user did, written by the service like a log.
      if (item.category === 'systemLog' || item.category === 'termsAcceptance')
        outcome = 'SystemGeneratedLog';
      else if (DEVICE_REPORTED_CATEGORIES.includes(item.category)) outcome = 'DeviceReported';
      else {
        const changed = await this.records.rewrite(
          tenant,
          request.subjectKey,
          item.category,
          (record) => item.recordId === undefined || record.recordId === item.recordId,
          (data) => ({ ...data, [item.field]: item.value }),
        );
        outcome = changed > 0 ? 'applied' : 'NotFound';
      }
      items.push({ ...item, outcome });
    }
    const completedAt = this.clock().toISOString();
    await this.settleRace(() =>
      this.change(tenant, request, 'complete', (r) => ({
        ...r,
        result: { rectifications: items, completedAt },
      })),
    );
  }

  /** Restriction is the subject's, however the request named them: `unrestrict` lifts it by any name. */
  private async restrict(tenant: TenantScope, request: Settled): Promise<void> {
    if (request.type === 'restrict') {
      await this.restrictions.restrict(tenant, {
        subjectKey: request.subjectKey,
        subject: request.subject,
        requestId: request.id,
        restrictedAt: this.clock().toISOString(),
      });
    } else {
      await this.restrictions.lift(tenant, request.subjectKey);
    }
    const completedAt = this.clock().toISOString();
    await this.settleRace(() =>
      this.change(tenant, request, 'complete', (r) => ({
        ...r,
        result: { restricted: request.type === 'restrict', subjects: 1, completedAt },
      })),
    );
  }

  /** Those the request names, and those the subject was seen with; everyone else's are redacted. */
  private async requesterIdentifiers(tenant: TenantScope, request: Settled): Promise<OwnIdentifiers> {
    const named = ownIdentifiers(request.subject);
    const seenWith = await this.records.seenWith(tenant, request.subjectKey);
    return { has: (identifier) => named.has(identifier) || seenWith(identifier) };
  }

  /**
   * The request with the subject it acts on: settled by discovery (a request from before then is settled
   * now), followed to where it is now (an alias's own subject merged into an object id since).
   */
  private async settled(tenant: TenantScope, request: DataSubjectRequest): Promise<Settled> {
    const subjectKey = request.subjectKey
      ? await this.records.currentSubject(tenant, request.subjectKey)
      : (await this.records.settleSubject(tenant, request.subject)).subjectKey;
    return { ...request, subjectKey };
  }

  private async countAuditEvents(tenant: TenantScope, request: Settled, earlierHolders: number) {
    let count = 0;
    for await (const _event of this.auditEventsOf(tenant, request, earlierHolders)) count++;
    return count;
  }

  /**
   * Audit events about the subject: their requests (by the pseudonymous subject reference those events
   * carry, their merged alias subjects' included), and events where they are actor or target by object id.
   * By UPN or e-mail only while nobody else ever held it: a recycled UPN's events may be someone else's.
   */
  private async *auditEventsOf(
    tenant: TenantScope,
    request: Settled,
    earlierHolders: number,
  ): AsyncGenerator<AuditEvent> {
    const { merged } = await this.records.knownIdentifiers(tenant, request.subjectKey);
    const { upn, objectId, email } = request.subject;
    const involving = [objectId, ...(earlierHolders === 0 ? [upn, email] : [])].filter(
      (v): v is string => !!v,
    );
    const subjectRefs = [request.subjectKey, ...merged];
    yield* everyItem((page) => this.audit.list(tenant, { involving, subjectRefs }, page));
  }

  /** True when this worker made the change; false when a concurrent delivery already had (InvalidState). */
  private async settleRace(change: () => Promise<unknown>): Promise<boolean> {
    try {
      await change();
      return true;
    } catch (error) {
      if (error instanceof DomainError && error.code === 'InvalidState') return false;
      throw error;
    }
  }
}

/** Starts a source at once, so its first item (and the storage page behind it) is ready when asked for. */
function readAhead<T>(source: AsyncGenerator<T>): AsyncIterable<T> {
  const first = source.next();
  first.catch(() => undefined); // surfaced when the consumer awaits it
  return {
    async *[Symbol.asyncIterator]() {
      for (let item = await first; !item.done; item = await source.next()) yield item.value;
    },
  };
}

/** A request whose subject is settled. */
type Settled = DataSubjectRequest & { subjectKey: string };

const pinnedOf = (request: DataSubjectRequest) =>
  request.subjectKey && request.subjectHolder
    ? { subjectKey: request.subjectKey, holder: request.subjectHolder }
    : undefined;
