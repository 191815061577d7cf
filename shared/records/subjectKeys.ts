// One data key per data subject (SPEC §4): a subject's records are sealed with it, and erasing the subject
// destroys it, which makes every copy of those records unreadable at once (crypto-shredding).
import { RestError, type TableClient } from '@azure/data-tables';

import { type Clock, systemClock } from '../clock';
import { getOrCreateWrappedKey, readWrappedKey } from '../crypto/wrappedKeys';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import { recordsPartition } from './recordKeys';

/** The row of a subject's wrapped data key in its records partition; `~` sorts it after the records. */
export const SUBJECT_KEY_ROW = '~key';

/** Characters Table storage refuses in keys. */
// eslint-disable-next-line no-control-regex
const INVALID_KEY_CHARACTERS = /[/\\#?\u0000-\u001f\u007f-\u009f]/;

export interface SubjectKeyStoreOptions {
  /** Unwrapped keys kept in memory, least recently used dropped first (default 10,000: about 5 MB of heap). */
  cacheSize?: number;
  /**
   * How long an unwrapped key is used from memory before its row is read again (default 60 s). A destroy
   * on this instance takes effect at once; one on another instance takes effect here within this time.
   */
  cacheTtlMs?: number;
  clock?: Clock;
}

export class SubjectKeyStore {
  private readonly cache: KeyCache;
  private readonly clock: Clock;
  /** Reads in flight, so that concurrent callers on this instance share one round trip (and one wrap). */
  private readonly pending = new Map<string, Promise<Buffer | undefined>>();

  constructor(options: SubjectKeyStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.cache = new KeyCache(options.cacheSize ?? 10_000, options.cacheTtlMs ?? 60_000, this.clock);
  }

  /**
   * The subject's data key, created on first use. Concurrent callers, on any instance, end with the same
   * key: the first row written wins and the others read it.
   */
  async getOrCreate(tenant: TenantScope, subjectKey: string): Promise<Buffer> {
    const key = await this.load(tenant, subjectKey, 'create');
    if (!key) throw new Error('A created subject key was not returned.');
    return key;
  }

  /** The subject's data key, or undefined when it never existed or was destroyed. */
  async find(tenant: TenantScope, subjectKey: string): Promise<Buffer | undefined> {
    return this.load(tenant, subjectKey, 'find');
  }

  /**
   * Destroys the subject's data key: what was sealed with it can no longer be opened, wherever it is.
   * Idempotent; true when a key was there. Other instances may use their cached copy for up to
   * `cacheTtlMs`; what they seal meanwhile is sealed with the destroyed key and is unreadable too.
   */
  async destroy(tenant: TenantScope, subjectKey: string): Promise<boolean> {
    const partitionKey = partitionOf(tenant, subjectKey);
    this.forget(partitionKey);
    const table = await this.table(tenant);
    try {
      await table.deleteEntity(partitionKey, SUBJECT_KEY_ROW);
      return true;
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 404) return false;
      throw error;
    } finally {
      // A read that was in flight during the delete must not put the key back into the cache.
      this.forget(partitionKey);
    }
  }

  /** Returns a copy each time, so that a caller wiping its key after use does not wipe anyone else's. */
  private async load(
    tenant: TenantScope,
    subjectKey: string,
    mode: 'create' | 'find',
  ): Promise<Buffer | undefined> {
    const partitionKey = partitionOf(tenant, subjectKey);
    const key = this.cache.get(partitionKey) ?? (await this.loadShared(tenant, partitionKey, mode));
    return key && Buffer.from(key);
  }

  private loadShared(
    tenant: TenantScope,
    partitionKey: string,
    mode: 'create' | 'find',
  ): Promise<Buffer | undefined> {
    const flight = `${mode}:${partitionKey}`;
    const existing = this.pending.get(flight);
    if (existing) return existing;
    const read = async (): Promise<Buffer | undefined> => {
      const table = await this.table(tenant);
      const { tenantId } = tenant;
      const key =
        mode === 'create'
          ? await getOrCreateWrappedKey(
              table,
              partitionKey,
              SUBJECT_KEY_ROW,
              tenantId,
              tenant.keys,
              this.clock,
            )
          : await readWrappedKey(table, partitionKey, SUBJECT_KEY_ROW, tenantId, tenant.keys);
      // A destroy while this read was in flight removed it from `pending`: its key must not be cached.
      if (key && this.pending.get(flight) === pending) this.cache.set(partitionKey, key);
      return key;
    };
    const pending: Promise<Buffer | undefined> = read().finally(() => {
      if (this.pending.get(flight) === pending) this.pending.delete(flight);
    });
    this.pending.set(flight, pending);
    return pending;
  }

  private forget(partitionKey: string): void {
    this.cache.delete(partitionKey);
    this.pending.delete(`create:${partitionKey}`);
    this.pending.delete(`find:${partitionKey}`);
  }

  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.records);
  }
}

function partitionOf(tenant: TenantScope, subjectKey: string): string {
  if (subjectKey === '' || INVALID_KEY_CHARACTERS.test(subjectKey)) {
    throw new Error(
      'A subject key must be non-empty and hold no character Table keys refuse (/ \\ # ? controls).',
    );
  }
  return recordsPartition(tenant.tenantId, subjectKey);
}

/** Unwrapped keys by partition: least recently used evicted first, each trusted for `ttlMs`. */
class KeyCache {
  // A Map iterates in insertion order; re-inserting on use keeps the least recently used first.
  private readonly entries = new Map<string, { key: Buffer; expiresAt: number }>();

  constructor(
    private readonly capacity: number,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  get(id: string): Buffer | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    this.entries.delete(id);
    if (entry.expiresAt <= this.clock().getTime()) return undefined;
    this.entries.set(id, entry);
    return entry.key;
  }

  set(id: string, key: Buffer): void {
    if (this.capacity <= 0 || this.ttlMs <= 0) return;
    // Buffer.alloc never slices Node's shared pool: a 32-byte key must not keep an 8 KiB slab alive.
    const own = Buffer.alloc(key.length);
    key.copy(own);
    this.entries.delete(id);
    this.entries.set(id, { key: own, expiresAt: this.clock().getTime() + this.ttlMs });
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  delete(id: string): void {
    this.entries.delete(id);
  }
}
