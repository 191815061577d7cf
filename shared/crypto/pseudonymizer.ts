// Pseudonyms for subject identifiers (SPEC §4): an HMAC keyed per tenant, so that stored rows and lookup
// keys name no one, yet the service can still find a subject's rows from its identifiers.
import { createHmac } from 'node:crypto';

import { type Clock, systemClock } from '../clock';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import { DATA_KEY_BYTES, getOrCreateWrappedKey } from './wrappedKeys';

/** The row of the tenant's wrapped pseudonymisation key in `tenantSecrets` (partition: the tenant id). */
export const PSEUDONYM_KEY_ROW = 'pseudonymKey';
/** 32 hex characters: 128 bits, ample against collisions among one tenant's identifiers. */
export const PSEUDONYM_LENGTH = 32;
const KIND = /^[A-Za-z][A-Za-z0-9]*$/;

/**
 * The pseudonym of `value` as an identifier of `kind` (`upn`, `objectId`, ...), under an HMAC key the
 * caller already holds. Case and surrounding whitespace do not matter; the kind does, so an email and a
 * UPN with the same text get different pseudonyms.
 */
export function hmacWith(key: Buffer, kind: string, value: string): string {
  return exactHmacWith(key, kind, value.trim().toLowerCase());
}

/**
 * As hmacWith, but the value is taken exactly as it is: for values whose case matters (record ids are
 * case-sensitive, SPEC §4: `aB3x` and `Ab3x` are two records).
 */
export function exactHmacWith(key: Buffer, kind: string, value: string): string {
  // A kind with a ':' could collide with another kind's values.
  if (!KIND.test(kind)) throw new Error(`"${kind}" is not an identifier kind (letters and digits).`);
  if (key.length !== DATA_KEY_BYTES) throw new Error(`A pseudonymisation key has ${DATA_KEY_BYTES} bytes.`);
  return createHmac('sha256', key)
    .update(`${kind}:${value}`, 'utf8')
    .digest('hex')
    .slice(0, PSEUDONYM_LENGTH);
}

export class Pseudonymizer {
  /** Each tenant's key, read (or created) once per instance; it never changes while the tenant exists. */
  private readonly keys = new Map<string, Promise<Buffer>>();

  constructor(private readonly clock: Clock = systemClock) {}

  async hmac(tenant: TenantScope, kind: string, value: string): Promise<string> {
    return hmacWith(await this.keyFor(tenant), kind, value);
  }

  /** The tenant's pseudonymisation key, created on first use; shared, so callers must not modify it. */
  keyFor(tenant: TenantScope): Promise<Buffer> {
    let key = this.keys.get(tenant.tenantId);
    if (!key) {
      key = this.readOrCreate(tenant);
      key.catch(() => this.keys.delete(tenant.tenantId));
      this.keys.set(tenant.tenantId, key);
    }
    return key;
  }

  private async readOrCreate(tenant: TenantScope): Promise<Buffer> {
    const table = await tenant.account.table(TABLES.tenantSecrets);
    return getOrCreateWrappedKey(
      table,
      tenant.tenantId,
      PSEUDONYM_KEY_ROW,
      tenant.tenantId,
      tenant.keys,
      this.clock,
    );
  }
}
