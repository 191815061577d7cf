// What storage holds for some tenants, read with the raw SDKs: every row whose PartitionKey starts with one of
// their ids in every table of every account, and every blob whose name does in every container, each with its
// ETag and time, plus every container's ETag. Two snapshots that are equal prove nothing of theirs changed.
import { odata, TableClient, TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';

import type { StorageAccountSetting } from '../../shared/config';

export interface StorageSnapshot {
  /** `account/table/PartitionKey/RowKey` → `etag timestamp`. */
  rows: Map<string, string>;
  /** `account/container/blob` → `etag lastModified`. */
  blobs: Map<string, string>;
  /** `account/container` → `etag`. */
  containers: Map<string, string>;
}

/** Accounts by name, as the configuration gives them (connection strings: the test Azurite). */
export type AccountConnections = Record<string, StorageAccountSetting>;

export async function snapshotTenants(
  accounts: AccountConnections,
  tenantIds: readonly string[],
): Promise<StorageSnapshot> {
  const snapshot: StorageSnapshot = { rows: new Map(), blobs: new Map(), containers: new Map() };
  await Promise.all(
    Object.entries(accounts).map(async ([name, setting]) => {
      if (setting.kind !== 'connectionString') throw new Error(`Account ${name} has no connection string.`);
      await Promise.all([
        snapshotTables(name, setting.connectionString, tenantIds, snapshot),
        snapshotBlobs(name, setting.connectionString, tenantIds, snapshot),
      ]);
    }),
  );
  return snapshot;
}

/** Keys present on one side only or whose version differs, for a readable failure. */
export function differences(before: StorageSnapshot, after: StorageSnapshot): string[] {
  const changes: string[] = [];
  for (const kind of ['rows', 'blobs'] as const) {
    for (const [key, version] of after[kind]) {
      const was = before[kind].get(key);
      if (was === undefined) changes.push(`${kind}: added ${key}`);
      else if (was !== version) changes.push(`${kind}: changed ${key}`);
    }
    for (const key of before[kind].keys()) {
      if (!after[kind].has(key)) changes.push(`${kind}: removed ${key}`);
    }
  }
  // Other test files may create containers meanwhile; a container that was there must be as it was.
  for (const [key, version] of before.containers) {
    const now = after.containers.get(key);
    if (now !== version) changes.push(`containers: ${now === undefined ? 'removed' : 'changed'} ${key}`);
  }
  return changes.sort();
}

/** Every string that starts with `prefix` is in [prefix, prefix with its last character raised). */
function prefixRange(prefix: string): { from: string; to: string } {
  const last = prefix.charCodeAt(prefix.length - 1);
  return { from: prefix, to: `${prefix.slice(0, -1)}${String.fromCharCode(last + 1)}` };
}

async function snapshotTables(
  account: string,
  connectionString: string,
  tenantIds: readonly string[],
  snapshot: StorageSnapshot,
) {
  const options = { allowInsecureConnection: true };
  const service = TableServiceClient.fromConnectionString(connectionString, options);
  const tables: string[] = [];
  for await (const table of service.listTables()) if (table.name) tables.push(table.name);
  await Promise.all(
    tables.flatMap((table) =>
      tenantIds.map(async (tenantId) => {
        const client = TableClient.fromConnectionString(connectionString, table, options);
        const { from, to } = prefixRange(tenantId);
        const filter = odata`PartitionKey ge ${from} and PartitionKey lt ${to}`;
        for await (const row of client.listEntities({ queryOptions: { filter } })) {
          snapshot.rows.set(
            `${account}/${table}/${row.partitionKey}/${row.rowKey}`,
            `${row.etag} ${String(row.timestamp)}`,
          );
        }
      }),
    ),
  );
}

async function snapshotBlobs(
  account: string,
  connectionString: string,
  tenantIds: readonly string[],
  snapshot: StorageSnapshot,
) {
  const service = BlobServiceClient.fromConnectionString(connectionString);
  const containers: string[] = [];
  for await (const container of service.listContainers()) {
    containers.push(container.name);
    snapshot.containers.set(`${account}/${container.name}`, container.properties.etag);
  }
  await Promise.all(
    containers.flatMap((container) =>
      tenantIds.map(async (tenantId) => {
        const client = service.getContainerClient(container);
        for await (const blob of client.listBlobsFlat({ prefix: tenantId })) {
          snapshot.blobs.set(
            `${account}/${container}/${blob.name}`,
            `${blob.properties.etag} ${blob.properties.lastModified.toISOString()}`,
          );
        }
      }),
    ),
  );
}
