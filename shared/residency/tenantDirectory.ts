// The tenant directory in the global account: which tenants exist and which geography holds each one's
// data. Every access to tenant data goes through resolve(), which yields the tenant's storage scope.
import { odata, RestError, type TableClient } from '@azure/data-tables';

import type { Clock } from '../clock';
import type { KeyProvider } from '../crypto/keyProvider';
import type { GeographyKeys } from '../crypto/keyProviders';
import { DomainError } from '../errors';
import type { StorageAccount } from '../storage/storageAccount';
import type { StorageAccounts } from '../storage/storageAccounts';
import { GLOBAL_TABLES } from '../storage/names';
import { GEOGRAPHIES, type Geography } from '../vocabulary/geographies';
import { bestGeography, regionOf } from './geography';
import { orAbsent } from '../storage/absent';

/** `purging`: passive deletion is under way; the tenant takes no more writes from then on. */
export type TenantStatus = 'active' | 'subscriptionEnded' | 'purging' | 'purged';

export interface TenantEntry {
  tenantId: string;
  countryCode: string;
  displayName: string;
  geography: Geography;
  status: TenantStatus;
  provisionedAt: string;
  /** Passive deletion: all the tenant's data is purged 30 days after this. */
  subscriptionEndedAt?: string;
  /** Set while the tenant's data moves to another geography; writes are refused meanwhile (423). */
  migration?: { migrationId: string; targetGeography: Geography; startedAt: string };
}

/** The storage a tenant's data may live in. Repositories take one, so no tenant data is reached without it. */
export interface TenantScope {
  readonly tenantId: string;
  readonly geography: Geography;
  readonly account: StorageAccount;
  /** The geography's tenant key provider: the tenant's keys are wrapped there and nowhere else. */
  readonly keys: KeyProvider;
  readonly entry: TenantEntry;
}

const DIRECTORY_ROW = 'directory';

interface DirectoryEntity {
  partitionKey: string;
  rowKey: string;
  countryCode: string;
  displayName: string;
  geography: string;
  status: string;
  provisionedAt: string;
  subscriptionEndedAt?: string;
  migration?: string;
}

export class TenantDirectory {
  /** Entries read for the write fence, with when they were read (monotonic ms); absence is never cached. */
  private readonly recentEntries = new Map<string, { entry: TenantEntry; readAt: number }>();

  constructor(
    private readonly storage: StorageAccounts,
    private readonly keys: GeographyKeys,
    private readonly clock: Clock,
  ) {}

  private table(): Promise<TableClient> {
    return this.storage.global.table(GLOBAL_TABLES.tenants);
  }

  async get(tenantId: string): Promise<TenantEntry | undefined> {
    return (await this.read(tenantId))?.entry;
  }

  /**
   * The entry as read at most `maxAgeMs` ago in this process (the write fence's bound on staleness, SPEC §8);
   * this directory's own changes replace it at once. A tenant not found is read again on every call.
   */
  async recent(tenantId: string, maxAgeMs: number): Promise<TenantEntry | undefined> {
    const id = tenantId.toLowerCase();
    const cached = this.recentEntries.get(id);
    if (cached && performance.now() - cached.readAt <= maxAgeMs) return cached.entry;
    return this.get(id);
  }

  private async read(tenantId: string): Promise<{ entry: TenantEntry; etag: string } | undefined> {
    const table = await this.table();
    const id = tenantId.toLowerCase();
    const readAt = performance.now();
    const entity = await orAbsent(table.getEntity<DirectoryEntity>(id, DIRECTORY_ROW));
    if (!entity) {
      this.recentEntries.delete(id);
      return undefined;
    }
    const entry = fromEntity(entity);
    this.remember(entry, readAt);
    return { entry, etag: entity.etag };
  }

  private remember(entry: TenantEntry, readAt = performance.now()): void {
    const known = this.recentEntries.get(entry.tenantId);
    // A slower read that started earlier never replaces a newer one.
    if (!known || known.readAt <= readAt) this.recentEntries.set(entry.tenantId, { entry, readAt });
  }

  /** Forgets what this process read of a tenant (after a change it made without reading the result). */
  private forget(tenantId: string): void {
    this.recentEntries.delete(tenantId.toLowerCase());
  }

