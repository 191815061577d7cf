// Proves on every run that the raw seeder writes what RecordStore.upsert writes: the same subjects and
// records go through upsert into the product's tables and through the seeder into scratch tables of the
// same account, and every row must match: keys, property names, clear values, and the sealed contents
// (each side opened with its own subject data key, which is random per write). Two subjects: one with an
// object id (its UPN an alias held by it) and one known only by aliases (held by the UPN's own subject).
// Expiry entries carry the ETag of the record row they were made for, which differs by nature between the
// two writes: entries are compared without it, and on each side every record entry's ETag must be that of
// the record row it names on that side.
import type { TableClient, TableEntityResult } from '@azure/data-tables';

import { open } from '../shared/crypto/sealedBox';
import { SUBJECT_KEY_ROW } from '../shared/records/subjectKeys';
import { recordsPartition } from '../shared/records/recordKeys';
import type { UpsertInput } from '../shared/records/recordStore';
import type { ExpiryEntry } from '../shared/retention/expiryIndex';
import type { DataSubject } from '../shared/vocabulary/dataSubject';
import { TABLES } from '../shared/storage/names';
import { benchSubject, random, subjectRecords } from './dataset';
import type { Bench } from './environment';

const SCRATCH = { records: 'benchLayoutRecords', lookups: 'benchLayoutLookup', expiry: 'benchLayoutExpiry' };

type Row = TableEntityResult<Record<string, unknown>>;
type Side = { records: Row[]; lookups: Row[]; expiry: Row[] };
/** Values that differ by nature between two writes: compared by presence only (sealed: by content). */
const PER_WRITE = new Set(['value', 'createdAt', 'sealed']);

export async function checkSeederLayout(bench: Bench, recordBytes: number) {
  const tenant = await bench.newTenant('CH');
  const rng = random(7);
  const owner = benchSubject(rng, 'layout.check');
  const aliasOwner = benchSubject(rng, 'layout.alias');
  const aliasOnly: DataSubject = { upn: aliasOwner.subject.upn, email: 'layout.alias.mail@contoso.com' };
  const subjects: { subject: DataSubject; records: UpsertInput[] }[] = [
    { subject: owner.subject, records: subjectRecords(rng, owner, 25, recordBytes, 'layout') },
    {
      subject: aliasOnly,
      records: subjectRecords(rng, aliasOwner, 12, recordBytes, 'alias').map((record) => ({
        ...record,
        subject: aliasOnly,
      })),
    },
  ];
  for (const { records } of subjects) {
    for (const record of records) await bench.services.records.upsert(tenant, record);
  }
  const seeder = await bench.seeder(tenant, 4, SCRATCH);
  await seeder.seed(subjects.length, (index) => subjects[index]!);

  const product: Side = {
    records: await rowsOf(await tenant.account.table(TABLES.records), tenant.tenantId),
    lookups: await rowsOf(await tenant.account.table(TABLES.recordLookup), tenant.tenantId),
    expiry: await rowsOf(await tenant.account.table(TABLES.expiry), tenant.tenantId),
  };
  const seeded: Side = {
    records: await rowsOf(await bench.rawTable(tenant.geography, SCRATCH.records), tenant.tenantId),
    lookups: await rowsOf(await bench.rawTable(tenant.geography, SCRATCH.lookups), tenant.tenantId),
    expiry: await rowsOf(await bench.rawTable(tenant.geography, SCRATCH.expiry), tenant.tenantId),
  };
  /** Each subject's data key, by partition. */
  const keysOf = async (rows: Row[]) => {
    const keys = new Map<string, Buffer>();
    for (const row of rows.filter((r) => r.rowKey === SUBJECT_KEY_ROW)) {
      const key = await tenant.keys.unwrapKey(tenant.tenantId, {
        provider: String(row.provider),
        keyId: String(row.keyId),
        value: String(row.value),
      });
      keys.set(String(row.partitionKey), key);
    }
    if (keys.size !== subjects.length)
      throw new Error(`Layout check: ${keys.size} subject key rows, not ${subjects.length}.`);
    return keys;
  };
  const productKeys = await keysOf(product.records);
  const seededKeys = await keysOf(seeded.records);
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
        const same =
          table === 'expiry' && name === 'entry'
            ? withoutEtag(value) === withoutEtag(b[name])
            : JSON.stringify(value) === JSON.stringify(b[name]);
        if (!same) problems.push(`${table} ${key}: ${name} differs`);
      }
      if (typeof a.sealed === 'string' && typeof b.sealed === 'string') {
        const aad = `${a.partitionKey}|${a.rowKey}`;
        const productKey = productKeys.get(String(a.partitionKey));
        const seededKey = seededKeys.get(String(b.partitionKey));
        if (!productKey || !seededKey) {
          problems.push(`${table} ${key}: no subject key for its partition`);
        } else if (!open(productKey, a.sealed, aad).equals(open(seededKey, b.sealed, aad))) {
          problems.push(`${table} ${key}: sealed contents differ`);
        }
      }
    }
  }
  const etagsChecked = {
    upsert: checkEntryEtags('upsert', product, tenant.tenantId, problems),
    seeder: checkEntryEtags('the seeder', seeded, tenant.tenantId, problems),
  };
  if (etagsChecked.upsert === 0) problems.push('expiry: upsert wrote no record entries to check');
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
    subjects: subjects.length,
    records: subjects.reduce((sum, s) => sum + s.records.length, 0),
    rowsCompared: product.records.length + product.lookups.length + product.expiry.length,
    /** Record expiry entries whose ETag is that of the record row they name, on each side. */
    entryEtagsChecked: etagsChecked,
    otherTablesUpsertWrote: notSeeded,
  };
}

/**
 * On one side: every record entry must carry the ETag of the record row it names there (what the purge's
 * conditional delete is guarded by). Returns how many entries were checked.
 */
function checkEntryEtags(side: string, rows: Side, tenantId: string, problems: string[]): number {
  const etags = new Map(rows.records.map((row) => [`${row.partitionKey}|${row.rowKey}`, row.etag]));
  let checked = 0;
  for (const row of rows.expiry) {
    const entry = JSON.parse(String(row.entry)) as ExpiryEntry;
    if (entry.kind !== 'record') continue;
    const named = `${recordsPartition(tenantId, entry.subjectKey)}|${entry.recordRow}`;
    const etag = etags.get(named);
    if (etag === undefined) problems.push(`expiry ${row.rowKey} (${side}): names no record row`);
    else if (entry.etag !== etag)
      problems.push(
        `expiry ${row.rowKey} (${side}): etag ${entry.etag ?? 'missing'} is not its row's ${etag}`,
      );
    else checked++;
  }
  return checked;
}

/** An entry's JSON without its ETag (property order kept: the rest must be written identically). */
function withoutEtag(entry: unknown): string {
  const { etag: _etag, ...rest } = JSON.parse(String(entry)) as Record<string, unknown>;
  return JSON.stringify(rest);
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
