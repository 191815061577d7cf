// The residency move (SPEC §8), run slice by slice from `residency-work` messages: validating → copying →
// verifying → switching → cleaning → completed, or failed after a rollback. Each slice works until its time
// budget is spent, saves where it stands (ETag-guarded: a worker whose save is refused stops, another one has
// the job) and sends the next message. Every step is idempotent, so a crash anywhere resumes from the last
// save: copies are upserts, deletes of what is gone count nothing, the switch and the flag are conditional.
//
// The mover is the one module that writes a tenant's data outside its current geography: it reaches both
// accounts through StorageAccounts.moverAccount (no residency guard) and both key providers unfenced.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

import type { TableClient, TransactionAction } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';

import type { AuditLog } from '../audit/auditEvent';
import { SUBJECT_KEY_ROW } from '../records/subjectKeys';
import type { Clock } from '../clock';
import type { GeographyKeys } from '../crypto/keyProviders';
import { DomainError } from '../errors';
import type { StorageAccount } from '../storage/storageAccount';
import type { StorageAccounts } from '../storage/storageAccounts';
import { CONTAINERS, QUEUES, TABLES } from '../storage/names';
import { submitInBatches } from '../storage/tableBatches';
import {
  canonicalRow,
  deleteTenantRows,
  hasTenantRows,
  mismatches,
  partitionRows,
  partitionSummaries,
  type StoredRow,
  tenantBlobPages,
  tenantRowPages,
  Totals,
} from '../storage/tenantRows';
import type { WorkQueue } from '../storage/workQueue';
import type { Geography } from '../vocabulary/geographies';
import {
  BEFORE_SWITCH,
  type MigrationJob,
  type MigrationManifest,
  type MigrationStatus,
  type ResidencyWorkMessage,
} from './migrationJob';
import type { MigrationStore, StoredJob } from './migrationStore';
import type { TenantDirectory, TenantEntry, TenantScope } from '../residency/tenantDirectory';

/** Everything of a tenant that moves, in the order it moves. */
export const MOVED_TABLES: readonly string[] = Object.values(TABLES);
export const MOVED_CONTAINERS: readonly string[] = Object.values(CONTAINERS);
const ITEMS = [...MOVED_TABLES, ...MOVED_CONTAINERS];
const isContainer = (item: number) => item >= MOVED_TABLES.length;

/** Rounds of copying a differing partition again before the move gives up (and rolls back). */
const RESYNC_ROUNDS = 3;
const MIGRATION_ACTOR = { type: 'system' as const, id: 'residency-migration' };

export interface MoverOptions {
  /** How long one message's slice works before it hands over to the next message. */
  sliceMs: number;
}

/** A failure that redelivery would not cure: before the switch it fails the move (with its rollback). */
export class MigrationFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'MigrationFailure';
  }
}

/** Not yet: the fence wait is still running. The slice ends and its next message is due after `seconds`. */
class NotYet {
  constructor(readonly seconds: number) {}
}

export class ResidencyMover {
  constructor(
    private readonly storage: StorageAccounts,
    private readonly directory: TenantDirectory,
    /** Unfenced: the target's tenant key is created before the switch, the source's destroyed after it. */
    private readonly keys: GeographyKeys,
    private readonly jobs: MigrationStore,
    private readonly audit: AuditLog,
    private readonly workQueue: WorkQueue,
    private readonly clock: Clock,
    private readonly options: MoverOptions,
  ) {}

