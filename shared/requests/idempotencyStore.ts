// Idempotency-Key claims (SPEC §3): the first create with a key claims it for the resource it will create;
// the same key from the same tenant within 24 h then yields that resource instead of a second one.
import { createHash } from 'node:crypto';

import { RestError, type TableClient } from '@azure/data-tables';

import type { Clock } from '../clock';
import { DomainError } from '../errors';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';

export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;

interface ClaimEntity {
  partitionKey: string;
  rowKey: string;
  resourceId: string;
  /** Hash of the request body: the same key with another body is a client error, not a replay. */
  fingerprint: string;
  claimedAt: string;
}

export interface Claim {
  resourceId: string;
  /** True when the key was already claimed: the caller returns (or finishes) that resource. */
  replay: boolean;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export class IdempotencyStore {
  constructor(private readonly clock: Clock) {}

  private table(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.idempotency);
  }

  /**
   * The resource an earlier claim of `key` (within the window) names, read only: what a create checks before
   * it may refuse (a retry of a create that succeeded is answered with its resource, not refused).
   */
  async find(tenant: TenantScope, scope: string, key: string, body: unknown): Promise<string | undefined> {
    const table = await this.table(tenant);
    let existing;
    try {
      existing = await table.getEntity<ClaimEntity>(tenant.tenantId, sha256(`${scope}\n${key}`));
    } catch (error) {
      if (error instanceof RestError && error.statusCode === 404) return undefined;
      throw error;
    }
    if (this.clock().getTime() - Date.parse(existing.claimedAt) >= IDEMPOTENCY_WINDOW_MS) return undefined;
    if (existing.fingerprint !== sha256(JSON.stringify(body))) {
      throw new DomainError(
        'Conflict',
        'This Idempotency-Key was already used with a different request body.',
      );
    }
    return existing.resourceId;
  }

  /** Claims `key` for `resourceId`, or returns the earlier claim of the same key within the window. */
  async claim(
    tenant: TenantScope,
    scope: string,
    key: string,
    body: unknown,
    resourceId: string,
  ): Promise<Claim> {
    const table = await this.table(tenant);
    const rowKey = sha256(`${scope}\n${key}`);
    const fingerprint = sha256(JSON.stringify(body));
    const entity: ClaimEntity = {
      partitionKey: tenant.tenantId,
      rowKey,
      resourceId,
      fingerprint,
      claimedAt: this.clock().toISOString(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await table.createEntity(entity);
        return { resourceId, replay: false };
      } catch (error) {
        if (!(error instanceof RestError && error.statusCode === 409)) throw error;
      }
      let existing;
      try {
        existing = await table.getEntity<ClaimEntity>(tenant.tenantId, rowKey);
      } catch (error) {
        if (error instanceof RestError && error.statusCode === 404) continue; // expired claim removed meanwhile
        throw error;
      }
      const age = this.clock().getTime() - Date.parse(existing.claimedAt);
      if (age >= IDEMPOTENCY_WINDOW_MS) {
        try {
          await table.updateEntity(entity, 'Replace', { etag: existing.etag });
          return { resourceId, replay: false };
        } catch (error) {
          if (error instanceof RestError && error.statusCode === 412) continue;
          throw error;
        }
      }
      if (existing.fingerprint !== fingerprint) {
        throw new DomainError(
          'Conflict',
          'This Idempotency-Key was already used with a different request body.',
        );
      }
      return { resourceId: existing.resourceId, replay: true };
    }
    throw new DomainError('Conflict', 'The Idempotency-Key is being claimed concurrently; retry.');
  }
}
