// Integration: on Azurite, a read or delete of what is not there is an answer, and other failures still fail.
import { randomUUID } from 'node:crypto';

import type { TableClient } from '@azure/data-tables';

import { isAbsent, orAbsent } from '../../../shared/storage/absent';
import { testStorage } from '../../support/testStorage';

const storage = testStorage();

async function freshTable(): Promise<TableClient> {
  return storage.geography('EU').table(`absent${randomUUID().replaceAll('-', '').slice(0, 12)}`);
}

describe('orAbsent', () => {
  it('answers what the call answers when it is there', async () => {
    const table = await freshTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'r', value: 7 });

    expect(await orAbsent(table.getEntity<{ value: number }>('p', 'r'))).toMatchObject({ value: 7 });
  });

  it('answers undefined for a row that is not there, or no longer', async () => {
    const table = await freshTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'r' });
    await table.deleteEntity('p', 'r');

    expect(await orAbsent(table.getEntity('p', 'r'))).toBeUndefined();
    expect(await orAbsent(table.deleteEntity('p', 'r'))).toBeUndefined();
    expect(await orAbsent(table.getEntity('p', 'never written'))).toBeUndefined();
  });

  it('still fails on any other error', async () => {
    const table = await freshTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'r' });

    await expect(orAbsent(table.createEntity({ partitionKey: 'p', rowKey: 'r' }))).rejects.toMatchObject({
      statusCode: 409,
    });
    await expect(orAbsent(Promise.reject(new Error('no status')))).rejects.toThrow('no status');
  });
});

describe('isAbsent', () => {
  it('is true only for a storage 404', async () => {
    const table = await freshTable();
    const failure = (call: Promise<unknown>) =>
      call.then(
        () => undefined,
        (error: unknown) => error,
      );

    expect(isAbsent(await failure(table.getEntity('p', 'missing')))).toBe(true);
    await table.createEntity({ partitionKey: 'p', rowKey: 'r' });
    expect(isAbsent(await failure(table.createEntity({ partitionKey: 'p', rowKey: 'r' })))).toBe(false);
    expect(isAbsent(undefined)).toBe(false);
  });
});