  /** One slice of the job named by the message; the job as it stands after it (undefined: no such job). */
  async run(message: ResidencyWorkMessage): Promise<MigrationJob | undefined> {
    let stored = await this.jobs.get(message.tenantId, message.migrationId);
    if (!stored) return undefined;
    const sliceEnds = performance.now() + this.options.sliceMs;
    try {
      while (!finished(stored.job)) {
        try {
          stored = await this.step(stored, sliceEnds);
        } catch (error) {
          if (error instanceof NotYet) {
            await this.continueLater(stored.job, error.seconds);
            return stored.job;
          }
          if (error instanceof MigrationFailure && BEFORE_SWITCH.includes(stored.job.status)) {
            stored = await this.fail(stored, { code: error.code, reason: error.message });
            continue;
          }
          throw error;
        }
        // At least one step per message, however short the slice.
        if (!finished(stored.job) && performance.now() > sliceEnds) {
          await this.continueLater(stored.job, 0);
          return stored.job;
        }
      }
    } catch (error) {
      // Another worker saved the job since this one read it: that one carries on.
      if (error instanceof DomainError && error.code === 'Conflict' && /another worker/.test(error.message)) {
        return (await this.jobs.get(message.tenantId, message.migrationId))?.job;
      }
      throw error;
    }
    return stored.job;
  }

  /**
   * Fails a job that keeps failing for another reason (its last delivery): rolled back before the switch;
   * from the switch on it can only go forward, so it stays as it is for the stalled-job sweep.
   */
  async giveUp(message: ResidencyWorkMessage, error: unknown): Promise<void> {
    const stored = await this.jobs.get(message.tenantId, message.migrationId);
    if (!stored || !BEFORE_SWITCH.includes(stored.job.status)) return;
    const reason = error instanceof Error ? error.message : String(error);
    await this.fail(stored, { code: 'StepFailed', reason: `A step kept failing: ${reason}` });
  }

  private async step(stored: StoredJob, sliceEnds: number): Promise<StoredJob> {
    const { job } = stored;
    switch (job.status) {
      case 'validating':
        return this.validate(stored);
      case 'copying':
        return this.copy(stored, sliceEnds);
      case 'verifying':
        return this.verify(stored, sliceEnds);
      case 'switching': {
        await this.directory.switchGeography(job.tenantId, job.migrationId, job.to);
        return this.save(stored, { status: 'cleaning', switchedAt: this.now(), cursor: { item: 0 } });
      }
      case 'cleaning':
        return this.clean(stored, sliceEnds);
      case 'failed':
        return this.rollBack(stored);
      case 'completed':
        return stored;
    }
  }

  private async validate(stored: StoredJob): Promise<StoredJob> {
    const { job } = stored;
    const entry = await this.directory.get(job.tenantId);
    if (!entry) throw new MigrationFailure('TenantNotFound', `Tenant ${job.tenantId} no longer exists.`);
    if (entry.migration?.migrationId !== job.migrationId) {
      if (entry.migration) {
        throw new MigrationFailure('Conflict', `Migration ${entry.migration.migrationId} holds the tenant.`);
      }
      // Set by the request that created the job; a crash in between leaves it to be set here.
      await this.directory.beginMigration(job.tenantId, {
        migrationId: job.migrationId,
        targetGeography: job.to,
        startedAt: job.fencedAt,
      });
    }
    if (entry.geography !== job.from) {
      throw new MigrationFailure('InvalidState', `Tenant ${job.tenantId} is no longer in ${job.from}.`);
    }
    this.storage.geography(job.to); // still open
    const wait = Date.parse(job.copyAfter) - this.clock().getTime();
    if (wait > 0) throw new NotYet(Math.ceil(wait / 1000));
    return this.save(stored, { status: 'copying', cursor: { item: 0 } });
  }