  /**
   * Passive deletion starts: from now on the tenant takes no writes (events are refused, its routes answer
   * 404), so nothing lands behind the purge. Only from `subscriptionEnded` (a reactivation that came first
   * wins); idempotent. False when the tenant is no longer due (reactivated meanwhile).
   */
  async beginPurge(tenantId: string): Promise<boolean> {
    const found = await this.read(tenantId);
    if (!found) return false;
    if (found.entry.status === 'purging') return true;
    if (found.entry.status !== 'subscriptionEnded') return false;
    const table = await this.table();
    try {
      await table.updateEntity({ ...toEntity(found.entry), status: 'purging' }, 'Replace', {
        etag: found.etag,
      });
      this.forget(tenantId);
      return true;
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 412) return this.beginPurge(tenantId);
      throw error;
    }
  }

  /**
   * Sets the migration flag (SPEC §8): from then on every write for the tenant is refused (423 over HTTP,
   * retried later from queues). Only for an active tenant with no migration under way; guarded by ETag, so
   * of two concurrent starts one wins and the other gets 409 Conflict. Idempotent for the same migration.
   */
  async beginMigration(
    tenantId: string,
    migration: NonNullable<TenantEntry['migration']>,
  ): Promise<TenantEntry> {
    const found = await this.read(tenantId);
    if (!found || found.entry.status === 'purged' || found.entry.status === 'purging') {
      throw new DomainError('TenantNotFound', `Tenant ${tenantId} does not exist.`);
    }
    const { entry } = found;
    if (entry.migration?.migrationId === migration.migrationId) return entry;
    if (entry.migration) {
      throw new DomainError(
        'Conflict',
        `Tenant ${tenantId} is already moving to ${entry.migration.targetGeography}.`,
      );
    }
    if (entry.status !== 'active') {
      throw new DomainError(
        'InvalidState',
        `Tenant ${tenantId} is not active (${entry.status}); it cannot move.`,
      );
    }
    return this.replace(found, { ...entry, migration });
  }

  /**
   * The switch: the tenant's geography becomes the migration's target and the flag goes, in one ETag-guarded
   * write. Idempotent: a tenant already switched by this migration is returned as it is.
   */
  async switchGeography(tenantId: string, migrationId: string, target: Geography): Promise<TenantEntry> {
    const found = await this.read(tenantId);
    if (!found) throw new DomainError('TenantNotFound', `Tenant ${tenantId} does not exist.`);
    const { entry } = found;
    if (!entry.migration && entry.geography === target) return entry;
    if (entry.migration?.migrationId !== migrationId) {
      throw new DomainError('Conflict', `Tenant ${tenantId} is not being moved by migration ${migrationId}.`);
    }
    const { migration: _done, ...rest } = entry;
    return this.replace(found, { ...rest, geography: target });
  }

  /** Lifts the flag of a migration that failed (after its rollback); idempotent. */
  async endMigration(tenantId: string, migrationId: string): Promise<void> {
    const found = await this.read(tenantId);
    if (!found || found.entry.migration?.migrationId !== migrationId) return;
    const { migration: _failed, ...rest } = found.entry;
    await this.replace(found, rest);
  }

  private async replace(
    found: { entry: TenantEntry; etag: string },
    next: TenantEntry,
  ): Promise<TenantEntry> {
    const table = await this.table();
    try {
      await table.updateEntity(toEntity(next), 'Replace', { etag: found.etag });
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 412) {
        this.forget(next.tenantId);
        throw new DomainError('Conflict', `Tenant ${next.tenantId} changed meanwhile; try again.`);
      }
      throw error;
    }
    this.forget(next.tenantId);
    return next;
  }

  /** Every tenant whose data still exists (all but purged ones), page by page from the global table. */
  async *listTenants(pageSize = 1000): AsyncGenerator<TenantEntry> {
    const table = await this.table();
    const filter = odata`RowKey eq ${DIRECTORY_ROW} and status ne ${'purged' satisfies TenantStatus}`;
    for await (const page of table
      .listEntities<DirectoryEntity>({ queryOptions: { filter } })
      .byPage({ maxPageSize: pageSize })) {
      for (const entity of page) yield fromEntity(entity);
    }
  }

  /** The tenant's storage scope; 404 TenantNotFound for a tenant that was never provisioned. */
  async resolve(tenantId: string): Promise<TenantScope> {
    return this.liveScope(tenantId, await this.get(tenantId));
  }

  /**
   * resolve() from the entry as read at most `maxAgeMs` ago in this process (recent()), so a stream of
   * events does not read the directory for each one. Safe within the write fence's bound (SPEC §8): a
   * migration sets its flag and waits twice that bound before it copies, and passive deletion waits as long
   * after beginPurge before it deletes, so what an instance writes on an entry cached that long lands before
   * either starts; a flagged entry refuses writes at the fence. Same TenantNotFound rules as resolve().
   */
  async resolveRecent(tenantId: string, maxAgeMs: number): Promise<TenantScope> {
    return this.liveScope(tenantId, await this.recent(tenantId, maxAgeMs));
  }

  /** The scope of a tenant whose data still exists; TenantNotFound for none, or one purged or purging. */
  private liveScope(tenantId: string, entry: TenantEntry | undefined): TenantScope {
    if (!entry || entry.status === 'purged' || entry.status === 'purging') {
      throw new DomainError('TenantNotFound', `Tenant ${tenantId} does not exist.`);
    }
    return this.scopeOf(entry);
  }

  scopeOf(entry: TenantEntry): TenantScope {
    return {
      tenantId: entry.tenantId,
      geography: entry.geography,
      account: this.storage.geography(entry.geography),
      keys: this.keys.forGeography(entry.geography),
      entry,
    };
  }

  /**
   * Enters a tenant in the directory with the geography that best fits its country. Idempotent: a tenant
   * provisioned again keeps its geography (it never changes by itself); only the display name follows. A
   * tenant whose subscription ended is active again (`reactivated`: when it had ended); a purged one is
   * refused.
   */
  async provision(input: {
    tenantId: string;
    countryCode: string;
    displayName: string;
  }): Promise<{ entry: TenantEntry; created: boolean; reactivated?: string | undefined }> {
    const tenantId = input.tenantId.toLowerCase();
    const countryCode = input.countryCode.toUpperCase();
    if (!regionOf(countryCode)) {
      throw new DomainError('NotEligible', `Country ${countryCode} is not served by any geography.`);
    }
    const geography = bestGeography(countryCode, this.storage.openGeographies());
    if (!geography) {
      throw new DomainError('NotEligible', `No geography serving country ${countryCode} is open.`);
    }
    const entry: TenantEntry = {
      tenantId,
      countryCode,
      displayName: input.displayName,
      geography,
      status: 'active',
      provisionedAt: this.clock().toISOString(),
    };
    const table = await this.table();
    try {
      await table.createEntity(toEntity(entry));
      this.forget(tenantId);
      return { entry, created: true };
    } catch (error) {
      if (!(error instanceof RestError && error.statusCode === 409)) throw error;
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      const found = await this.read(tenantId);
      if (!found) throw new DomainError('Conflict', `Tenant ${tenantId} changed while it was provisioned.`);
      const existing = found.entry;
      if (existing.status === 'purged' || existing.status === 'purging') {
        // Its data, keys and log are (being) deleted for good: the same id cannot start again there.
        throw new DomainError('NotEligible', `Tenant ${tenantId} was purged after its subscription ended.`);
      }
      const reactivated = existing.status === 'subscriptionEnded';
      if (existing.displayName === input.displayName && !reactivated)
        return { entry: existing, created: false };
      // A subscription that starts again cancels the pending passive deletion (SPEC §6); guarded, so a
      // purge that began meanwhile is never undone half-way.
      const { subscriptionEndedAt: _ended, ...rest } = existing;
      const next: TenantEntry = { ...rest, displayName: input.displayName, status: 'active' };
      try {
        await table.updateEntity(toEntity(next), 'Replace', { etag: found.etag });
        this.forget(tenantId);
      } catch (error) {
        if (error instanceof RestError && error.statusCode === 412) continue;
        throw error;
      }
      return {
        entry: next,
        created: false,
        ...(reactivated ? { reactivated: existing.subscriptionEndedAt } : {}),
      };
    }
    throw new DomainError('Conflict', `Tenant ${tenantId} kept changing while it was provisioned.`);
  }

  /** The end of passive deletion: the tenant's data is gone; the entry stays as the record of it. */
  async markPurged(tenantId: string, purgedAt: string, counts: Record<string, number>): Promise<void> {
    const table = await this.table();
    await table.updateEntity(
      {
        partitionKey: tenantId,
        rowKey: DIRECTORY_ROW,
        status: 'purged',
        purgedAt,
        purgeCounts: JSON.stringify(counts),
      },
      'Merge',
    );
    this.forget(tenantId);
  }

  /** Records the end of a tenant's subscription (idempotent: the first end date stays). */
  async endSubscription(tenantId: string, endedAt: string): Promise<TenantEntry> {
    const entry = await this.get(tenantId);
    if (!entry || entry.status === 'purged' || entry.status === 'purging') {
      throw new DomainError('TenantNotFound', `Tenant ${tenantId} does not exist.`);
    }
    if (entry.status === 'subscriptionEnded') return entry;
    const table = await this.table();
    await table.updateEntity(
      {
        partitionKey: entry.tenantId,
        rowKey: DIRECTORY_ROW,
        status: 'subscriptionEnded',
        subscriptionEndedAt: endedAt,
      },
      'Merge',
    );
    this.forget(entry.tenantId);
    return { ...entry, status: 'subscriptionEnded', subscriptionEndedAt: endedAt };
  }
}

