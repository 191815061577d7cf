// The storage layer's residency guard (SPEC §8): which tenant a Table or Blob write touches (pure), and, on
// Azurite through the service's own clients, that a write for a tenant anywhere but its geography is refused
// before it is sent, while the tenant's own geography takes it.
import { execSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';

import { odata, TableClient, TableTransaction } from '@azure/data-tables';

import { createServices, type Services } from '../../../shared/composition';
import {
  blobWriteTarget,
  ResidencyViolation,
  tableWriteTarget,
} from '../../../shared/storage/residencyGuard';
import { TABLES } from '../../../shared/storage/names';
import { testConfig } from '../../support/testStorage';

const TABLE = 'http://127.0.0.1:10002/privacyeu';
const BLOB = 'http://127.0.0.1:10000/privacyeu';
const T1 = '11111111-1111-1111-1111-111111111111';
const T2 = '22222222-2222-2222-2222-222222222222';

describe('tableWriteTarget', () => {
  it('lets reads and table creation through', () => {
    expect(tableWriteTarget('GET', `${TABLE}/records()?$filter=x`, undefined)).toEqual({ kind: 'read' });
    expect(tableWriteTarget('POST', `${TABLE}/Tables`, '{"TableName":"records"}')).toEqual({ kind: 'read' });
  });

  it('names the tenant of a keyed write, from the URL or the body', () => {
    const url = `${TABLE}/records(PartitionKey='${T1}_abc',RowKey='r1')`;
    expect(tableWriteTarget('PUT', url, `{"PartitionKey":"${T1}_abc","RowKey":"r1"}`)).toEqual({
      kind: 'tenant',
      tenantId: T1,
    });
    expect(tableWriteTarget('DELETE', url, undefined)).toEqual({ kind: 'tenant', tenantId: T1 });
    expect(tableWriteTarget('POST', `${TABLE}/requests`, `{"PartitionKey":"${T2}","RowKey":"x"}`)).toEqual({
      kind: 'tenant',
      tenantId: T2,
    });
    // Quotes in keys are doubled and percent-encoded in URLs.
    expect(
      tableWriteTarget('MERGE', `${TABLE}/t(PartitionKey='${T1}_it%27%27s',RowKey='a')`, undefined),
    ).toEqual({
      kind: 'tenant',
      tenantId: T1,
    });
  });

  it('refuses a table deletion, a write naming no tenant, and a body that disagrees with its URL', () => {
    expect(tableWriteTarget('DELETE', `${TABLE}/Tables('records')`, undefined).kind).toBe('refused');
    expect(tableWriteTarget('POST', `${TABLE}/records`, '{"RowKey":"x"}').kind).toBe('refused');
    expect(
      tableWriteTarget(
        'PUT',
        `${TABLE}/records(PartitionKey='${T1}_a',RowKey='r')`,
        `{"PartitionKey":"${T2}_a"}`,
      ),
    ).toEqual({ kind: 'refused', reason: 'a write that names 2 tenants' });
  });

  it('reads every part of a batch: one tenant passes, two are refused', () => {
    const part = (method: string, pk: string, body?: string) =>
      [
        '--changeset_1',
        'Content-Type: application/http',
        '',
        `${method} ${TABLE}/records(PartitionKey='${pk}',RowKey='r') HTTP/1.1`,
        'Accept: application/json',
        '',
        ...(body ? [body] : []),
      ].join('\r\n');
    const one = [
      part('PUT', `${T1}_a`, `{"PartitionKey":"${T1}_a","RowKey":"r"}`),
      part('DELETE', `${T1}_a`),
    ];
    expect(tableWriteTarget('POST', `${TABLE}/$batch`, one.join('\r\n'))).toEqual({
      kind: 'tenant',
      tenantId: T1,
    });
    const two = [...one, part('DELETE', `${T2}_a`)];
    expect(tableWriteTarget('POST', `${TABLE}/$batch`, two.join('\r\n')).kind).toBe('refused');
    expect(tableWriteTarget('POST', `${TABLE}/$batch`, undefined).kind).toBe('refused');
  });
});

describe('blobWriteTarget', () => {
  it('names the tenant folder of a blob write and lets container creation through', () => {
    expect(
      blobWriteTarget('PUT', `${BLOB}/export-packages/${T1}/req/1.zip.enc?comp=block&blockid=x`, BLOB),
    ).toEqual({
      kind: 'tenant',
      tenantId: T1,
    });
    expect(blobWriteTarget('DELETE', `${BLOB}/poisoned-events/${T2}/2026-01-01/x`, BLOB)).toEqual({
      kind: 'tenant',
      tenantId: T2,
    });
    expect(blobWriteTarget('PUT', `${BLOB}/export-packages?restype=container`, BLOB)).toEqual({
      kind: 'read',
    });
    expect(blobWriteTarget('GET', `${BLOB}/export-packages/${T1}/x`, BLOB)).toEqual({ kind: 'read' });
  });

  it('lets the request for a user delegation key through (download links under managed identity)', () => {
    expect(blobWriteTarget('POST', `${BLOB}/?restype=service&comp=userdelegationkey`, BLOB)).toEqual({
      kind: 'read',
    });
    expect(blobWriteTarget('POST', `${BLOB}/?restype=service&comp=properties`, BLOB).kind).toBe('refused');
  });

  it('refuses container deletion and blobs outside a tenant folder', () => {
    expect(blobWriteTarget('DELETE', `${BLOB}/export-packages?restype=container`, BLOB).kind).toBe('refused');
    expect(blobWriteTarget('PUT', `${BLOB}/export-packages/loose.bin`, BLOB).kind).toBe('refused');
    expect(blobWriteTarget('PUT', `http://elsewhere/other/c/${T1}/x`, BLOB).kind).toBe('refused');
  });
});

describe('the guard on the service clients (Azurite)', () => {
  let services: Services;
  let tenantId: string;
  beforeAll(async () => {
    services = createServices(testConfig());
    tenantId = randomUUID();
    await services.directory.provision({ tenantId, countryCode: 'DE', displayName: 'Guarded GmbH' });
  });

  const rawEntity = async (geography: 'EU' | 'APAC', partitionKey: string) => {
    const raw = TableClient.fromConnectionString(process.env[`STORAGE_${geography}`]!, TABLES.restrictions, {
      allowInsecureConnection: true,
    });
    const found = [];
    for await (const entity of raw.listEntities({
      queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` },
    }))
      found.push(entity);
    return found;
  };

  it('refuses a table write for the tenant in another geography, and nothing arrives there', async () => {
    const apac = await services.storage.geography('APAC').table(TABLES.restrictions);
    const entity = { partitionKey: tenantId, rowKey: 'attempt', note: 'misplaced' };
    await expect(apac.upsertEntity(entity, 'Replace')).rejects.toBeInstanceOf(ResidencyViolation);
    await expect(apac.createEntity(entity)).rejects.toBeInstanceOf(ResidencyViolation);
    const batch = new TableTransaction();
    batch.upsertEntity(entity, 'Replace');
    await expect(apac.submitTransaction(batch.actions)).rejects.toBeInstanceOf(ResidencyViolation);
    expect(await rawEntity('APAC', tenantId)).toEqual([]);

    // Its own geography takes the same write.
    const eu = await services.storage.geography('EU').table(TABLES.restrictions);
    await eu.upsertEntity(entity, 'Replace');
    expect(await rawEntity('EU', tenantId)).toHaveLength(1);
    await eu.deleteEntity(tenantId, 'attempt');
  });

  it('refuses a blob write in another geography and a write for a tenant that does not exist', async () => {
    const apac = await services.storage.geography('APAC').container('export-packages');
    await expect(apac.getBlockBlobClient(`${tenantId}/x.bin`).upload('data', 4)).rejects.toBeInstanceOf(
      ResidencyViolation,
    );
    expect(await apac.getBlobClient(`${tenantId}/x.bin`).exists()).toBe(false);

    const stranger = randomUUID();
    const eu = await services.storage.geography('EU').table(TABLES.restrictions);
    await expect(eu.upsertEntity({ partitionKey: stranger, rowKey: 'r' })).rejects.toBeInstanceOf(
      ResidencyViolation,
    );
    expect(await rawEntity('EU', stranger)).toEqual([]);
  });

  it('refuses key creation for the tenant in another geography', async () => {
    const apacKeys = services.directory.scopeOf({
      ...(await services.directory.get(tenantId))!,
      geography: 'APAC',
    }).keys;
    await expect(apacKeys.wrapKey(tenantId, Buffer.alloc(32))).rejects.toBeInstanceOf(ResidencyViolation);
  });

  it('keeps the unguarded mover accounts to the migration module', () => {
    // Only shared/migration may write outside a tenant's geography.
    const users = execSync('grep -rl "moverAccount(" shared functions local || true', { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .sort();
    expect(users).toEqual(['shared/migration/residencyMover.ts', 'shared/storage/storageAccounts.ts']);
  });
});