  private async copy(stored: StoredJob, sliceEnds: number): Promise<StoredJob> {
    const { job } = stored;
    const item = job.cursor.item;
    if (item >= ITEMS.length) return this.save(stored, { status: 'verifying', cursor: { item: 0 } });
    const name = ITEMS[item]!;
    const from = this.storage.moverAccount(job.from);
    const to = this.storage.moverAccount(job.to);
    let current = stored;
    if (isContainer(item)) {
      const source = await from.container(name);
      const target = await to.container(name);
      for await (const page of tenantBlobPages(source, job.tenantId, job.cursor.continuationToken)) {
        for (const blob of page.blobs) await copyBlob(source, target, blob.name);
        current = await this.advance(current, name, page.blobs.length, page.continuationToken);
        if (!page.continuationToken || performance.now() > sliceEnds) return current;
      }
    } else {
      const source = await from.table(name);
      const target = await to.table(name);
      for await (const page of tenantRowPages(source, job.tenantId, job.cursor.continuationToken)) {
        const rows = await Promise.all(page.rows.map((row) => this.rewrap(job, name, row)));
        await submitInBatches(
          target,
          rows.map((row): TransactionAction => ['upsert', row, 'Replace']),
        );
        current = await this.advance(current, name, rows.length, page.continuationToken);
        if (!page.continuationToken || performance.now() > sliceEnds) return current;
      }
    }
    return this.save(current, { cursor: { item: item + 1 } });
  }

  /** Progress of a copy page saved with where the next page starts (the next item when there is none). */
  private advance(
    stored: StoredJob,
    name: string,
    count: number,
    token: string | undefined,
  ): Promise<StoredJob> {
    const { job } = stored;
    const copied = { ...job.progress.copied, [name]: (job.progress.copied[name] ?? 0) + count };
    return this.save(stored, {
      progress: { ...job.progress, copied },
      cursor: token ? { item: job.cursor.item, continuationToken: token } : { item: job.cursor.item + 1 },
    });
  }

  private async verify(stored: StoredJob, sliceEnds: number): Promise<StoredJob> {
    let current = stored;
    while (current.job.cursor.item < ITEMS.length) {
      const { job } = current;
      const item = job.cursor.item;
      const name = ITEMS[item]!;
      const manifest: MigrationManifest = job.manifest ?? {
        from: job.from,
        to: job.to,
        tables: {},
        containers: {},
        resynced: 0,
      };
      if (isContainer(item)) {
        const result = await this.verifyContainer(job, name);
        manifest.containers[name] = result.sides;
        manifest.resynced += result.resynced;
      } else {
        const result = await this.verifyTable(job, name);
        manifest.tables[name] = result.sides;
        manifest.resynced += result.resynced;
      }
      const count = isContainer(item)
        ? manifest.containers[name]!.target.count
        : manifest.tables[name]!.target.count;
      current = await this.save(current, {
        manifest,
        progress: { ...job.progress, verified: { ...job.progress.verified, [name]: count } },
        cursor: { item: item + 1 },
      });
      if (performance.now() > sliceEnds) return current;
    }
    return this.save(current, { status: 'switching', cursor: { item: 0 } });
  }

  private async verifyTable(job: MigrationJob, name: string) {
    const source = await this.storage.moverAccount(job.from).table(name);
    const target = await this.storage.moverAccount(job.to).table(name);
    let resynced = 0;
    for (let round = 0; ; round++) {
      const sourceTotals = new Totals();
      const targetTotals = new Totals();
      const differing: string[] = [];
      for await (const partitionKey of mismatches(
        partitionSummaries(source, job.tenantId, (row) => this.canonical(job.from, job.tenantId, name, row)),
        partitionSummaries(target, job.tenantId, (row) => this.canonical(job.to, job.tenantId, name, row)),
        (s) => sourceTotals.add(s.partitionKey, s.rows, s.digest),
        (s) => targetTotals.add(s.partitionKey, s.rows, s.digest),
      )) {
        differing.push(partitionKey);
        if (differing.length > 10_000) break;
      }
      if (differing.length === 0) {
        return {
          sides: { source: sourceTotals.result(), target: targetTotals.result(), matched: true },
          resynced,
        };
      }
      if (round === RESYNC_ROUNDS) {
        throw new MigrationFailure(
          'VerificationFailed',
          `Table ${name}: ${differing.length} partitions still differ after ${RESYNC_ROUNDS} copies.`,
        );
      }
      for (const partitionKey of differing)
        await this.resyncPartition(job, name, source, target, partitionKey);
      resynced += differing.length;
    }
  }

