// (c) Ingestion throughput: record.upserted events through the queue function's path
// (the personalDataEvents queue function with a real InvocationContext), against raw SDK upsertEntity of as many entities
// of the same size, same partitioning and same concurrency into a table of their own in the same account.
import { randomBytes, randomUUID } from 'node:crypto';

import { odata, type TableEntity } from '@azure/data-tables';
import { InvocationContext } from '@azure/functions';

import { personalDataEvents } from '../functions/personalDataEvents';
import { hmacWith } from '../shared/crypto/pseudonymizer';
import { recordRowKey, recordsPartition } from '../shared/records/recordKeys';
import { deviceKeyOf, recordKeyOf, sealContent } from '../shared/records/recordRows';
import { type UpsertInput } from '../shared/records/recordStore';
import { recordContent } from '../shared/records/recordContent';
import type { TenantScope } from '../shared/residency/tenantDirectory';
import { TABLES } from '../shared/storage/names';
import { benchSubject, random, subjectRecords } from './dataset';
import type { Bench } from './environment';
import { totalRequests } from './requestCounter';
import type { Scale } from './scale';
import { cpuMsSince, inPool, now, progress, round } from './util';

const RAW_TABLE = 'benchRawIngest';

export async function ingestionScenario(bench: Bench, scale: Scale) {
  const { events: total, subjects, concurrency } = scale.ingestion;
  const { services } = bench;
  const tenantId = randomUUID();
  const context = (name: string) =>
    new InvocationContext({
      functionName: 'personalDataEvents',
      invocationId: name,
      triggerMetadata: { dequeueCount: 1 },
      logHandler: () => undefined,
    });
  // The queue function's own path; what it poisons is counted, so a bench of poisoned events cannot pass.
  let poisoned = 0;
  const poison = services.poison.put.bind(services.poison);
  services.poison.put = async (...args) => {
    poisoned++;
    return poison(...args);
  };
  const deliver = async (event: unknown, invocation: InvocationContext) => {
    const before = poisoned;
    await personalDataEvents.handle(services, event, invocation);
    return poisoned === before ? 'processed' : 'poisoned';
  };
  const provisioned = await deliver(
    {
      type: 'tenant.provisioned',
      tenantId,
      eventId: 'provision',
      countryCode: 'JP',
      displayName: 'Bench JP',
    },
    context('provision'),
  );
  if (provisioned !== 'processed') throw new Error('The ingestion tenant was not provisioned.');
  const tenant = await services.directory.resolve(tenantId);

  // Records spread over the subjects, in a shuffled order, as many sources would send them.
  const rng = random(5);
  const inputs: UpsertInput[] = [];
  for (let i = 0; i < subjects; i++) {
    const owner = benchSubject(rng, `ingest.user${i}`);
    const count = Math.floor(total / subjects) + (i < total % subjects ? 1 : 0);
    inputs.push(...subjectRecords(rng, owner, count, scale.recordBytes, `i${i}`));
  }
  for (let i = inputs.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [inputs[i], inputs[j]] = [inputs[j]!, inputs[i]!];
  }
  const events = inputs.map((input, i) => ({
    type: 'record.upserted',
    tenantId,
    eventId: `ev-${i}`,
    ...input,
  }));

  // The raw entities: what the product stores for each record (the same record HMAC, device HMAC and sealed
  // content), sealed under a throw-away key.
  const key = randomBytes(32);
  const rawEntities: TableEntity<Record<string, unknown>>[] = inputs.map((input) => {
    const partitionKey = recordsPartition(tenantId, hmacWith(key, 'objectId', input.subject.objectId!));
    const rowKey = recordRowKey(input.category, recordKeyOf(key, input.category, input.recordId));
    return {
      partitionKey,
      rowKey,
      category: input.category,
      occurredAt: input.occurredAt,
      ...(input.deviceName ? { deviceKey: deviceKeyOf(key, input.deviceName) } : {}),
      sealed: sealContent(key, recordContent(key, input), partitionKey, rowKey),
    };
  });
  const rawTable = await bench.rawTable(tenant.geography, RAW_TABLE);

  progress(`ingestion: ${events.length} events over ${subjects} subjects, concurrency ${concurrency}`);
  const outcomes: Record<string, number> = {};
  const before = bench.counter.snapshot();
  const cpuBefore = process.cpuUsage();
  const started = now();
  await inPool(events, concurrency, async (event, i) => {
    const outcome = await deliver(event, context(`ev-${i}`));
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  });
  const productMs = now() - started;
  const productCounts = bench.counter.since(before);
  const productCpuMs = cpuMsSince(cpuBefore);
  if (outcomes.processed !== events.length) {
    throw new Error(`Ingestion: not every event was processed: ${JSON.stringify(outcomes)}`);
  }
  progress(`ingestion: product ${round(productMs)} ms; raw upserts next`);

  const rawBefore = bench.counter.snapshot();
  const rawCpu = process.cpuUsage();
  const rawStarted = now();
  await inPool(rawEntities, concurrency, (entity) => rawTable.upsertEntity(entity, 'Replace'));
  const rawMs = now() - rawStarted;
  const rawCounts = bench.counter.since(rawBefore);
  const rawCpuMs = cpuMsSince(rawCpu);

  const stored = await countStored(bench, tenant, inputs[0]!);
  if (stored !== events.length) throw new Error(`Ingestion stored ${stored} records, not ${events.length}.`);
  const productRps = events.length / (productMs / 1000);
  const rawRps = rawEntities.length / (rawMs / 1000);
  progress(`ingestion: product ${round(productRps)} records/s, raw ${round(rawRps)} records/s`);
  return {
    events: events.length,
    subjects,
    concurrency,
    recordDataBytes: scale.recordBytes,
    product: {
      ms: round(productMs),
      recordsPerSecond: round(productRps),
      cpuMs: round(productCpuMs),
      requests: totalRequests(productCounts),
      requestsByService: productCounts,
      requestsPerRecord: round(totalRequests(productCounts) / events.length, 2),
      outcomes,
    },
    raw: {
      ms: round(rawMs),
      recordsPerSecond: round(rawRps),
      cpuMs: round(rawCpuMs),
      requests: totalRequests(rawCounts),
      requestsPerRecord: round(totalRequests(rawCounts) / rawEntities.length, 2),
      sealedBytesPerEntity: Math.round(
        rawEntities.reduce((sum, e) => sum + String(e.sealed).length, 0) / rawEntities.length,
      ),
    },
    ratio: round(productRps / rawRps, 2),
    storedRecordsFound: stored,
  };
}

/**
 * The record rows the tenant now holds (one raw query over its partitions; `~key` and `~id_` rows left out),
 * and one record read back through the product: the events were stored, not only accepted.
 */
async function countStored(bench: Bench, tenant: TenantScope, sample: UpsertInput): Promise<number> {
  const table = await bench.rawTable(tenant.geography, TABLES.records);
  let rows = 0;
  for await (const _row of table.listEntities({
    queryOptions: {
      filter: odata`PartitionKey gt ${`${tenant.tenantId}_`} and PartitionKey lt ${`${tenant.tenantId}\u0060`} and RowKey lt '~'`,
      select: ['RowKey'],
    },
  })) {
    rows++;
  }
  const { subjectKey } = await bench.services.records.subjectOf(tenant, sample.subject);
  let found = 0;
  for await (const record of bench.services.records.list(tenant, subjectKey, sample.category)) {
    if (record.recordId === sample.recordId && JSON.stringify(record.data) === JSON.stringify(sample.data))
      found++;
  }
  if (found !== 1) throw new Error(`Ingestion: record ${sample.recordId} does not read back.`);
  return rows;
}
