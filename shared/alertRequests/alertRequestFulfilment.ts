// The alert-data-work step of an alert data request (received → inProgress → completed): extraction into a
// package, or anonymisation of the devices' alerts as the 180-day rule does it. The state is checked first
// and every transition is ETag-guarded, so a redelivered or duplicated message does nothing twice; each
// package attempt is its own, and only the one that completes the request stays.
import { z } from 'zod';

import type { Actor, AuditLog } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { DomainError } from '../errors';
import type { PackageStore } from '../exports/packageStore';
import type { OwnIdentifiers } from '../exports/redaction';
import { everyItem } from '../paging';
import type { DeviceRecords } from '../records/deviceRecords';
import type { PersonalDataRecord } from '../records/personalDataRecord';
import type { RecordRetention, RecordTarget } from '../records/recordRetention';
import type { RestrictionStore } from '../records/restrictions';
import type { CurrentSubject } from '../requests/packageLinks';
import { stepFailure } from '../requests/stepFailure';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';
import {
  type AlertDataRequest,
  alertPackageOwner,
  countsOf,
  type DeviceTally,
  type StoredAlertPackage,
} from './alertDataRequest';
import type { AlertRequestService } from './alertRequestService';

export const alertWorkMessageSchema = z.object({
  tenantId: z.uuid(),
  requestId: z.string().min(1).max(64),
});
export type AlertWorkMessage = z.infer<typeof alertWorkMessageSchema>;

const WORKER: Actor = { type: 'system', id: 'alert-data-work' };
/** The package's type in its manifest. */
export const ALERT_PACKAGE_TYPE = 'alertExtract';
/** Records handed to the package at a time. */
const PAGE_SIZE = 100;

/**
 * Nobody's identifiers are redacted: alerts are security data, asked for by the tenant's own security
 * admin about the tenant's own devices, and the accounts, hosts and addresses in them are what they need.
 */
const NO_REDACTION: OwnIdentifiers = { has: () => true };