  /** Copies a partition again and removes from the target what the source does not hold. */
  private async resyncPartition(
    job: MigrationJob,
    name: string,
    source: TableClient,
    target: TableClient,
    partitionKey: string,
  ): Promise<void> {
    const keep = new Set<string>();
    const upserts: TransactionAction[] = [];
    for await (const row of partitionRows(source, partitionKey)) {
      keep.add(row.rowKey);
      upserts.push(['upsert', await this.rewrap(job, name, row), 'Replace']);
    }
    const deletes: TransactionAction[] = [];
    for await (const row of partitionRows(target, partitionKey)) {
      if (!keep.has(row.rowKey)) deletes.push(['delete', { partitionKey, rowKey: row.rowKey }]);
    }
    await submitInBatches(target, [...deletes, ...upserts]);
  }

  private async verifyContainer(job: MigrationJob, name: string) {
    const source = await this.storage.moverAccount(job.from).container(name);
    const target = await this.storage.moverAccount(job.to).container(name);
    let resynced = 0;
    for (let round = 0; ; round++) {
      const sides = { source: new Totals(), target: new Totals() };
      const bytes = { source: 0, target: 0 };
      const summaries = async function* (container: ContainerClient, side: 'source' | 'target') {
        for await (const page of tenantBlobPages(container, job.tenantId)) {
          for (const blob of page.blobs) {
            bytes[side] += blob.bytes;
            yield { partitionKey: blob.name, rows: 1, digest: await blobDigest(container, blob.name) };
          }
        }
      };
      const differing: string[] = [];
      for await (const blobName of mismatches(
        summaries(source, 'source'),
        summaries(target, 'target'),
        (s) => sides.source.add(s.partitionKey, 1, s.digest),
        (s) => sides.target.add(s.partitionKey, 1, s.digest),
      )) {
        differing.push(blobName);
      }
      if (differing.length === 0) {
        return {
          sides: {
            source: { ...sides.source.result(), bytes: bytes.source },
            target: { ...sides.target.result(), bytes: bytes.target },
            matched: true,
          },
          resynced,
        };
      }
      if (round === RESYNC_ROUNDS) {
        throw new MigrationFailure(
          'VerificationFailed',
          `Container ${name}: ${differing.length} blobs still differ.`,
        );
      }
      for (const blobName of differing) {
        if (await source.getBlobClient(blobName).exists()) await copyBlob(source, target, blobName);
        else await target.getBlobClient(blobName).deleteIfExists();
      }
      resynced += differing.length;
    }
  }

  private async clean(stored: StoredJob, sliceEnds: number): Promise<StoredJob> {
    let current = stored;
    const { job } = stored;
    const source = this.storage.moverAccount(job.from);
    while (current.job.cursor.item < ITEMS.length) {
      const item = current.job.cursor.item;
      const name = ITEMS[item]!;
      // A large table is deleted over several slices: the budget is checked between pages.
      const { deleted, finished } = await deleteTenantItem(source, job.tenantId, item, name, sliceEnds);
      current = await this.save(current, {
        progress: {
          ...current.job.progress,
          deleted: {
            ...current.job.progress.deleted,
            [name]: (current.job.progress.deleted[name] ?? 0) + deleted,
          },
        },
        cursor: { item: finished ? item + 1 : item },
      });
      if (performance.now() > sliceEnds) return current;
    }
    // The source's tenant key goes last: every key it wrapped has been deleted with its row.
    await this.keys.forGeography(job.from).destroyTenantKey(job.tenantId);
    const remaining = await remainingOf(source, job.tenantId);
    if (Object.values(remaining).some((count) => count > 0)) {
      // Something reached the source after the switch (it cannot through the fence): clean again.
      return this.save(current, { cursor: { item: 0 } });
    }
    const manifest: MigrationManifest = { ...job.manifest!, sourceRemaining: remaining };
    const tenant = await this.directory.resolve(job.tenantId);
    await this.record(tenant, job, 'migrated', {
      requestedBy: job.requestedBy,
      switchedAt: job.switchedAt,
      manifest,
    });
    return this.save(current, { status: 'completed', manifest, completedAt: this.now() });
  }

