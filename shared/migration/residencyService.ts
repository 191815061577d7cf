// What the residency routes do (SPEC §8): where a tenant is and where it would go now, the plan of a move,
// and starting one. The move itself is the ResidencyMover's, on `residency-work`.
import type { AuditLog } from '../audit/auditEvent';
import type { Actor } from '../audit/auditEvent';
import type { Clock } from '../clock';
import { DomainError } from '../errors';
import type { IdempotencyStore } from '../requests/idempotencyStore';
import type { StorageAccounts } from '../storage/storageAccounts';
import { QUEUES } from '../storage/names';
import { tenantBlobPages, tenantRowPages } from '../storage/tenantRows';
import type { WorkQueue } from '../storage/workQueue';
import type { Geography } from '../vocabulary/geographies';
import { bestGeography } from '../residency/geography';
import { estimateSeconds, type MigrationJob, type MigrationPlan, newMigrationId } from './migrationJob';
import type { MigrationStore } from './migrationStore';
import { MOVED_CONTAINERS, MOVED_TABLES } from './residencyMover';
import type { TenantDirectory, TenantScope } from '../residency/tenantDirectory';

export interface ResidencyView {
  tenantId: string;
  countryCode: string;
  geography: Geography;
  /** Where the tenant's country is best served now; null while none of its geographies is open. */
  bestGeography: Geography | null;
  /** Whether POST .../residency/migration would start a move now. */
  eligible: boolean;
  migration: MigrationJob | null;
}

const IDEMPOTENCY_SCOPE = 'residency.migration';
/** What a start's claim fingerprints (a dry run claims nothing). */
const MOVE_BODY = { dryRun: false };

export class ResidencyService {
  constructor(
    private readonly storage: StorageAccounts,
    private readonly directory: TenantDirectory,
    private readonly jobs: MigrationStore,
    private readonly audit: AuditLog,
    private readonly workQueue: WorkQueue,
    private readonly idempotency: IdempotencyStore,
    private readonly clock: Clock,
    /** The wait between the flag and the copy (twice the write fence's bound), for the estimate. */
    private readonly fenceWaitSeconds: number,
  ) {}

  async view(tenant: TenantScope): Promise<ResidencyView> {
    const best = bestGeography(tenant.entry.countryCode, this.storage.openGeographies()) ?? null;
    return {
      tenantId: tenant.tenantId,
      countryCode: tenant.entry.countryCode,
      geography: tenant.geography,
      bestGeography: best,
      eligible: best !== null && best !== tenant.geography && !tenant.entry.migration,
      migration: (await this.jobs.latest(tenant.tenantId)) ?? null,
    };
  }

  async latest(tenant: TenantScope): Promise<MigrationJob> {
    const job = await this.jobs.latest(tenant.tenantId);
    if (!job) throw new DomainError('NotFound', `Tenant ${tenant.tenantId} has never been moved.`);
    return job;
  }

  /** Where the tenant would move; 409 NotEligible when it is already where it belongs. */
  private targetOf(tenant: TenantScope): Geography {
    const best = bestGeography(tenant.entry.countryCode, this.storage.openGeographies());
    if (!best || best === tenant.geography) {
      throw new DomainError(
        'NotEligible',
        `Tenant ${tenant.tenantId} (${tenant.entry.countryCode}) is already in its best geography, ${tenant.geography}.`,
      );
    }
    if (tenant.entry.status !== 'active') {
      throw new DomainError(
        'NotEligible',
        `Only an active tenant moves; this one is ${tenant.entry.status}.`,
      );
    }
    return best;
  }

  /** The dry run: what would move (rows and bytes per table, blobs per container) and how long it would take. */
  async plan(tenant: TenantScope): Promise<MigrationPlan> {
    const to = this.targetOf(tenant);
    const plan: MigrationPlan = {
      from: tenant.geography,
      to,
      tables: {},
      containers: {},
      estimatedSeconds: 0,
    };
    let rows = 0;
    let blobBytes = 0;
    for (const name of MOVED_TABLES) {
      const counts = { rows: 0, bytes: 0 };
      for await (const page of tenantRowPages(await tenant.account.table(name), tenant.tenantId)) {
        counts.rows += page.rows.length;
        for (const row of page.rows) counts.bytes += Buffer.byteLength(JSON.stringify(row));
      }
      plan.tables[name] = counts;
      rows += counts.rows;
    }
    for (const name of MOVED_CONTAINERS) {
      const counts = { blobs: 0, bytes: 0 };
      for await (const page of tenantBlobPages(await tenant.account.container(name), tenant.tenantId)) {
        counts.blobs += page.blobs.length;
        for (const blob of page.blobs) counts.bytes += blob.bytes;
      }
      plan.containers[name] = counts;
      blobBytes += counts.bytes;
    }
    plan.estimatedSeconds = estimateSeconds(rows, blobBytes, this.fenceWaitSeconds);
    return plan;
  }

