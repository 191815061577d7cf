// Re-keying expiry entries when rows are written again (ExpiryIndex.replace): a row's new entry and the old
// one it replaces share a transaction when they share a month's partition, so a check-in's replacements
// cost one request per partition; a crash after any write never leaves a row with fewer entries than due.
import {
  type ExpiryEntry,
  ExpiryIndex,
  expiryKeys,
  pairRemovals,
} from '../../../shared/retention/expiryIndex';
import { TABLES } from '../../../shared/storage/names';
import { InjectedCrash, StorageFaults } from '../../support/storageFaults';
import { testStorage, testTenantScope } from '../../support/testStorage';

const entry = (
  recordRow: string,
  day: string,
  action: 'delete' | 'anonymise' = 'delete',
  etag = 'W/"1"',
): ExpiryEntry => ({
  kind: 'record',
  day,
  action,
  category: action === 'delete' ? 'systemLog' : 'alert',
  subjectKey: 'subject',
  recordRow,
  etag,
});

describe('pairRemovals', () => {
  it("pairs a removal with its row's new entry of the same action in the same month, and no other", () => {
    const added = [entry('a', '2026-03-05'), entry('b', '2026-04-01'), entry('c', '2026-09-01', 'anonymise')];
    const removed: ExpiryEntry[] = [
      entry('a', '2026-03-04'), // same row, action and month: together
      entry('b', '2026-03-31'), // same row, the new entry is a month later: after
      entry('c', '2026-09-01', 'delete'), // same row and month, another action: after
      entry('d', '2026-03-04'), // no new entry of its row: after
      { kind: 'poisonedEvent', day: '2026-03-04', blobName: 'x' },
    ];
    const { together, after } = pairRemovals('t', added, removed);
    expect(together).toEqual([removed[0]]);
    expect(after).toEqual(removed.slice(1));
  });
});

describe('ExpiryIndex.replace on Azurite', () => {
  const faults = new StorageFaults();
  const storage = testStorage(faults.options());
  const index = new ExpiryIndex();

  async function storedKeys(tenantId: string): Promise<string[]> {
    const table = await storage.geography('EU').table(TABLES.expiry);
    const keys: string[] = [];
    for await (const row of table.listEntities({
      queryOptions: { filter: `PartitionKey ge '${tenantId}_' and PartitionKey lt '${tenantId}~'` },
    })) {
      keys.push(`${row.partitionKey}/${row.rowKey}`);
    }
    return keys.sort();
  }
  const keysOf = (tenantId: string, entries: ExpiryEntry[]) =>
    entries.map((e) => Object.values(expiryKeys(tenantId, e)).join('/')).sort();

  // Ten rows of a check-in replaced 8 hours later: five short-lived (due in March) and five alerts (due in
  // September), old and new entries in the same months.
  const before = [
    ...[0, 1, 2, 3, 4].map((n) => entry(`s${n}`, '2026-03-04', 'delete', 'W/"old"')),
    ...[0, 1, 2, 3, 4].map((n) => entry(`a${n}`, '2026-09-01', 'anonymise', 'W/"old"')),
  ];
  const after = [
    ...[0, 1, 2, 3, 4].map((n) => entry(`s${n}`, '2026-03-05', 'delete', 'W/"new"')),
    ...[0, 1, 2, 3, 4].map((n) => entry(`a${n}`, '2026-09-02', 'anonymise', 'W/"new"')),
  ];

  it('re-keys a check-in with one write per month partition, leaving exactly the new entries', async () => {
    const tenant = testTenantScope(storage);
    await index.add(tenant, before);
    faults.reset();
    await index.replace(tenant, after, before);
    expect(faults.writes).toBe(2);
    expect(await storedKeys(tenant.tenantId)).toEqual(keysOf(tenant.tenantId, after));
  });

  it('never leaves a row without its due entry, whichever write a process stops after', async () => {
    // Ten rows each moving to the next month: more partitions than are written at once, and the old entry
    // of each row in the partition of another row's new one. Removals may only follow every add.
    const month = (n: number) => `2026-${String(n + 1).padStart(2, '0')}-15`;
    const old = [...Array(10).keys()].map((n) => entry(`r${n}`, month(n), 'delete', 'W/"old"'));
    const moved = [...Array(10).keys()].map((n) => entry(`r${n}`, month(n + 1), 'delete', 'W/"new"'));
    for (let crashAt = 0; ; crashAt++) {
      const tenant = testTenantScope(storage);
      await index.add(tenant, old);
      faults.crashAfterWrite(crashAt, { dies: true });
      const crashed = await index.replace(tenant, moved, old).then(
        () => false,
        (error: unknown) => {
          if (!(error instanceof InjectedCrash)) throw error;
          return true;
        },
      );
      faults.reset();
      const stored = new Set(await storedKeys(tenant.tenantId));
      // Every row has its old entry or its new one (or both), never neither.
      for (const [n, before] of old.entries()) {
        const [oldKey] = keysOf(tenant.tenantId, [before]);
        const [newKey] = keysOf(tenant.tenantId, [moved[n]!]);
        expect({ row: n, crashAt, kept: stored.has(oldKey!) || stored.has(newKey!) }).toEqual({
          row: n,
          crashAt,
          kept: true,
        });
      }
      // The redelivery finishes it: exactly the new entries.
      await index.replace(tenant, moved, old);
      expect(await storedKeys(tenant.tenantId)).toEqual(keysOf(tenant.tenantId, moved));
      if (!crashed) break;
    }
  });
});
