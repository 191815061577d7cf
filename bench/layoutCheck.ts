// Proves on every run that the raw seeder writes what RecordStore.upsert writes: the same subject and
// records go through upsert into the product's tables and through the seeder into scratch tables of the
// same account, and every row must match: keys, property names, clear values, and the sealed contents
// (each side opened with its own subject data key, which is random per write).
import type { TableClient, TableEntityResult } from '@azure/data-tables';

import { open } from '../shared/crypto/sealedBox';
import { SUBJECT_KEY_ROW } from '../shared/crypto/subjectKeys';
import { TABLES } from '../shared/storage/names';
import { benchSubject, random, subjectRecords } from './dataset';
import type { Bench } from './environment';

const SCRATCH = { records: 'benchLayoutRecords', lookups: 'benchLayoutLookup', expiry: 'benchLayoutExpiry' };

type Row = TableEntityResult<Record<string, unknown>>;
/** Values that differ by nature between two writes: compared by presence only (sealed: by content). */
const PER_WRITE = new Set(['value', 'createdAt', 'sealed']);

export async function checkSeederLayout(bench: Bench, recordBytes: number) {
  const tenant = await bench.newTenant('CH');
  const rng = random(7);
  const owner = benchSubject(rng, 'layout.check');
  const records = subjectRecords(rng, owner, 25, recordBytes, 'layout');
  for (const record of records) await bench.services.records.upsert(tenant, record);
  const seeder = await bench.seeder(tenant, 4, SCRATCH);
  await seeder.seed(1, () => ({ subject: owner.subject, records }));

  const product = {
    records: await rowsOf(await tenant.account.table(TABLES.records), tenant.tenantId),
    lookups: await rowsOf(await tenant.account.table(TABLES.recordLookup), tenant.tenantId),
    expiry: await rowsOf(await tenant.account.table(TABLES.expiry), tenant.tenantId),
  };
  const seeded = {
    records: await rowsOf(await bench.rawTable(tenant.geography, SCRATCH.records), tenant.tenantId),
    lookups: await rowsOf(await bench.rawTable(tenant.geography, SCRATCH.lookups), tenant.tenantId),
    expiry: await rowsOf(await bench.rawTable(tenant.geography, SCRATCH.expiry), tenant.tenantId),
  };
  const keyOf = async (rows: Row[]) => {
    const row = rows.find((r) => r.rowKey === SUBJECT_KEY_ROW);
    if (!row) throw new Error('Layout check: no subject key row.');
    return bench.keyProvider.unwrapKey(tenant.tenantId, {
      provider: String(row.provider),
      keyId: String(row.keyId),
      value: String(row.value),
    });
  };
  const productKey = await keyOf(product.records);
  const seededKey = await keyOf(seeded.records);
  const problems: string[] = [];
  for (const table of ['records', 'lookups', 'expiry'] as const) {
    const left = new Map(product[table].map((row) => [`${row.partitionKey}|${row.rowKey}`, row]));
    const right = new Map(seeded[table].map((row) => [`${row.partitionKey}|${row.rowKey}`, row]));
    for (const key of new Set([...left.keys(), ...right.keys()])) {
      const a = left.get(key);
      const b = right.get(key);
      if (!a || !b) {
        problems.push(`${table} ${key}: only ${a ? 'upsert' : 'the seeder'} wrote it`);
        continue;
      }
      const names = (row: Row) => Object.keys(clean(row)).sort().join(',');
      if (names(a) !== names(b)) problems.push(`${table} ${key}: properties ${names(a)} vs ${names(b)}`);
      for (const [name, value] of Object.entries(clean(a))) {
        if (PER_WRITE.has(name)) continue;
        if (JSON.stringify(value) !== JSON.stringify(b[name]))
          problems.push(`${table} ${key}: ${name} differs`);
      }
      if (typeof a.sealed === 'string' && typeof b.sealed === 'string') {
        const aad = `${a.partitionKey}|${a.rowKey}`;
        if (!open(productKey, a.sealed, aad).equals(open(seededKey, b.sealed, aad))) {
          problems.push(`${table} ${key}: sealed contents differ`);
        }
      }
    }
  }
  if (problems.length > 0)
    throw new Error(`The seeder's layout differs from upsert's:\n${problems.join('\n')}`);

  // Rows upsert wrote in other tables (something added since this seeder was written) are reported, not
  // seeded: discovery and export read only `records` and `recordLookup`.
  const known = new Set<string>([
    TABLES.records,
    TABLES.recordLookup,
    TABLES.expiry,
    TABLES.tenantSecrets,
    ...Object.values(SCRATCH),
  ]);
  const notSeeded: Record<string, number> = {};
  for await (const table of bench.rawTables(tenant.geography).listTables()) {
    if (!table.name || known.has(table.name)) continue;
    const rows = await rowsOf(await bench.rawTable(tenant.geography, table.name), tenant.tenantId);
    if (rows.length > 0) notSeeded[table.name] = rows.length;
  }
  return {
    identical: true,
    records: records.length,
    rowsCompared: product.records.length + product.lookups.length + product.expiry.length,
    otherTablesUpsertWrote: notSeeded,
  };
}

async function rowsOf(table: TableClient, tenantId: string): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const row of table.listEntities<Record<string, unknown>>()) {
    if (row.partitionKey?.startsWith(tenantId)) rows.push(row);
  }
  return rows;
}

function clean(row: Row): Record<string, unknown> {
  const { etag: _etag, timestamp: _timestamp, ...rest } = row;
  return rest;
}