  /**
   * Starts the move: the job, then the flag (from which writes wait), then the first message. Of two
   * concurrent starts one sets the flag; the other's job ends failed at once and its caller gets 409.
   */
  async start(
    tenant: TenantScope,
    actor: Actor,
    correlationId: string,
    /** Tests run the mover themselves: no message for another instance to pick up. */
    options: { enqueue?: boolean; idempotencyKey?: string } = {},
  ): Promise<MigrationJob> {
    const now = this.clock();
    let migrationId = newMigrationId(now);
    const key = options.idempotencyKey;
    if (key) {
      // A retry of a start that succeeded answers its move, even once the move made the tenant ineligible.
      const known = await this.idempotency.find(tenant, IDEMPOTENCY_SCOPE, key, MOVE_BODY);
      const earlier = known && (await this.jobs.get(tenant.tenantId, known));
      if (earlier) return earlier.job;
    }
    // Refused before anything is written: a refusal leaves no claim behind.
    const to = this.targetOf(tenant);
    if (key) {
      const claim = await this.idempotency.claim(tenant, IDEMPOTENCY_SCOPE, key, MOVE_BODY, migrationId);
      if (claim.replay) {
        const earlier = await this.jobs.get(tenant.tenantId, claim.resourceId);
        if (earlier) return earlier.job;
        migrationId = claim.resourceId; // claimed by an attempt that stopped before storing its move
      }
    }
    const job: MigrationJob = {
      tenantId: tenant.tenantId,
      migrationId,
      from: tenant.geography,
      to,
      status: 'validating',
      requestedBy: actor.id,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      fencedAt: now.toISOString(),
      copyAfter: new Date(now.getTime() + this.fenceWaitSeconds * 1000).toISOString(),
      progress: { copied: {}, deleted: {}, verified: {} },
      cursor: { item: 0 },
    };
    // Audited first, in the source chain, while writes are still allowed.
    await this.audit.append(tenant, {
      id: `residency.migrationRequested-${job.migrationId}`,
      action: 'residency.migrationRequested',
      actor,
      target: { type: 'tenant', id: tenant.tenantId },
      outcome: 'success',
      correlationId,
      details: { migrationId: job.migrationId, from: job.from, to: job.to },
    });
    const stored = await this.jobs.create(job);
    try {
      await this.directory.beginMigration(tenant.tenantId, {
        migrationId: job.migrationId,
        targetGeography: to,
        startedAt: job.fencedAt,
      });
    } catch (error) {
      if (error instanceof DomainError && (error.code === 'Conflict' || error.code === 'InvalidState')) {
        const failure = { code: error.code, reason: error.message };
        await this.jobs.save({ ...job, status: 'failed', failure, rolledBack: true }, stored.etag);
      }
      throw error;
    }
    if (options.enqueue !== false) {
      await this.workQueue.send(QUEUES.residencyWork, {
        tenantId: job.tenantId,
        migrationId: job.migrationId,
      });
    }
    return job;
  }

  /**
   * The stalled-job sweep: a move whose last save is older than `idleMs` (its message was lost, or it failed
   * for good on a step after the switch) gets a new message. A slow worker still holding it loses nothing:
   * saves are ETag-guarded, so one of the two stops.
   */
  async resumeStalled(idleMs: number): Promise<number> {
    const before = this.clock().getTime() - idleMs;
    let resumed = 0;
    for await (const job of this.jobs.unfinished()) {
      if (job.status === 'failed' && job.rolledBack) continue;
      if (Date.parse(job.updatedAt) > before) continue;
      await this.workQueue.send(QUEUES.residencyWork, {
        tenantId: job.tenantId,
        migrationId: job.migrationId,
      });
      resumed++;
    }
    return resumed;
  }
}
