// Integration: guarded deletes on Azurite delete only the versions they meant, batched per partition.
import { randomUUID } from 'node:crypto';

import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { TableClient } from '@azure/data-tables';

import { deleteVersions, type RowVersion, submitInBatches } from '../../../shared/storage/tableBatches';
import { testConfig, testStorage } from '../../support/testStorage';

let batches = 0;
const counter: PipelinePolicy = {
  name: 'countBatches',
  sendRequest: (request, next) => {
    if (request.url.includes('$batch')) batches++;
    return next(request);
  },
};
const storage = testStorage({ tablePolicies: [{ policy: counter, position: 'perCall' }] });

async function freshTable(): Promise<TableClient> {
  return storage.geography('EU').table(`guarded${randomUUID().replaceAll('-', '').slice(0, 12)}`);
}

async function rowsOf(table: TableClient): Promise<string[]> {
  const keys: string[] = [];
  for await (const row of table.listEntities()) keys.push(`${row.partitionKey}/${row.rowKey}`);
  return keys.sort();
}

async function create(table: TableClient, partitionKey: string, rowKey: string): Promise<RowVersion> {
  const { etag } = await table.createEntity({ partitionKey, rowKey, v: 1 });
  return { partitionKey, rowKey, etag: etag! };
}

describe('deleteVersions', () => {
  it('deletes every row still at its version in one transaction per partition', async () => {
    const table = await freshTable();
    const rows = [
      ...(await Promise.all([1, 2, 3].map((n) => create(table, 'p1', `r${n}`)))),
      await create(table, 'p2', "it's ~ök"),
    ];
    batches = 0;
    const result = await deleteVersions(table, rows);
    expect(batches).toBe(2);
    expect(result.deleted).toHaveLength(4);
    expect(result.changed).toEqual([]);
    expect(await rowsOf(table)).toEqual([]);
  });

  it('leaves a row that was replaced after its version was taken, and deletes the rest', async () => {
    const table = await freshTable();
    const rows = await Promise.all(['a', 'b', 'c'].map((key) => create(table, 'p', key)));
    await table.updateEntity({ partitionKey: 'p', rowKey: 'b', v: 2 }, 'Replace');
    const result = await deleteVersions(table, rows);
    expect(result.changed).toEqual([{ partitionKey: 'p', rowKey: 'b' }]);
    expect(result.deleted.map((row) => row.rowKey).sort()).toEqual(['a', 'c']);
    expect(await rowsOf(table)).toEqual(['p/b']);
    expect((await table.getEntity<{ v: number }>('p', 'b')).v).toBe(2);
  });

  it('counts rows already gone as neither deleted nor changed', async () => {
    const table = await freshTable();
    const rows = await Promise.all(['a', 'b'].map((key) => create(table, 'p', key)));
    await table.deleteEntity('p', 'a');
    expect(await deleteVersions(table, rows)).toEqual({
      deleted: [{ partitionKey: 'p', rowKey: 'b' }],
      changed: [],
    });
  });

  it('refuses to run on a Table client without the guard, instead of deleting unconditionally', async () => {
    const table = await freshTable();
    const setting = testConfig().storage.geographies.EU;
    if (setting?.kind !== 'connectionString') throw new Error('the test Azurite has connection strings');
    const raw = TableClient.fromConnectionString(setting.connectionString, table.tableName, {
      allowInsecureConnection: true,
    });
    const row = await create(table, 'p', 'a');
    await table.updateEntity({ partitionKey: 'p', rowKey: 'a', v: 2 }, 'Replace');
    await expect(deleteVersions(raw, [row])).rejects.toThrow('no guardedDeletePolicy');
  });

  it('leaves plain batches unconditional', async () => {
    const table = await freshTable();
    await create(table, 'p', 'a');
    await table.updateEntity({ partitionKey: 'p', rowKey: 'a', v: 2 }, 'Replace');
    expect(await submitInBatches(table, [['delete', { partitionKey: 'p', rowKey: 'a' }]])).toBe(1);
    expect(await rowsOf(table)).toEqual([]);
  });
});

describe('deleteVersions, when the storage refuses wrongly', () => {
  it('tries again a delete refused with 412 while the row is still at the version meant', async () => {
    // The transaction and then the row's own delete are refused once each, the row unchanged all along.
    let refused = 0;
    const refusing: PipelinePolicy = {
      name: 'spuriousPreconditionFailed',
      sendRequest: async (request, next) => {
        const deleting = request.method === 'DELETE' || request.url.includes('$batch');
        if (deleting && refused < 2) {
          refused++;
          return { request, status: 412, headers: request.headers, bodyAsText: '{}' };
        }
        return next(request);
      },
    };
    // Per try, as a fault on the wire comes: inside the SDK's deserialisation, which turns it into an error.
    const flaky = testStorage({ tablePolicies: [{ policy: refusing, position: 'perRetry' }] });
    const name = `guarded${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const table = await flaky.geography('EU').table(name);
    const row = await create(table, 'p', 'a');
    expect(await deleteVersions(table, [row])).toEqual({
      deleted: [{ partitionKey: 'p', rowKey: 'a' }],
      changed: [],
    });
    expect(await rowsOf(table)).toEqual([]);
    expect(refused).toBe(2);
  });
});
