// Keys stored wrapped by a tenant key in a table row (a subject's data key, the tenant's pseudonymisation
// key): read and unwrapped, or created at random and stored wrapped, never in the clear.
import { randomBytes } from 'node:crypto';

import { RestError, type TableClient } from '@azure/data-tables';

import type { Clock } from '../clock';
import type { KeyProvider } from './keyProvider';
import { orAbsent } from '../storage/absent';

/** Every key the service wraps is an AES-256 key. */
export const DATA_KEY_BYTES = 32;

/** A key stored wrapped by the tenant key; never the key itself. */
interface WrappedKeyEntity {
  partitionKey: string;
  rowKey: string;
  provider: string;
  keyId: string;
  value: string;
  createdAt: string;
}

/** Reads and unwraps a stored key; undefined when the row does not exist. */
export async function readWrappedKey(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
  tenantId: string,
  keyProvider: KeyProvider,
): Promise<Buffer | undefined> {
  const entity = await orAbsent(table.getEntity<WrappedKeyEntity>(partitionKey, rowKey));
  if (!entity) return undefined;
  const key = await keyProvider.unwrapKey(tenantId, {
    provider: entity.provider,
    keyId: entity.keyId,
    value: entity.value,
  });
  if (key.length !== DATA_KEY_BYTES)
    throw new Error(`The key in row ${rowKey} is not ${DATA_KEY_BYTES} bytes.`);
  return key;
}

/**
 * Reads a stored key, or creates a random one and stores it wrapped. The create is conditional (insert
 * fails with 409 when the row exists), so racing creators converge on the first row written.
 */
export async function getOrCreateWrappedKey(
  table: TableClient,
  partitionKey: string,
  rowKey: string,
  tenantId: string,
  keyProvider: KeyProvider,
  clock: Clock,
): Promise<Buffer> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await readWrappedKey(table, partitionKey, rowKey, tenantId, keyProvider);
    if (existing) return existing;
    const key = randomBytes(DATA_KEY_BYTES);
    const wrapped = await keyProvider.wrapKey(tenantId, key);
    const entity: WrappedKeyEntity = { partitionKey, rowKey, ...wrapped, createdAt: clock().toISOString() };
    try {
      await table.createEntity(entity);
      return key;
    } catch (error) {
      if (!(error instanceof RestError && error.statusCode === 409)) throw error;
    }
    // Another creator won; the next read returns its key (or, if it was destroyed meanwhile, we try again).
  }
  throw new Error(`The key in row ${rowKey} keeps changing while it is created; retry.`);
}
