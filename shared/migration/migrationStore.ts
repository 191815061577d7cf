// Residency migration jobs in the global account's `migrations` table: one partition per tenant, newest
// first. Every save is ETag-guarded: a worker that lost its lease (a redelivered message ran meanwhile)
// learns it from a 409 and stops, so two workers never advance one job past each other.
import { odata, RestError, type TableClient } from '@azure/data-tables';

import { DomainError } from '../errors';
import { orAbsent } from '../storage/absent';
import { GLOBAL_TABLES } from '../storage/names';
import type { StorageAccounts } from '../storage/storageAccounts';
import type { MigrationJob, MigrationStatus } from './migrationJob';

interface JobEntity {
  partitionKey: string;
  rowKey: string;
  from: string;
  to: string;
  status: string;
  requestedBy: string;
  createdAt: string;
  updatedAt: string;
  fencedAt: string;
  copyAfter: string;
  switchedAt?: string;
  completedAt?: string;
  progress: string;
  cursor: string;
  manifest?: string;
  failure?: string;
  rolledBack?: boolean;
}

export interface StoredJob {
  job: MigrationJob;
  etag: string;
}

export class MigrationStore {
  constructor(private readonly storage: StorageAccounts) {}

  private table(): Promise<TableClient> {
    return this.storage.global.table(GLOBAL_TABLES.migrations);
  }

  async create(job: MigrationJob): Promise<StoredJob> {
    const table = await this.table();
    const { etag } = await table.createEntity(toEntity(job));
    return { job, etag: etag! };
  }

  async get(tenantId: string, migrationId: string): Promise<StoredJob | undefined> {
    const table = await this.table();
    const entity = await orAbsent(table.getEntity<JobEntity>(tenantId, migrationId));
    return entity && { job: fromEntity(entity), etag: entity.etag };
  }

  /** The tenant's latest migration (ids sort newest first). */
  async latest(tenantId: string): Promise<MigrationJob | undefined> {
    const table = await this.table();
    const pages = table
      .listEntities<JobEntity>({ queryOptions: { filter: odata`PartitionKey eq ${tenantId}` } })
      .byPage({ maxPageSize: 1 });
    const first = await pages.next();
    const entity = first.done ? undefined : first.value[0];
    return entity && fromEntity(entity);
  }

  /** Saves the job if nobody else saved it since `etag`; 409 Conflict otherwise. Returns the new ETag. */
  async save(job: MigrationJob, etag: string): Promise<string> {
    const table = await this.table();
    try {
      const result = await table.updateEntity(toEntity(job), 'Replace', { etag });
      return result.etag!;
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 412) {
        throw new DomainError('Conflict', `Migration ${job.migrationId} was advanced by another worker.`);
      }
      throw error;
    }
  }

  /** Every job not completed (the stalled-job sweep reads these and skips finished rollbacks). */
  async *unfinished(): AsyncGenerator<MigrationJob> {
    const table = await this.table();
    // Failed jobs are listed too: one whose rollback has not finished is still work.
    const done: MigrationStatus = 'completed';
    const filter = odata`status ne ${done}`;
    for await (const entity of table.listEntities<JobEntity>({ queryOptions: { filter } })) {
      yield fromEntity(entity);
    }
  }
}

function toEntity(job: MigrationJob): JobEntity {
  return {
    partitionKey: job.tenantId,
    rowKey: job.migrationId,
    from: job.from,
    to: job.to,
    status: job.status,
    requestedBy: job.requestedBy,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    fencedAt: job.fencedAt,
    copyAfter: job.copyAfter,
    ...(job.switchedAt ? { switchedAt: job.switchedAt } : {}),
    ...(job.completedAt ? { completedAt: job.completedAt } : {}),
    progress: JSON.stringify(job.progress),
    cursor: JSON.stringify(job.cursor),
    ...(job.manifest ? { manifest: JSON.stringify(job.manifest) } : {}),
    ...(job.failure ? { failure: JSON.stringify(job.failure) } : {}),
    ...(job.rolledBack ? { rolledBack: true } : {}),
  };
}

function fromEntity(entity: JobEntity): MigrationJob {
  return {
    tenantId: entity.partitionKey,
    migrationId: entity.rowKey,
    from: entity.from as MigrationJob['from'],
    to: entity.to as MigrationJob['to'],
    status: entity.status as MigrationStatus,
    requestedBy: entity.requestedBy,
    createdAt: entity.createdAt,
    updatedAt: entity.updatedAt,
    fencedAt: entity.fencedAt,
    copyAfter: entity.copyAfter,
    ...(entity.switchedAt ? { switchedAt: entity.switchedAt } : {}),
    ...(entity.completedAt ? { completedAt: entity.completedAt } : {}),
    progress: JSON.parse(entity.progress) as MigrationJob['progress'],
    cursor: JSON.parse(entity.cursor) as MigrationJob['cursor'],
    ...(entity.manifest ? { manifest: JSON.parse(entity.manifest) as MigrationJob['manifest'] } : {}),
    ...(entity.failure ? { failure: JSON.parse(entity.failure) as MigrationJob['failure'] } : {}),
    ...(entity.rolledBack ? { rolledBack: true } : {}),
  };
}