function toEntity(entry: TenantEntry): DirectoryEntity {
  return {
    partitionKey: entry.tenantId,
    rowKey: DIRECTORY_ROW,
    countryCode: entry.countryCode,
    displayName: entry.displayName,
    geography: entry.geography,
    status: entry.status,
    provisionedAt: entry.provisionedAt,
    ...(entry.subscriptionEndedAt ? { subscriptionEndedAt: entry.subscriptionEndedAt } : {}),
    ...(entry.migration ? { migration: JSON.stringify(entry.migration) } : {}),
  };
}

function fromEntity(entity: DirectoryEntity): TenantEntry {
  const geography = entity.geography as Geography;
  if (!GEOGRAPHIES.includes(geography)) {
    throw new DomainError('Internal', `Tenant ${entity.partitionKey} has an unknown geography.`);
  }
  return {
    tenantId: entity.partitionKey,
    countryCode: entity.countryCode,
    displayName: entity.displayName,
    geography,
    status: entity.status as TenantStatus,
    provisionedAt: entity.provisionedAt,
    ...(entity.subscriptionEndedAt ? { subscriptionEndedAt: entity.subscriptionEndedAt } : {}),
    ...(entity.migration ? { migration: JSON.parse(entity.migration) as TenantEntry['migration'] } : {}),
  };
}