export class AlertRequestFulfilment {
  constructor(
    private readonly directory: TenantDirectory,
    private readonly requests: AlertRequestService,
    private readonly devices: DeviceRecords,
    private readonly retention: RecordRetention,
    private readonly restrictions: RestrictionStore,
    private readonly currentSubject: CurrentSubject,
    private readonly packages: PackageStore,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  async run(message: AlertWorkMessage): Promise<void> {
    const tenant = await this.directory.resolve(message.tenantId);
    let request = await this.requests.load(tenant, message.requestId);
    if (request.status === 'received') {
      // A concurrent delivery may have started it first: either way, continue from what is stored.
      await this.settleRace(() => this.change(tenant, request, 'start'));
      request = await this.requests.load(tenant, request.id);
    }
    if (request.status === 'completed' && request.package) {
      // Done, maybe by a delivery that stopped before it tidied up: the tidying is idempotent.
      return this.keepOnly(tenant, request, request.package);
    }
    if (request.status !== 'inProgress') return;
    if (request.action === 'extract') await this.extract(tenant, request);
    else await this.anonymise(tenant, request);
  }

  /** Ends the request failed (the last delivery of a failing message), with a code and words for people. */
  async fail(message: AlertWorkMessage, error: unknown): Promise<void> {
    const tenant = await this.directory.resolve(message.tenantId);
    const failure = stepFailure(error);
    try {
      await this.requests.change(
        tenant,
        message.requestId,
        'fail',
        { actor: WORKER, correlationId: message.requestId },
        { failure },
      );
    } catch (failed) {
      if (!(failed instanceof DomainError && failed.code === 'InvalidState')) throw failed;
    }
  }

  private async extract(tenant: TenantScope, request: AlertDataRequest): Promise<void> {
    const owner = alertPackageOwner(request.id);
    const tallies: DeviceTally[] = [];
    const alerts = this.alertsOf(tenant, request, tallies);
    const generatedAt = this.clock();
    // Each attempt writes its own package (index row and blob); the one that completes the request is the
    // package, the others are removed. Concurrent deliveries never leave two packages or a half-written one.
    const written = await this.packages.write(tenant, owner, request.id, {
      kind: 'export',
      request: {
        id: request.id,
        tenantId: request.tenantId,
        type: ALERT_PACKAGE_TYPE,
        receivedAt: request.receivedAt,
        deviceNames: request.deviceNames,
      },
      generatedAt,
      own: NO_REDACTION,
      categories: (async function* () {
        yield { category: 'alert', records: alerts };
      })(),
      // The request's own trail (taken in, started): who asked for this package, and why.
      auditEvents: everyItem((page) => this.audit.list(tenant, { involving: [request.id] }, page)),
    });
    const stored: StoredAlertPackage = {
      blobName: written.blobName,
      packageRow: written.packageRow,
      subjectKey: owner,
      sha256: written.sha256,
      sizeBytes: written.sizeBytes,
      generatedAt: generatedAt.toISOString(),
    };
    const completed = await this.settleRace(() =>
      this.change(tenant, request, 'complete', countsOf(tallies), (r) => ({ ...r, package: stored })),
    );
    if (!completed) {
      await this.packages.remove(tenant, owner, written.packageRow);
      return;
    }
    await this.keepOnly(tenant, completed, stored);
  }

  /**
   * The package of a completed extraction is due 30 days after completion (SPEC §6), and it is the only
   * one: attempts that crashed, or lost to it, are removed.
   */
  private async keepOnly(tenant: TenantScope, request: AlertDataRequest, kept: StoredAlertPackage) {
    const completedAt = new Date(request.completedAt ?? request.receivedAt);
    await this.packages.completed(tenant, kept.subjectKey, kept.packageRow, completedAt);
    await this.packages.removeOtherAttempts(
      tenant,
      kept.subjectKey,
      request.id,
      { ...kept, counts: {}, files: [] },
      new Date(kept.generatedAt),
    );
  }

  /**
   * Removes the personal fields of the devices' alerts exactly as the 180-day rule does (the same
   * allow-list, the same anonymous rows). How much is fixed before anything changes, since anonymisation
   * removes what would count it; a re-run finds only what is left and anonymises that.
   */
  private async anonymise(tenant: TenantScope, request: AlertDataRequest): Promise<void> {
    const tallies: DeviceTally[] = [];
    const targets: RecordTarget[] = [];
    const isRestricted = await this.restrictedSubjects(tenant);
    for (const deviceName of request.deviceNames) {
      const tally: DeviceTally = { alerts: 0, restricted: 0 };
      tallies.push(tally);
      for await (const found of this.devices.rowsOf(tenant, deviceName, 'alert')) {
        // Restricted processing: the data is only stored, so the alert stays as it is.
        if (await isRestricted(found.subjectKey)) {
          tally.restricted++;
          continue;
        }
        tally.alerts++;
        const { subjectKey, recordRow, deviceKey, etag } = found;
        targets.push({ subjectKey, recordRow, deviceKey, etag });
      }
    }
    const counts = await this.requests.fixCounts(tenant, request.id, countsOf(tallies));
    // ETag-guarded: an alert written again since it was found here stays as it is now.
    await this.retention.anonymiseAlerts(tenant, targets);
    await this.settleRace(() => this.change(tenant, request, 'complete', counts));
  }

  /**
   * The devices' alerts a page at a time, restricted subjects' left out (counted); `tallies` gets one entry
   * per device as it is read. Soft-deleted alerts are still held, so they are included (marked deleted).
   */
  private alertsOf(
    tenant: TenantScope,
    request: AlertDataRequest,
    tallies: DeviceTally[],
  ): AsyncIterable<PersonalDataRecord[]> {
    const devices = this.devices;
    const restrictedSubjects = () => this.restrictedSubjects(tenant);
    return (async function* () {
      const isRestricted = await restrictedSubjects();
      for (const deviceName of request.deviceNames) {
        const tally: DeviceTally = { alerts: 0, restricted: 0 };
        tallies.push(tally);
        let page: PersonalDataRecord[] = [];
        for await (const found of devices.rowsOf(tenant, deviceName, 'alert')) {
          if (await isRestricted(found.subjectKey)) {
            tally.restricted++;
            continue;
          }
          const record = await devices.open(tenant, found);
          if (!record) continue; // its subject was erased meanwhile: nothing of it opens any more
          tally.alerts++;
          page.push(record);
          if (page.length >= PAGE_SIZE) {
            yield page;
            page = [];
          }
        }
        if (page.length > 0) yield page;
      }
    })();
  }

  /** Whether a subject is restricted, directly or as an alias subject merged into a restricted one. */
  private async restrictedSubjects(tenant: TenantScope): Promise<(subjectKey: string) => Promise<boolean>> {
    const restricted = await this.restrictions.restrictedSubjects(tenant);
    if (restricted.size === 0) return () => Promise.resolve(false);
    const known = new Map<string, boolean>();
    return async (subjectKey) => {
      let is = known.get(subjectKey);
      if (is === undefined) {
        is = restricted.has(subjectKey) || restricted.has(await this.currentSubject(tenant, subjectKey));
        known.set(subjectKey, is);
      }
      return is;
    };
  }

  private change(
    tenant: TenantScope,
    request: AlertDataRequest,
    action: 'start' | 'complete',
    result?: ReturnType<typeof countsOf>,
    amend?: (r: AlertDataRequest) => AlertDataRequest,
  ): Promise<AlertDataRequest> {
    return this.requests.change(
      tenant,
      request.id,
      action,
      { actor: WORKER, correlationId: request.id },
      result ? { result } : {},
      amend,
    );
  }

  /** What this worker's change made; undefined when a concurrent delivery already had made it. */
  private async settleRace(change: () => Promise<AlertDataRequest>): Promise<AlertDataRequest | undefined> {
    try {
      return await change();
    } catch (error) {
      if (error instanceof DomainError && error.code === 'InvalidState') return undefined;
      throw error;
    }
  }
}
