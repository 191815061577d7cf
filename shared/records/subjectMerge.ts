// Linking an alias to an object id (SPEC §4): records kept under the alias's own subject, because their
// events carried no object id, become the object id's. Everything of the alias's subject moves — records
// re-sealed under the object subject's key, packages re-wrapped, identifiers, a restriction; the alias
// subject keeps only its redirect. Only an alias's own subject is ever merged, and only into the one object
// subject that claimed it first, so two object ids are never merged. Resumable: every step can run again.
import type { TableClient } from '@azure/data-tables';

import type { SubjectKeyStore } from '../records/subjectKeys';
import type { RecordCategory } from '../vocabulary/categories';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import { lookupKeys, recordKeyOfRow, RECORDS_ONLY, recordsPartition, subjectRows } from './recordKeys';
import { isStatus, openContent, readRow, type RecordEntity } from './recordRows';
import type { RecordWriter } from './recordWriter';
import type { RestrictionStore } from './restrictions';
import type { SubjectIdentity } from './subjectIdentity';

/** Moves a subject's export packages to another subject (exports/packageStore.ts re-wraps their keys). */
export type PackageTransfer = (tenant: TenantScope, from: string, to: string) => Promise<void>;

interface LookupEntity {
  partitionKey: string;
  rowKey: string;
  subjectKey?: string;
  etag: string;
}

export class SubjectMerge {
  constructor(
    private readonly identity: SubjectIdentity,
    private readonly writer: RecordWriter,
    private readonly subjectKeys: SubjectKeyStore,
    private readonly restrictions: RestrictionStore,
    private readonly transferPackages: PackageTransfer,
  ) {}

  /**
   * Merges the alias subject into `target` (or into the subject that claimed it first). Returns the subject
   * it now belongs to.
   */
  async link(tenant: TenantScope, aliasSubject: string, target: string): Promise<string> {
    if (aliasSubject === target) return target;
    const records = await this.records(tenant);
    const owner = await this.claim(records, tenant, aliasSubject, target);
    await records.upsertEntity(
      {
        partitionKey: recordsPartition(tenant.tenantId, owner),
        rowKey: subjectRows.merged(aliasSubject),
        subjectKey: aliasSubject,
      },
      'Replace',
    );
    await this.moveRecords(tenant, records, aliasSubject, owner);
    await this.transferPackages(tenant, aliasSubject, owner);
    await this.restrictions.transfer(tenant, aliasSubject, owner);
    await this.identity.transferIdentifiers(tenant, aliasSubject, owner);
    // The alias subject's key stays until the object subject is erased (subjectErasure destroys it then):
    // an event that took the key just before the merge may still seal a record with it, which then follows
    // here and must still open.
    return owner;
  }

  /** `~linked` in the alias subject: the first claim wins, so concurrent links agree on one owner. */
  private async claim(records: TableClient, tenant: TenantScope, aliasSubject: string, target: string) {
    const partitionKey = recordsPartition(tenant.tenantId, aliasSubject);
    try {
      await records.createEntity({ partitionKey, rowKey: subjectRows.linked, subjectKey: target });
      return target;
    } catch (error) {
      if (!isStatus(error, 409)) throw error;
    }
    const claimed = await readRow<{ subjectKey: string }>(records, partitionKey, subjectRows.linked);
    return claimed?.subjectKey ?? target;
  }

  private async moveRecords(tenant: TenantScope, records: TableClient, from: string, to: string) {
    const fromPartition = recordsPartition(tenant.tenantId, from);
    let dataKey: Buffer | undefined;
    const lookups = await tenant.account.table(TABLES.recordLookup);
    for await (const row of records.listEntities<RecordEntity>({
      queryOptions: { filter: `PartitionKey eq '${fromPartition}' and ${RECORDS_ONLY}` },
    })) {
      const stored = { ...row, etag: row.etag };
      // Read once a row is there, never before: the first event of the alias creates its key just before
      // its row, so a key read earlier could miss a key that a row listed now was sealed with.
      dataKey ??= await this.subjectKeys.find(tenant, from);
      if (dataKey) {
        await this.writer.write(tenant, to, {
          category: row.category as RecordCategory,
          rowKey: row.rowKey,
          occurredAt: row.occurredAt,
          deletedAt: row.deletedAt,
          deviceKey: row.deviceKey,
          content: openContent(dataKey, row.sealed, fromPartition, row.rowKey),
        });
        // Moved, there already, or newer there: either way the record now lives in `to`.
        await this.repoint(lookups, tenant, row.rowKey, from, to);
      }
      // A row whose key is gone cannot be moved; it can no longer be read either, so it goes too.
      await this.writer.remove(tenant, from, stored);
    }
  }

  /** The record-id lookup follows the record, unless it points elsewhere already (a newer move). */
  private async repoint(lookups: TableClient, tenant: TenantScope, rowKey: string, from: string, to: string) {
    const keys = lookupKeys.record(tenant.tenantId, recordKeyOfRow(rowKey));
    for (let attempt = 0; attempt < 5; attempt++) {
      const lookup = await readRow<LookupEntity>(lookups, keys.partitionKey, keys.rowKey);
      if (lookup?.subjectKey !== undefined && lookup.subjectKey !== from) return;
      try {
        if (lookup) await lookups.updateEntity({ ...keys, subjectKey: to }, 'Merge', { etag: lookup.etag });
        else await lookups.createEntity({ ...keys, subjectKey: to });
        return;
      } catch (error) {
        if (!(isStatus(error, 409) || isStatus(error, 412) || isStatus(error, 404))) throw error;
      }
    }
    throw new Error('The record lookup kept changing concurrently.');
  }

  private records(tenant: TenantScope): Promise<TableClient> {
    return tenant.account.table(TABLES.records);
  }
}
