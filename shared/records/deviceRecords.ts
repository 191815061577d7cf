// The records a device reported, found through the device lookup (`recordLookup`, partition
// `${tenantId}_d${device HMAC}`, as RecordStore.softDeleteDevice finds them): what an alert data request
// (SPEC §9) extracts or anonymises. Finding them costs requests in proportion to the device's records.
import { odata, type TableClient } from '@azure/data-tables';

import type { Pseudonymizer } from '../crypto/pseudonymizer';
import type { TenantScope } from '../residency/tenantDirectory';
import { TABLES } from '../storage/names';
import type { RecordCategory } from '../vocabulary/categories';
import type { PersonalDataRecord } from './personalDataRecord';
import { categoryOfRow, lookupKeys, recordsPartition } from './recordKeys';
import { deviceKeyOf, readRow, type RecordEntity, toRecord } from './recordRows';
import type { SubjectKeyStore } from './subjectKeys';

/** A record row of a device, as stored now: where it is and its version (what a guarded change acts on). */
export interface DeviceRecordRow {
  subjectKey: string;
  recordRow: string;
  deviceKey: string;
  etag: string;
  row: RecordEntity;
}

export class DeviceRecords {
  constructor(
    private readonly subjectKeys: SubjectKeyStore,
    private readonly pseudonymizer: Pseudonymizer,
  ) {}

  /**
   * The rows of one category reported with the device name (not case-sensitive), soft-deleted ones included
   * (they are still held). A lookup whose row has gone, or now holds another device's version, is passed by.
   */
  async *rowsOf(
    tenant: TenantScope,
    deviceName: string,
    category: RecordCategory,
  ): AsyncGenerator<DeviceRecordRow> {
    const deviceKey = deviceKeyOf(await this.pseudonymizer.keyFor(tenant), deviceName);
    const lookups = await this.table(tenant, TABLES.recordLookup);
    const records = await this.table(tenant, TABLES.records);
    const { partitionKey: devicePartition } = lookupKeys.device(tenant.tenantId, deviceKey, '', '');
    for await (const entry of lookups.listEntities<{ subjectKey?: string }>({
      queryOptions: { filter: odata`PartitionKey eq ${devicePartition}`, select: ['RowKey', 'subjectKey'] },
    })) {
      if (!entry.subjectKey) continue;
      const recordRow = entry.rowKey!.slice(entry.subjectKey.length + 1);
      if (categoryOfRow(recordRow) !== category) continue;
      const row = await readRow<RecordEntity>(
        records,
        recordsPartition(tenant.tenantId, entry.subjectKey),
        recordRow,
      );
      if (!row || row.deviceKey !== deviceKey) continue;
      yield { subjectKey: entry.subjectKey, recordRow, deviceKey, etag: row.etag, row };
    }
  }

  /** The decrypted record of a row; undefined once its subject's data key is destroyed (erased). */
  async open(tenant: TenantScope, found: DeviceRecordRow): Promise<PersonalDataRecord | undefined> {
    const dataKey = await this.subjectKeys.find(tenant, found.subjectKey);
    if (!dataKey) return undefined;
    try {
      return toRecord(found.row, dataKey, recordsPartition(tenant.tenantId, found.subjectKey));
    } finally {
      dataKey.fill(0);
    }
  }

  private table(tenant: TenantScope, name: string): Promise<TableClient> {
    return tenant.account.table(name);
  }
}
