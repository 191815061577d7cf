// What an account holds of one tenant, read through the raw Azure SDK (not the service's clients): rows per
// table of every table the account has, blobs per container of every container, under the tenant's keys.
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';

import { tenantPartitionFilter } from '../../shared/storage/tenantRows';

/** Counts by table or container name; tables and containers without anything of the tenant are left out. */
export async function tenantFootprint(geography: string, tenantId: string): Promise<Record<string, number>> {
  const connection = process.env[`STORAGE_${geography}`]!;
  const found: Record<string, number> = {};
  const options = { allowInsecureConnection: true };
  for await (const table of TableServiceClient.fromConnectionString(connection, options).listTables()) {
    const client = TableClient.fromConnectionString(connection, table.name!, options);
    let rows = 0;
    for await (const _ of client.listEntities({ queryOptions: { filter: tenantPartitionFilter(tenantId) } }))
      rows++;
    if (rows) found[table.name!] = rows;
  }
  const blobs = BlobServiceClient.fromConnectionString(connection);
  for await (const container of blobs.listContainers()) {
    let count = 0;
    for await (const _ of blobs.getContainerClient(container.name).listBlobsFlat({ prefix: `${tenantId}/` }))
      count++;
    if (count) found[container.name] = count;
  }
  return found;
}