  /** Marks the job failed (claiming it), then rolls back; a crash in between is resumed by rollBack(). */
  private async fail(stored: StoredJob, failure: { code: string; reason: string }): Promise<StoredJob> {
    const failed = await this.save(stored, { status: 'failed', failure, cursor: { item: 0 } });
    return this.rollBack(failed);
  }

  /**
   * The partial copy removed, the target's tenant key destroyed, the flag lifted, the failure audited. A job
   * that failed because another move holds the tenant touches nothing; its event waits until that move is
   * over (the fence refuses it meanwhile, and its message is put back).
   */
  private async rollBack(stored: StoredJob): Promise<StoredJob> {
    const { job } = stored;
    if (job.rolledBack) return stored;
    const entry = await this.directory.get(job.tenantId);
    const ownsFlag = entry?.migration?.migrationId === job.migrationId;
    // A job that failed because another move holds the tenant must not touch that move's copy.
    const anotherMove = entry?.migration !== undefined && !ownsFlag;
    if (entry && entry.geography !== job.to && !anotherMove) {
      const target = this.storage.moverAccount(job.to);
      for (let item = 0; item < ITEMS.length; item++) {
        await deleteTenantItem(target, job.tenantId, item, ITEMS[item]!);
      }
      await this.keys.forGeography(job.to).destroyTenantKey(job.tenantId);
    }
    if (ownsFlag) await this.directory.endMigration(job.tenantId, job.migrationId);
    if (entry && (entry.status === 'active' || entry.status === 'subscriptionEnded')) {
      const tenant = this.directory.scopeOf(ownsFlag ? withoutMigration(entry) : entry);
      await this.record(tenant, job, 'migrationFailed', { from: job.from, to: job.to, failure: job.failure });
    }
    return this.save(stored, { rolledBack: true, completedAt: this.now() });
  }

  /** The move's one event of each kind in the tenant's chain (a re-run appends none again). */
  private async record(
    tenant: TenantScope,
    job: MigrationJob,
    kind: 'migrated' | 'migrationFailed',
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.audit.append(tenant, {
      id: `residency.${kind}-${job.migrationId}`,
      action: `residency.${kind}`,
      actor: MIGRATION_ACTOR,
      target: { type: 'tenant', id: job.tenantId },
      outcome: kind === 'migrated' ? 'success' : 'failure',
      correlationId: job.migrationId,
      details: { migrationId: job.migrationId, ...details },
    });
  }

  /**
   * A wrapped key row (a subject's data key, the tenant's secrets) is unwrapped with the source's tenant key
   * and wrapped with the target's, which the first wrap creates; every other row moves as it is.
   */
  private async rewrap(job: MigrationJob, table: string, row: StoredRow): Promise<StoredRow> {
    if (!isWrappedKeyRow(table, row)) return row;
    const key = await this.unwrap(job.from, job.tenantId, row);
    const wrapped = await this.keys.forGeography(job.to).wrapKey(job.tenantId, key);
    return {
      ...row,
      provider: { value: wrapped.provider, type: 'String' },
      keyId: { value: wrapped.keyId, type: 'String' },
      value: { value: wrapped.value, type: 'String' },
    };
  }

  /** The canonical text of a row for the digests: wrapped keys by what they unwrap to. */
  private async canonical(
    geography: Geography,
    tenantId: string,
    table: string,
    row: StoredRow,
  ): Promise<string> {
    if (!isWrappedKeyRow(table, row)) return canonicalRow(row);
    const key = await this.unwrap(geography, tenantId, row);
    const { provider: _p, keyId: _k, value: _v, ...rest } = row;
    return canonicalRow({ ...rest, key: createHash('sha256').update(key).digest('hex') } as StoredRow);
  }

