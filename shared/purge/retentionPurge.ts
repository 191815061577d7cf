// The daily retention purge (SPEC §6): the timer fans out one message per tenant on `retention-work`; each
// message purges what the tenant's expiry index says is due by today. Every step is idempotent (rows
// already gone are skipped, entries are removed only after what they name is done), so a run killed
// part-way resumes on redelivery and two overlapping runs do no harm.
import { z } from 'zod';

import type { AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { deterministicId } from '../ids';
import { everyItem } from '../paging';
import { recordsPartition } from '../records/recordKeys';
import type { RecordRetention, RecordTarget } from '../records/recordRetention';
import type { RecordStore } from '../records/recordStore';
import type { RestrictionStore } from '../records/restrictions';
import { holdsBackRetention } from '../requests/lifecycle';
import type { RequestRepository } from '../requests/requestRepository';
import type { TenantDirectory, TenantEntry, TenantScope } from '../residency/tenantDirectory';
import { CONTAINERS, QUEUES, TABLES } from '../storage/names';
import type { WorkQueue } from '../storage/workQueue';
import { submitInBatches } from '../storage/tableBatches';
import { deleteTenantRows } from '../storage/tenantRows';
import type { ExpiryIndex, StoredExpiryEntry } from '../retention/expiryIndex';
import { dueAt, dueDay, RETENTION_POLICY } from '../retention/retentionPolicy';

export const retentionWorkMessageSchema = z.object({ tenantId: z.uuid(), day: z.iso.date() });
export type RetentionWorkMessage = z.infer<typeof retentionWorkMessageSchema>;

export interface PurgeReport {
  tenantId: string;
  day: string;
  deleted: Record<string, number>;
  anonymised: number;
  anonymisedDeleted: number;
  packagesDeleted: number;
  /** Sealed payloads of invalid events, 30 days after they were set aside. */
  poisonedEventsDeleted: number;
  auditEventsDeleted: number;
  /**
   * Subjects whose due data waits: an open delete or export request (not a failed one) is being worked on,
   * or the subject is restricted (GDPR Art. 18: kept as it is, as under a hold).
   */
  subjectsSkipped: number;
  tenantPurged: boolean;
  /** Passive deletion: the tenant key was destroyed by this run (false if an earlier run had). */
  tenantKeyDestroyed?: boolean;
}

const PURGE_ACTOR = { type: 'system' as const, id: 'retentionPurge' };
/**
 * Due entries carried out together. The index is sorted by day, so one subject's entries spread over
 * several query pages; handling several pages at once lets each partition's deletes share transactions.
 */
const ENTRIES_PER_ROUND = 10_000;

async function* chunks<T>(pages: AsyncIterable<T[]>, size: number): AsyncGenerator<T[]> {
  let buffer: T[] = [];
  for await (const page of pages) {
    buffer.push(...page);
    if (buffer.length >= size) {
      yield buffer;
      buffer = [];
    }
  }
  if (buffer.length > 0) yield buffer;
}

/** Deletes a blob of the tenant's geography; false when it was gone already. */
async function deleteBlob(tenant: TenantScope, containerName: string, blobName: string): Promise<boolean> {
  const container = await tenant.account.container(containerName);
  return container.deleteBlob(blobName, { deleteSnapshots: 'include' }).then(
    () => true,
    (error: { statusCode?: number }) => {
      if (error.statusCode === 404) return false;
      throw error;
    },
  );
}

export class RetentionPurge {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly records: RecordStore,
    private readonly retention: RecordRetention,
    private readonly restrictions: RestrictionStore,
    private readonly expiry: ExpiryIndex,
    private readonly audit: AuditLog,
    private readonly requests: RequestRepository,
    private readonly workQueue: WorkQueue,
    private readonly clock: Clock,
    /**
     * How long passive deletion waits after beginPurge before it deletes (2 x the write fence's bound,
     * SPEC §8): an instance may resolve the tenant from an entry cached up to that bound, so its writes
     * made on the entry from before `purging` land before the purge starts, not behind it.
     */
    private readonly fenceWaitMs: number,
  ) {}

  /** The timer's part: one message per tenant, so each tenant's purge is retried on its own. */
  async fanOut(): Promise<number> {
    const day = dueDay(this.clock());
    let tenants = 0;
    for await (const entry of this.directory.listTenants()) {
      await this.workQueue.send(QUEUES.retentionWork, { tenantId: entry.tenantId, day });
      tenants++;
    }
    return tenants;
  }

  async purgeTenant(message: RetentionWorkMessage): Promise<PurgeReport | undefined> {
    const entry = await this.directory.get(message.tenantId);
    if (!entry || entry.status === 'purged') return undefined;
    const today = dueDay(this.clock());
    const tenant = this.directory.scopeOf(entry);
    const report: PurgeReport = {
      tenantId: entry.tenantId,
      day: today,
      deleted: {},
      anonymised: 0,
      anonymisedDeleted: 0,
      packagesDeleted: 0,
      poisonedEventsDeleted: 0,
      auditEventsDeleted: 0,
      subjectsSkipped: 0,
      tenantPurged: false,
    };
    if (this.subscriptionPurgeDue(entry, today) && (await this.directory.beginPurge(entry.tenantId))) {
      if (this.fenceWaitMs > 0) await new Promise((resolve) => setTimeout(resolve, this.fenceWaitMs));
      await this.purgeWholeTenant(tenant, report);
      return report;
    }
    const protectedSubjects = await this.heldSubjects(tenant);
    const skipped = new Set<string>();
    for await (const page of chunks(this.expiry.due(tenant, today), ENTRIES_PER_ROUND)) {
      const done: StoredExpiryEntry[] = [];
      const deletions: RecordTarget[] = [];
      const anonymisations: RecordTarget[] = [];
      const anonymousRows: string[] = [];
      for (const entry of page) {
        if (entry.kind === 'record') {
          if (protectedSubjects.has(entry.subjectKey)) {
            skipped.add(entry.subjectKey);
            continue;
          }
          const target: RecordTarget = {
            subjectKey: entry.subjectKey,
            recordRow: entry.recordRow,
            ...(entry.deviceKey ? { deviceKey: entry.deviceKey } : {}),
            ...(entry.etag ? { etag: entry.etag } : {}),
            due: { action: entry.action, day: entry.day },
          };
          (entry.action === 'anonymise' ? anonymisations : deletions).push(target);
        } else if (entry.kind === 'anonymousRecord') {
          anonymousRows.push(entry.anonymousRow);
        } else if (entry.kind === 'poisonedEvent') {
          if (await deleteBlob(tenant, CONTAINERS.poisonedEvents, entry.blobName))
            report.poisonedEventsDeleted++;
        } else {
          await this.deletePackage(tenant, entry.blobName, report, entry);
        }
        done.push(entry);
      }
      for (const [category, count] of Object.entries(await this.retention.deleteRecords(tenant, deletions))) {
        report.deleted[category] = (report.deleted[category] ?? 0) + (count ?? 0);
      }
      report.anonymised += await this.retention.anonymiseAlerts(tenant, anonymisations);
      report.anonymisedDeleted += await this.retention.deleteAnonymous(tenant, anonymousRows);
      await this.expiry.done(tenant, done);
    }
    report.subjectsSkipped = skipped.size;
    const cutoff = new Date(this.clock());
    cutoff.setUTCFullYear(cutoff.getUTCFullYear() - RETENTION_POLICY.auditEvents.after.years);
    report.auditEventsDeleted = (await this.audit.purgeBefore(tenant, cutoff)).purged;
    await this.audit.append(tenant, {
      // One event per run; a redelivered run that found the same (usually nothing) does not write another.
      id: deterministicId(tenant.tenantId, 'retention.purged', today, JSON.stringify(report)),
      action: 'retention.purged',
      actor: PURGE_ACTOR,
      target: { type: 'tenant', id: tenant.tenantId },
      outcome: 'success',
      correlationId: `retention-${today}`,
      details: { ...report },
    });
    return report;
  }

  private subscriptionPurgeDue(entry: TenantEntry, today: string): boolean {
    if (entry.status === 'purging') return true;
    return (
      entry.status === 'subscriptionEnded' &&
      !!entry.subscriptionEndedAt &&
      dueDay(dueAt(RETENTION_POLICY.endedSubscription, new Date(entry.subscriptionEndedAt))) <= today
    );
  }

  /**
   * Subjects retention must leave alone this run: those a delete or export request is working on (a failed
   * request holds nothing back, SPEC §5) and restricted ones.
   */
  private async heldSubjects(tenant: TenantScope): Promise<Set<string>> {
    const subjects = await this.restrictions.restrictedSubjects(tenant);
    for (const type of ['delete', 'export'] as const) {
      for await (const request of everyItem((page) => this.requests.list(tenant, { type }, page))) {
        if (!holdsBackRetention(request.status)) continue;
        const pinned =
          request.subjectKey ?? (await this.records.subjectOf(tenant, request.subject)).subjectKey;
        subjects.add(await this.records.currentSubject(tenant, pinned));
      }
    }
    return subjects;
  }

  /** A package's blob, then its index row in its subject's partition (where the entry says it is). */
  private async deletePackage(
    tenant: TenantScope,
    blobName: string,
    report: PurgeReport,
    index?: { subjectKey?: string; packageRow?: string },
  ) {
    if (await deleteBlob(tenant, CONTAINERS.exportPackages, blobName)) report.packagesDeleted++;
    if (index?.subjectKey && index.packageRow) {
      const records = await tenant.account.table(TABLES.records);
      await submitInBatches(records, [
        [
          'delete',
          { partitionKey: recordsPartition(tenant.tenantId, index.subjectKey), rowKey: index.packageRow },
        ],
      ]);
    }
  }

  /**
   * Passive deletion: 30 days after the subscription ended, every row of the tenant in every table of its
   * geography (data keys and the pseudonymisation key are rows too) and every package go, then the tenant
   * key that wrapped those keys is destroyed, so no copy of them that may linger (a backup, say) opens
   * again; last, the directory entry is marked purged. Safe to run again after a crash. A key the provider
   * may not delete fails the run, loudly, with the data already gone; the next day's run tries again.
   */
  private async purgeWholeTenant(tenant: TenantScope, report: PurgeReport): Promise<void> {
    for (const name of Object.values(TABLES)) {
      const { deleted } = await deleteTenantRows(await tenant.account.table(name), tenant.tenantId);
      if (deleted > 0) report.deleted[name] = deleted;
    }
    const container = await tenant.account.container(CONTAINERS.exportPackages);
    for await (const blob of container.listBlobsFlat({ prefix: `${tenant.tenantId}/` })) {
      await this.deletePackage(tenant, blob.name, report);
    }
    const poisoned = await tenant.account.container(CONTAINERS.poisonedEvents);
    for await (const blob of poisoned.listBlobsFlat({ prefix: `${tenant.tenantId}/` })) {
      if (await deleteBlob(tenant, CONTAINERS.poisonedEvents, blob.name)) report.poisonedEventsDeleted++;
    }
    report.tenantKeyDestroyed = await tenant.keys.destroyTenantKey(tenant.tenantId);
    await this.directory.markPurged(tenant.tenantId, this.clock().toISOString(), report.deleted);
    report.tenantPurged = true;
  }
}
