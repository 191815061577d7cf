// What a scenario leaves in a tenant, without what differs by nature between two runs (ids, times, ETags,
// hashes): the end states the crash and fault suites compare with a clean run's.
import type { TableClient } from '@azure/data-tables';

import type { Services } from '../../shared/composition';
import { anonymousPartition } from '../../shared/records/recordRetention';
import type { DataSubject } from '../../shared/vocabulary/dataSubject';
import type { TenantScope } from '../../shared/residency/tenantDirectory';
import { CONTAINERS, TABLES } from '../../shared/storage/names';

export interface Scenario {
  tenant: TenantScope;
  people: DataSubject[];
  requestId?: string;
}

async function rows(table: TableClient, tenantId: string, filter = ''): Promise<Record<string, unknown>[]> {
  const found: Record<string, unknown>[] = [];
  for await (const row of table.listEntities({
    queryOptions: { filter: `PartitionKey ge '${tenantId}' and PartitionKey lt '${tenantId}~'${filter}` },
  })) {
    found.push(row);
  }
  return found;
}

/** What a path leaves, without what differs by nature between two runs (ids, times, ETags, hashes). */
export async function stateOf(helper: Services, { tenant, people }: Scenario) {
  const records = [];
  for (const subject of people) {
    const { subjectKey } = await helper.records.subjectOf(tenant, subject);
    const deleted: string[] = [];
    for (const category of ['directory', 'device', 'usage', 'systemLog', 'alert'] as const) {
      for await (const record of helper.records.list(tenant, subjectKey, category)) {
        if (record.deletedAt) deleted.push(category);
      }
    }
    records.push({ counts: await helper.records.countByCategory(tenant, subjectKey), deleted });
  }
  const requests = (await helper.requests.list(tenant, {}, { top: 50 })).items
    .map((r) => ({
      type: r.type,
      status: r.status,
      result: stable(r.result),
      discovery: r.discovery?.counts,
    }))
    .sort((a, b) => a.type.localeCompare(b.type));
  const audit = (await helper.audit.list(tenant, {}, { top: 200 })).items.map((e) => e.action).sort();
  const expiryTable = await tenant.account.table(TABLES.expiry);
  const expiry = (await rows(expiryTable, tenant.tenantId))
    .map((row) => JSON.parse(row.entry as string) as { kind: string; action?: string; day: string })
    .map((e) => `${e.kind}:${e.action ?? ''}:${e.day}`)
    .sort();
  const lookups = (await rows(await tenant.account.table(TABLES.recordLookup), tenant.tenantId))
    .map((row) => String(row.partitionKey).charAt(tenant.tenantId.length + 1))
    .reduce<Record<string, number>>((count, kind) => ({ ...count, [kind]: (count[kind] ?? 0) + 1 }), {});
  const recordRows = await rows(await tenant.account.table(TABLES.records), tenant.tenantId);
  const container = await tenant.account.container(CONTAINERS.exportPackages);
  let blobs = 0;
  for await (const _blob of container.listBlobsFlat({ prefix: `${tenant.tenantId}/` })) blobs++;
  return {
    records,
    requests,
    audit,
    auditValid: (await helper.audit.verify(tenant)).valid,
    expiry,
    lookups,
    packageRows: recordRows.filter((row) => String(row.rowKey).startsWith('~pkg_')).length,
    anonymous: recordRows.filter((row) => row.partitionKey === anonymousPartition(tenant.tenantId)).length,
    blobs,
    restrictions: (await helper.restrictions.list(tenant, { top: 50 })).items.length,
  };
}

/** A request's result without what differs between runs. */
function stable(result: Record<string, unknown> | undefined) {
  if (!result) return undefined;
  const { completedAt: _at, package: pkg, ...rest } = result as { completedAt?: string; package?: unknown };
  return { ...rest, ...(pkg ? { package: true } : {}) };
}