  private unwrap(geography: Geography, tenantId: string, row: StoredRow): Promise<Buffer> {
    const text = (name: string) => (row[name] as { value: string }).value;
    return this.keys
      .forGeography(geography)
      .unwrapKey(tenantId, { provider: text('provider'), keyId: text('keyId'), value: text('value') });
  }

  private async save(stored: StoredJob, change: Partial<MigrationJob>): Promise<StoredJob> {
    const job: MigrationJob = { ...stored.job, ...change, updatedAt: this.now() };
    const etag = await this.jobs.save(job, stored.etag);
    return { job, etag };
  }

  private continueLater(job: MigrationJob, seconds: number): Promise<void> {
    return this.workQueue.send(
      QUEUES.residencyWork,
      { tenantId: job.tenantId, migrationId: job.migrationId },
      seconds,
    );
  }

  private now(): string {
    return this.clock().toISOString();
  }
}

const withoutMigration = ({ migration: _m, ...entry }: TenantEntry): TenantEntry => entry;

const finished = (job: MigrationJob): boolean =>
  job.status === 'completed' || (job.status === 'failed' && job.rolledBack === true);

export const isWrappedKeyRow = (table: string, row: StoredRow): boolean =>
  (table === TABLES.tenantSecrets || (table === TABLES.records && row.rowKey === SUBJECT_KEY_ROW)) &&
  ['provider', 'keyId', 'value'].every(
    (name) => typeof (row[name] as { value?: unknown } | undefined)?.value === 'string',
  );

async function copyBlob(source: ContainerClient, target: ContainerClient, blobName: string): Promise<void> {
  const download = await source.getBlobClient(blobName).download();
  await target
    .getBlockBlobClient(blobName)
    .uploadStream(download.readableStreamBody! as Readable, 4 * 1024 * 1024, 4, {
      ...(download.metadata ? { metadata: download.metadata } : {}),
      blobHTTPHeaders: {
        ...(download.contentType ? { blobContentType: download.contentType } : {}),
        ...(download.contentEncoding ? { blobContentEncoding: download.contentEncoding } : {}),
      },
    });
}

/** SHA-256 over a blob's metadata and content, streamed. */
async function blobDigest(container: ContainerClient, blobName: string): Promise<string> {
  const download = await container.getBlobClient(blobName).download();
  const hash = createHash('sha256');
  const metadata = Object.entries(download.metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  hash.update(JSON.stringify(metadata)).update('\n');
  for await (const chunk of download.readableStreamBody!) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Deletes the tenant's rows of a table or blobs of a container in an account; how many it deleted. */
/** Deletes the tenant's rows of a table or blobs of a container in an account, as deleteTenantRows does. */
async function deleteTenantItem(
  account: StorageAccount,
  tenantId: string,
  item: number,
  name: string,
  until = Number.POSITIVE_INFINITY,
): Promise<{ deleted: number; finished: boolean }> {
  let deleted = 0;
  if (isContainer(item)) {
    const container = await account.container(name);
    for await (const page of tenantBlobPages(container, tenantId)) {
      for (const blob of page.blobs) {
        if ((await container.getBlobClient(blob.name).deleteIfExists()).succeeded) deleted++;
      }
      if (page.continuationToken && performance.now() > until) return { deleted, finished: false };
    }
    return { deleted, finished: true };
  }
  return deleteTenantRows(await account.table(name), tenantId, until);
}

/** What an account still holds of the tenant, per table and container (0 or 1: one request each). */
async function remainingOf(account: StorageAccount, tenantId: string): Promise<Record<string, number>> {
  const remaining: Record<string, number> = {};
  for (const name of MOVED_TABLES) {
    remaining[name] = (await hasTenantRows(await account.table(name), tenantId)) ? 1 : 0;
  }
  for (const name of MOVED_CONTAINERS) {
    const first = await tenantBlobPages(await account.container(name), tenantId, undefined, 1).next();
    remaining[name] = !first.done && first.value.blobs.length > 0 ? 1 : 0;
  }
  return remaining;
}

export type { MigrationStatus };
