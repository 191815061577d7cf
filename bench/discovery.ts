// (a) Discovery cost: subjectOf (the subject a request names: its aliases' rows read) + countByCategory for a
// subject with 100 records, in a tenant of 10k and one of 100k records, through a fresh RecordStore each
// time (its pseudonymisation key already held, as an instance that has seen the tenant holds it). Both
// tenants live in the same account and tables, so what Azurite itself costs per query (it scans the whole
// table) is the same for both.
import { odata } from '@azure/data-tables';

import { Pseudonymizer } from '../shared/crypto/pseudonymizer';
import { lookupKeys, recordsPartition, rowKeyRange } from '../shared/records/recordKeys';
import { createRecordServices } from '../shared/records/recordServices';
import type { TenantScope } from '../shared/residency/tenantDirectory';
import { TABLES } from '../shared/storage/names';
import { benchSubject, random, subjectRecords } from './dataset';
import type { Bench } from './environment';
import type { SeedStats } from './rawSeeder';
import { type RequestCounts, totalRequests } from './requestCounter';
import type { Scale } from './scale';
import { median, now, progress, round } from './util';

interface TenantResult {
  tenantRecords: number;
  subjects: number;
  requests: number;
  requestsByService: RequestCounts;
  ms: number;
  msRuns: number[];
  /** The same queries through the raw SDK (median): what Azurite itself takes for them. */
  floorMs: number;
  found: { subjectKeys: number; records: number };
}

