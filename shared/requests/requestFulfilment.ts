// The dsr-work steps: discovery (received → discovering → awaitingReview) and fulfilment after approval
// (inProgress → completed). Each step checks the request's state first, so a redelivered or duplicated
// message does nothing twice, and every write is idempotent, so a step that stopped part-way runs again.
import { randomUUID } from 'node:crypto';

import { z } from 'zod';

import type { Actor, AuditEvent, AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { DomainError } from '../errors';
import { writeExportPackage } from '../exports/exportPackage';
import { DEVICE_REPORTED_CATEGORIES } from '../records/personalDataRecord';
import type { RecordStore } from '../records/recordStore';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import { type ExpiryIndex, packageExpiry } from '../retention/expiryIndex';
import { CONTAINERS } from '../storage/names';
import { type DataSubjectRequest, RECORD_CATEGORIES, type RecordCategory } from './dataSubjectRequest';
import type { DataSubjectRequestService } from './requestService';
import type { RestrictionStore } from './restrictions';

export const dsrWorkMessageSchema = z.object({
  tenantId: z.uuid(),
  requestId: z.string().min(1).max(64),
  step: z.enum(['discover', 'fulfil']),
});
export type DsrWorkMessage = z.infer<typeof dsrWorkMessageSchema>;

const WORKER: Actor = { type: 'system', id: 'dsr-work' };

/** Export packages: `${tenantId}/${subjectKey}/${requestId}.${attempt}.zip`, so a subject's are found by prefix. */
export const packagePrefix = (tenantId: string, subjectKey: string) => `${tenantId}/${subjectKey}/`;

export type RectificationOutcome = 'applied' | 'DeviceReported' | 'SystemGeneratedLog' | 'NotFound';

export class RequestFulfilment {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly requests: DataSubjectRequestService,
    private readonly records: RecordStore,
    private readonly audit: AuditLog,
    private readonly restrictions: RestrictionStore,
    private readonly expiry: ExpiryIndex,
    private readonly clock: Clock,
  ) {}

  async run(message: DsrWorkMessage): Promise<void> {
    const tenant = await this.directory.resolve(message.tenantId);
    const request = await this.requests.load(tenant, message.requestId);
    if (message.step === 'discover') await this.discover(tenant, request);
    else await this.fulfil(tenant, request);
  }

  /** Marks the request failed at a step, with the reason (the last delivery of a failing message). */
  async fail(message: DsrWorkMessage, reason: string): Promise<void> {
    const tenant = await this.directory.resolve(message.tenantId);
    try {
      await this.requests.change(tenant, message.requestId, 'fail', {
        actor: WORKER,
        correlationId: message.requestId,
        reason,
        step: message.step,
      });
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'InvalidState')) throw error;
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
    const subjectKeys = await this.records.findSubjects(tenant, request.subject);
    const counts: Record<string, number> = { ...(await this.records.countByCategory(tenant, subjectKeys)) };
    counts.auditEvents = await this.countAuditEvents(tenant, request);
    const completedAt = this.clock().toISOString();
    await this.settleRace(() =>
      this.change(tenant, request, 'completeDiscovery', (r) => ({
        ...r,
        discovery: { counts, completedAt },
      })),
    );
  }

  private async fulfil(tenant: TenantScope, request: DataSubjectRequest): Promise<void> {
    if (request.status !== 'inProgress') return;
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

  private async exportPackage(tenant: TenantScope, request: DataSubjectRequest): Promise<void> {
    const subjectKeys = await this.records.findSubjects(tenant, request.subject);
    const [identifierKey] = await this.records.identifierKeys(tenant, request.subject);
    const owner = subjectKeys[0] ?? identifierKey!;
    const container = await tenant.account.container(CONTAINERS.exportPackages);
    // Each attempt writes its own blob; the one that completes the request is the package, the others are
    // removed. Two concurrent deliveries therefore never leave two packages or a half-overwritten one.
    const blobName = `${packagePrefix(tenant.tenantId, owner)}${request.id}.${randomUUID()}.zip`;
    const records = this.records;
    const written = await writeExportPackage({
      container,
      blobName,
      kind: request.type === 'access' ? 'access' : 'export',
      request: {
        id: request.id,
        tenantId: request.tenantId,
        type: request.type,
        regulation: request.regulation,
        receivedAt: request.receivedAt,
        subject: request.subject,
      },
      generatedAt: this.clock(),
      subject: request.subject,
      categories: (async function* () {
        // The next category's first page is fetched while this one is packaged.
        const start = (category: RecordCategory) => ({
          category,
          records: readAhead(merged(subjectKeys.map((key) => records.listPages(tenant, key, category)))),
        });
        let upcoming = start(RECORD_CATEGORIES[0]);
        for (let i = 0; i < RECORD_CATEGORIES.length; i++) {
          const current = upcoming;
          const next = RECORD_CATEGORIES[i + 1];
          if (next) upcoming = start(next);
          yield current;
        }
      })(),
      auditEvents: this.auditEventsOf(tenant, request),
      metadata: { requestId: request.id, tenantId: request.tenantId },
    });
    const completedAt = this.clock().toISOString();
    const won = await this.settleRace(() =>
      this.change(tenant, request, 'complete', (r) => ({
        ...r,
        result: {
          package: { blobName, sha256: written.sha256, sizeBytes: written.sizeBytes },
          counts: written.counts,
          completedAt,
        },
      })),
    );
    if (!won) {
      await container.deleteBlob(blobName, { deleteSnapshots: 'include' }).catch(ignoreMissing);
      return;
    }
    // Packages are deleted 30 days after completion (SPEC §6).
    await this.expiry.add(tenant, [packageExpiry(request.id, blobName, new Date(completedAt))]);
    // Attempts that crashed, or lost to this one, leave blobs of their own: only the package stays.
    for await (const blob of container.listBlobsFlat({
      prefix: `${packagePrefix(tenant.tenantId, owner)}${request.id}.`,
    })) {
      if (blob.name !== blobName)
        await container.deleteBlob(blob.name, { deleteSnapshots: 'include' }).catch(ignoreMissing);
    }
  }

  private async erase(tenant: TenantScope, request: DataSubjectRequest): Promise<void> {
    // Fix who and how much before anything is erased: erasure removes the lookups that find the subject.
    let progress = request.progress;
    if (!progress?.subjectKeys || !progress.identifierKeys || !progress.counts) {
      const subjectKeys = await this.records.findSubjects(tenant, request.subject);
      const identifierKeys = await this.records.identifierKeys(tenant, request.subject);
      const counts = { ...(await this.records.countByCategory(tenant, subjectKeys)) } as Record<
        string,
        number
      >;
      progress = (
        await this.requests.saveProgress(tenant, request.id, { subjectKeys, identifierKeys, counts })
      ).progress!;
    }
    const container = await tenant.account.container(CONTAINERS.exportPackages);
    let packagesDeleted = 0;
    for (const subjectKey of new Set([...progress.subjectKeys!, ...progress.identifierKeys!])) {
      await this.records.eraseSubject(tenant, subjectKey, progress.identifierKeys!);
      await this.restrictions.lift(tenant, subjectKey);
      for await (const blob of container.listBlobsFlat({
        prefix: packagePrefix(tenant.tenantId, subjectKey),
      })) {
        await container.deleteBlob(blob.name, { deleteSnapshots: 'include' }).catch(ignoreMissing);
        packagesDeleted++;
      }
    }
    const counts = progress.counts!;
    const completedAt = this.clock().toISOString();
    await this.settleRace(() =>
      this.change(tenant, request, 'complete', (r) => ({
        ...r,
        result: { erased: counts, packagesDeleted, auditEventsKept: true, completedAt },
      })),
    );
  }

  private async rectify(tenant: TenantScope, request: DataSubjectRequest): Promise<void> {
    const subjectKeys = await this.records.findSubjects(tenant, request.subject);
    const items: Array<Record<string, unknown> & { outcome: RectificationOutcome }> = [];
    for (const item of request.rectifications ?? []) {
      let outcome: RectificationOutcome;
      if (item.category === 'systemLog') outcome = 'SystemGeneratedLog';
      else if (DEVICE_REPORTED_CATEGORIES.includes(item.category)) outcome = 'DeviceReported';
      else {
        let changed = 0;
        for (const subjectKey of subjectKeys) {
          changed += await this.records.rewrite(
            tenant,
            subjectKey,
            item.category,
            (record) => item.recordId === undefined || record.recordId === item.recordId,
            (data) => ({ ...data, [item.field]: item.value }),
          );
        }
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

  private async restrict(tenant: TenantScope, request: DataSubjectRequest): Promise<void> {
    const subjectKeys = await this.records.findSubjects(tenant, request.subject);
    const keys =
      subjectKeys.length > 0
        ? subjectKeys
        : (await this.records.identifierKeys(tenant, request.subject)).slice(0, 1);
    for (const subjectKey of keys) {
      if (request.type === 'restrict') {
        await this.restrictions.restrict(tenant, {
          subjectKey,
          subject: request.subject,
          requestId: request.id,
          restrictedAt: this.clock().toISOString(),
        });
      } else {
        await this.restrictions.lift(tenant, subjectKey);
      }
    }
    const completedAt = this.clock().toISOString();
    await this.settleRace(() =>
      this.change(tenant, request, 'complete', (r) => ({
        ...r,
        result: { restricted: request.type === 'restrict', subjects: keys.length, completedAt },
      })),
    );
  }

  private identifiersOf(request: DataSubjectRequest): string[] {
    return [request.subject.upn, request.subject.objectId, request.subject.email].filter(
      (v): v is string => !!v,
    );
  }

  private async countAuditEvents(tenant: TenantScope, request: DataSubjectRequest): Promise<number> {
    let count = 0;
    for await (const _event of this.auditEventsOf(tenant, request)) count++;
    return count;
  }

  private async *auditEventsOf(tenant: TenantScope, request: DataSubjectRequest): AsyncGenerator<AuditEvent> {
    let continuation: string | undefined;
    do {
      const page = await this.audit.list(
        tenant,
        { involving: this.identifiersOf(request) },
        { top: 200, ...(continuation ? { continuation } : {}) },
      );
      yield* page.items;
      continuation = page.continuation;
    } while (continuation);
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

async function* merged<T>(sources: AsyncIterable<T>[]): AsyncGenerator<T> {
  for (const source of sources) yield* source;
}

const ignoreMissing = (error: unknown) => {
  if ((error as { statusCode?: number }).statusCode !== 404) throw error;
};