export async function discoveryScenario(bench: Bench, scale: Scale) {
  const s = scale.discovery;
  const owner = benchSubject(random(1), 'adele.vance');
  const seeding: Record<string, SeedStats & { subjectUpsertMs: number }> = {};
  const tenants: Record<'small' | 'large', { scope: TenantScope; records: number; subjects: number }> = {
    small: { scope: await bench.newTenant('DE'), records: s.smallTenantRecords, subjects: 0 },
    large: { scope: await bench.newTenant('DE'), records: s.largeTenantRecords, subjects: 0 },
  };
  for (const [name, tenant] of Object.entries(tenants)) {
    const others = tenant.records - s.subjectRecords;
    const count = Math.ceil(others / s.recordsPerOtherSubject);
    tenant.subjects = count + 1;
    progress(`discovery: seeding the ${name} tenant, ${others} records of ${count} other subjects`);
    const seeder = await bench.seeder(tenant.scope, scale.seedConcurrency);
    const rng = random(name === 'small' ? 11 : 12);
    const stats = await seeder.seed(count, (index) => {
      const subject = benchSubject(rng, `${name}.user${index}`);
      const n = Math.min(s.recordsPerOtherSubject, others - index * s.recordsPerOtherSubject);
      return {
        subject: subject.subject,
        records: subjectRecords(rng, subject, n, scale.recordBytes, `o${index}`),
      };
    });
    // The subject itself goes through the real write path.
    const started = now();
    for (const record of subjectRecords(random(2), owner, s.subjectRecords, scale.recordBytes, 'adele')) {
      await bench.services.records.upsert(tenant.scope, record);
    }
    seeding[name] = { ...stats, subjectUpsertMs: round(now() - started) };
    progress(
      `discovery: ${name} tenant seeded in ${(stats.ms / 1000).toFixed(1)} s (${stats.transactions} transactions)`,
    );
  }

  const pseudonymizers = new Map<string, Pseudonymizer>();
  for (const tenant of Object.values(tenants)) {
    const pseudonymizer = new Pseudonymizer();
    await pseudonymizer.keyFor(tenant.scope);
    pseudonymizers.set(tenant.scope.tenantId, pseudonymizer);
  }
  const runs: Record<
    'small' | 'large',
    { ms: number; counts: RequestCounts; keys: number; records: number }[]
  > = {
    small: [],
    large: [],
  };
  const floorRuns: Record<'small' | 'large', number[]> = { small: [], large: [] };
  const rawLookups = await bench.rawTable(tenants.small.scope.geography, TABLES.recordLookup);
  const rawRecords = await bench.rawTable(tenants.small.scope.geography, TABLES.records);
  for (let repetition = 0; repetition < s.repetitions; repetition++) {
    // Alternating, so that drift in Azurite or the machine touches both alike.
    const order = repetition % 2 === 0 ? (['small', 'large'] as const) : (['large', 'small'] as const);
    for (const name of order) {
      const tenant = tenants[name].scope;
      // A new store each time: nothing of the subject is cached (its tenant's pseudonymiser key is).
      const fresh = createRecordServices({
        transferPackages: async () => undefined,
        pseudonymizer: pseudonymizers.get(tenant.tenantId)!,
      });
      const store = fresh.records;
      const before = bench.counter.snapshot();
      const started = now();
      const keys = [(await store.subjectOf(tenant, owner.subject)).subjectKey];
      const counts = await store.countByCategory(tenant, keys[0]!);
      const ms = now() - started;
      const records = Object.values(counts).reduce((sum, n) => sum + (n ?? 0), 0);
      if (records !== s.subjectRecords) {
        throw new Error(`Discovery found ${records} records of the subject, not ${s.subjectRecords}.`);
      }
      runs[name].push({ ms, counts: bench.counter.since(before), keys: keys.length, records });

      // The floor: the same queries through the raw SDK (the rows of each alias, then the subject's record
      // rows), no decoding beyond the SDK's own. An object id is the subject's key; an alias names its holder.
      const identifiers = await fresh.identity.identifiersOf(tenant, owner.subject);
      const objectId = identifiers.find((id) => id.kind === 'objectId');
      const floorStarted = now();
      const subjectKeys = new Set<string>(objectId ? [objectId.key] : []);
      for (const alias of identifiers.filter((id) => id.kind !== 'objectId')) {
        const { partitionKey, prefix } = lookupKeys.identifier(tenant.tenantId, alias.key);
        for await (const row of rawLookups.listEntities<{ subjectKey?: string }>({
          queryOptions: {
            filter: rowKeyRange(partitionKey, prefix),
            select: ['subjectKey', 'holder', 'seenAt'],
          },
        })) {
          if (!objectId && row.subjectKey) subjectKeys.add(row.subjectKey);
        }
      }
      for (const subjectKey of subjectKeys) {
        const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
        for await (const _row of rawRecords.listEntities({
          queryOptions: {
            filter: odata`PartitionKey eq ${partitionKey} and RowKey lt '~'`,
            select: ['category'],
          },
        })) {
          // counted by the product above; the floor only pays for the round trips
        }
      }
      floorRuns[name].push(now() - floorStarted);
    }
  }

  const summary = (name: 'small' | 'large'): TenantResult => {
    const list = runs[name];
    const last = list[list.length - 1]!;
    const requests = list.map((run) => totalRequests(run.counts));
    if (new Set(requests).size !== 1)
      progress(`discovery: ${name} request counts vary: ${requests.join(', ')}`);
    return {
      tenantRecords: tenants[name].records,
      subjects: tenants[name].subjects,
      requests: Math.max(...requests),
      requestsByService: last.counts,
      ms: round(median(list.map((run) => run.ms))),
      msRuns: list.map((run) => round(run.ms)),
      found: { subjectKeys: last.keys, records: last.records },
      floorMs: round(median(floorRuns[name])),
    };
  };
  // The ~450k rows of these tenants are not needed any more: dropping their tables keeps Azurite's heap
  // (and its garbage collection) from weighing on the scenarios that follow, which use other accounts.
  const tables = bench.rawTables(tenants.small.scope.geography);
  for (const table of [TABLES.records, TABLES.recordLookup, TABLES.expiry]) await tables.deleteTable(table);

  const small = summary('small');
  const large = summary('large');
  progress(
    `discovery: small ${small.requests} requests ${small.ms} ms, large ${large.requests} requests ${large.ms} ms`,
  );
  return {
    seeding,
    result: {
      subjectRecords: s.subjectRecords,
      small,
      large,
      ratio: { requests: round(large.requests / small.requests, 2), ms: round(large.ms / small.ms, 2) },
      goal: 'ratio.requests 1.0, ratio.ms near 1',
      msIs: `median of ${s.repetitions} runs`,
    },
  };
}
