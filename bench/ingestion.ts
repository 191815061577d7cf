// (c) Ingestion throughput, two ways records arrive: single `record.upserted` events through the queue
// function's path (the personalDataEvents queue function with a real InvocationContext), and `records.upserted`
// batches (one device check-in of a subject per message) parsed and applied as that function applies them.
// Each against raw SDK upsertEntity of one entity per record (the same size, partitioning and concurrency) into
// a table of its own in the same account, with CPU and Table requests per record by kind (requestCounter.ts).
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { odata, type TableEntity } from '@azure/data-tables';
import { InvocationContext } from '@azure/functions';

import { personalDataEvents } from '../functions/personalDataEvents';
import { hmacWith } from '../shared/crypto/pseudonymizer';
import { personalDataEventSchema } from '../shared/records/personalDataEvent';
import { recordRowKey, recordsPartition } from '../shared/records/recordKeys';
import { deviceKeyOf, recordKeyOf, sealContent } from '../shared/records/recordRows';
import { type UpsertInput } from '../shared/records/recordStore';
import { recordContent } from '../shared/records/recordContent';
import type { TenantScope } from '../shared/residency/tenantDirectory';
import { TABLES } from '../shared/storage/names';
import { benchSubject, random, subjectRecords } from './dataset';
import type { Bench } from './environment';
import { type AccessTrace, type RequestCounts, totalRequests } from './requestCounter';
import type { Scale } from './scale';
import { collectGarbage, cpuMsSince, inPool, now, progress, round } from './util';

const RAW_TABLE = 'benchRawIngest';
/** A queue message's limit: the host reads base64 of the JSON, at most 64 KiB. */
const MAX_MESSAGE_BYTES = 64 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

/** Issue 13's goals: records/s against raw, requests per record, CPU per record against raw. */
const GOALS = {
  single: { minRatio: 0.35, maxRequestsPerRecord: 3, maxCpuPerRecordVsRaw: 3 },
  batches: { minRatio: 1.0, maxRequestsPerRecord: 1.0, maxCpuPerRecordVsRaw: 3 },
} as const;

export async function ingestionScenario(bench: Bench, scale: Scale) {
  const { events: total, subjects, batchSubjects, batchItems, concurrency } = scale.ingestion;
  const { services } = bench;
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
  // Each path has a tenant in a geography of its own (no other scenario uses APAC or IN), so neither path's
  // rows slow the other's requests on Azurite, and each path's raw table sits in its tenant's account.
  const provision = async (countryCode: string) => {
    const tenantId = randomUUID();
    const provisioned = await deliver(
      { type: 'tenant.provisioned', tenantId, eventId: 'provision', countryCode, displayName: 'Bench' },
      context(`provision-${countryCode}`),
    );
    if (provisioned !== 'processed')
      throw new Error(`The ${countryCode} ingestion tenant was not provisioned.`);
    return services.directory.resolve(tenantId);
  };

  // Single events: records spread over the subjects, in a shuffled order, as many sources would send them.
  const singleTenant = await provision('JP');
  const rng = random(5);
  const inputs: UpsertInput[] = [];
  for (let i = 0; i < subjects; i++) {
    const owner = benchSubject(rng, `ingest.user${i}`);
    const count = Math.floor(total / subjects) + (i < total % subjects ? 1 : 0);
    inputs.push(...subjectRecords(rng, owner, count, scale.recordBytes, `i${i}`));
  }
  shuffle(rng, inputs);
  const events = inputs.map((input, i) => ({
    type: 'record.upserted',
    tenantId: singleTenant.tenantId,
    eventId: `ev-${i}`,
    ...input,
  }));
  progress(`ingestion: ${events.length} single events over ${subjects} subjects, concurrency ${concurrency}`);
  const outcomes: Record<string, number> = {};
  const single = await measurePath(bench, singleTenant, inputs, concurrency, async () => {
    await inPool(events, concurrency, async (event, i) => {
      const outcome = await deliver(event, context(`ev-${i}`));
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    });
    if (outcomes.processed !== events.length) {
      throw new Error(`Ingestion: not every event was processed: ${JSON.stringify(outcomes)}`);
    }
  });
  collectGarbage();

  // Batches: each subject's records as one device check-in, one `records.upserted` message per subject (each
  // item its own eventId), the messages in a shuffled order. Each is parsed with the queue function's schema
  // and applied by services.events.apply, as the function does (its decode is that parse); an item refused
  // would be poisoned by the function, so the bench fails on any.
  const batchTenant = await provision('IN');
  const batchRng = random(13);
  const checkIns: UpsertInput[][] = [];
  for (let i = 0; i < batchSubjects; i++) {
    const owner = benchSubject(batchRng, `batch.user${i}`);
    // A check-in reports its records at one time (so its expiry entries share a due month), and recently:
    // the first one two days ago (within the last 8 hours of that day), the next ones a day apart up to now.
    const records = subjectRecords(batchRng, owner, batchItems, scale.recordBytes, `b${i}`);
    const checkInAt = new Date(Date.now() - 2 * DAY_MS - Math.floor(batchRng() * 8 * 3600_000)).toISOString();
    checkIns.push(records.map((record) => ({ ...record, occurredAt: checkInAt })));
  }
  shuffle(batchRng, checkIns);
  const messagesOf = (subjectCheckIns: readonly UpsertInput[][], name: string) =>
    subjectCheckIns.map((records, i) => ({
      type: 'records.upserted',
      tenantId: batchTenant.tenantId,
      eventId: `${name}-${i}`,
      records: records.map((input, j) => ({ eventId: `${name}-${i}-${j}`, ...input })),
    }));
  const applyAll = (messages: readonly unknown[]) => async () => {
    await inPool(messages, concurrency, async (message) => {
      const refused = await services.events.apply(personalDataEventSchema.parse(message));
      if (refused.length > 0) {
        throw new Error(`Ingestion: batch items refused: ${JSON.stringify(refused.map((r) => r.reason))}`);
      }
    });
  };
  const messages = messagesOf(checkIns, 'batch');
  const messageBytes = messages.map((message) =>
    Buffer.byteLength(Buffer.from(JSON.stringify(message)).toString('base64')),
  );
  const largestMessage = Math.max(...messageBytes);
  if (largestMessage > MAX_MESSAGE_BYTES) {
    throw new Error(`Ingestion: a batch message takes ${largestMessage} bytes, over the queue's 64 KiB.`);
  }
  const batchInputs = checkIns.flat();
  progress(
    `ingestion: ${batchInputs.length} records in ${messages.length} batches of ${batchItems}, concurrency ${concurrency}`,
  );
  const rawKey = randomBytes(32);
  const batches = await measurePath(bench, batchTenant, batchInputs, concurrency, applyAll(messages), rawKey);
  collectGarbage();

  // The same subjects' check-in again: the same records a day later, in another order, so that every item
  // replaces a stored row (and moves its expiry entries), as a device checking in again does. Its raw
  // upserts replace the raw rows of the check-in before.
  const checkInAgain = (name: string, earlier: readonly UpsertInput[][]) => {
    const again = earlier.map((records) =>
      records.map((input) => ({
        ...input,
        occurredAt: new Date(Date.parse(input.occurredAt) + DAY_MS).toISOString(),
      })),
    );
    shuffle(batchRng, again);
    const run = () =>
      measurePath(bench, batchTenant, again.flat(), concurrency, applyAll(messagesOf(again, name)), rawKey);
    return { again, run };
  };
  const nextCheckIns = checkInAgain('next', checkIns);
  progress(`ingestion: the same subjects' next check-in, ${checkIns.length} batches`);
  const next = await nextCheckIns.run();
  // The check-in after: every row was replaced once after its lookup was read, so it is located and
  // replaced again without reading the lookup (RecordStore.upsertAll): a device's steady state.
  const laterCheckIns = checkInAgain('later', nextCheckIns.again);
  progress(`ingestion: the check-in after that, ${checkIns.length} batches`);
  const later = await laterCheckIns.run();

  const withGoals = <T extends PathFigures>(figures: T, goals: (typeof GOALS)[keyof typeof GOALS]) => {
    const met = {
      recordsPerSecond: figures.ratio >= goals.minRatio,
      requestsPerRecord: figures.product.requestsPerRecord <= goals.maxRequestsPerRecord,
      cpuPerRecord: figures.cpuPerRecordVsRaw <= goals.maxCpuPerRecordVsRaw,
    };
    return {
      ...figures,
      goals: {
        ratio: { atLeast: goals.minRatio, value: figures.ratio, met: met.recordsPerSecond },
        requestsPerRecord: {
          atMost: goals.maxRequestsPerRecord,
          value: figures.product.requestsPerRecord,
          met: met.requestsPerRecord,
        },
        cpuPerRecordVsRaw: {
          atMost: goals.maxCpuPerRecordVsRaw,
          value: figures.cpuPerRecordVsRaw,
          met: met.cpuPerRecord,
        },
      },
      meetsGoals: met.recordsPerSecond && met.requestsPerRecord && met.cpuPerRecord,
    };
  };
  return {
    recordDataBytes: scale.recordBytes,
    concurrency,
    single: {
      records: events.length,
      messages: events.length,
      subjects,
      ...withGoals(single, GOALS.single),
      outcomes,
    },
    batches: {
      records: batchInputs.length,
      messages: messages.length,
      subjects: batchSubjects,
      recordsPerMessage: batchItems,
      largestMessageBytes: largestMessage,
      ...withGoals(batches, GOALS.batches),
    },
    batchesNextCheckIn: {
      records: batchInputs.length,
      messages: messages.length,
      subjects: batchSubjects,
      recordsPerMessage: batchItems,
      ...withGoals(next, GOALS.batches),
    },
    batchesLaterCheckIn: {
      records: batchInputs.length,
      messages: messages.length,
      subjects: batchSubjects,
      recordsPerMessage: batchItems,
      ...withGoals(later, GOALS.batches),
    },
  };
}

interface PathFigures {
  product: ReturnType<typeof sideFigures> & { requestsByService: RequestCounts };
  raw: ReturnType<typeof sideFigures> & { sealedBytesPerEntity: number };
  ratio: number;
  cpuPerRecordVsRaw: number;
  storedRecordsFound: number;
}

/**
 * Runs `ingest` (the product's path for `inputs`, into `tenant`) timed and counted, then raw upserts of one
 * entity per record of the same inputs, in the same order and concurrency, into a table of their own in the
 * tenant's account; checks the product stored every record.
 */
async function measurePath(
  bench: Bench,
  tenant: TenantScope,
  inputs: readonly UpsertInput[],
  concurrency: number,
  ingest: () => Promise<void>,
  key: Buffer = randomBytes(32),
): Promise<PathFigures> {
  // The raw entities: what the product stores for each record (the same record HMAC, device HMAC and sealed
  // content), sealed under a throw-away key (the same key again: the same rows, replaced).
  const rawEntities: TableEntity<Record<string, unknown>>[] = inputs.map((input) => {
    const partitionKey = recordsPartition(
      tenant.tenantId,
      hmacWith(key, 'objectId', input.subject.objectId!),
    );
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

  const product = await timed(bench, ingest);
  progress(`ingestion: product ${round(product.ms)} ms; raw upserts next`);
  collectGarbage();
  const raw = await timed(bench, async () => {
    await inPool(rawEntities, concurrency, (entity) => rawTable.upsertEntity(entity, 'Replace'));
  });

  const stored = await countStored(bench, tenant, inputs[0]!);
  if (stored !== inputs.length) throw new Error(`Ingestion stored ${stored} records, not ${inputs.length}.`);
  const productFigures = sideFigures(product, inputs.length);
  const rawFigures = sideFigures(raw, rawEntities.length);
  progress(
    `ingestion: product ${productFigures.recordsPerSecond} records/s, raw ${rawFigures.recordsPerSecond} records/s`,
  );
  return {
    product: { ...productFigures, requestsByService: product.counts },
    raw: {
      ...rawFigures,
      sealedBytesPerEntity: Math.round(
        rawEntities.reduce((sum, e) => sum + String(e.sealed).length, 0) / rawEntities.length,
      ),
    },
    ratio: round(inputs.length / product.ms / (rawEntities.length / raw.ms), 2),
    cpuPerRecordVsRaw: round(product.cpuMs / inputs.length / (raw.cpuMs / rawEntities.length), 2),
    storedRecordsFound: stored,
  };
}

interface Timed {
  ms: number;
  cpuMs: number;
  /** CPU time of the Azurite process meanwhile (it serves one side at a time), if it can be read. */
  azuriteCpuMs: number | undefined;
  counts: RequestCounts;
  access: AccessTrace;
}

async function timed(bench: Bench, work: () => Promise<void>): Promise<Timed> {
  const before = bench.counter.snapshot();
  const stopAccess = bench.counter.startAccessTrace();
  const cpuBefore = process.cpuUsage();
  const azuriteBefore = processCpuMs(bench.azurite.pid);
  const started = now();
  let access: AccessTrace;
  try {
    await work();
  } finally {
    access = stopAccess();
  }
  const ms = now() - started;
  const cpuMs = cpuMsSince(cpuBefore);
  const azuriteAfter = processCpuMs(bench.azurite.pid);
  const azuriteCpuMs =
    azuriteBefore === undefined || azuriteAfter === undefined ? undefined : azuriteAfter - azuriteBefore;
  return { ms, cpuMs, azuriteCpuMs, counts: bench.counter.since(before), access };
}

/** User and system CPU time of a process from /proc (Linux; clock ticks of 10 ms), or undefined. */
function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, within parentheses): utime is 14th, stime 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/**
 * Throughput, CPU and requests per record of one side. `requestsPerRecordByKind` splits the Table requests
 * by what they touch and how (requestCounter.ts accessKindOf), largest first; Blob and Queue requests, if
 * any, are added as `blob` and `queue`, so the kinds add up to `requestsPerRecord`. `tableRequestsByKind` has
 * the counts, the time spent waiting for each kind (summed over concurrent requests) and the requests
 * answered with an error status (a 404 of a row looked up and absent; a 409 or 412 lost a race, tried again).
 */
function sideFigures(side: Timed, records: number) {
  const kinds = Object.entries(side.access).sort(([, a], [, b]) => b.requests - a.requests);
  const other = { blob: side.counts.blob, queue: side.counts.queue, other: side.counts.other };
  const requests = totalRequests(side.counts);
  return {
    ms: round(side.ms),
    recordsPerSecond: round(records / (side.ms / 1000)),
    cpuMs: round(side.cpuMs),
    cpuMsPerRecord: round(side.cpuMs / records, 3),
    ...(side.azuriteCpuMs === undefined
      ? {}
      : { azuriteCpuMsPerRecord: round(side.azuriteCpuMs / records, 3) }),
    requests,
    requestsPerRecord: round(requests / records, 2),
    requestsPerRecordByKind: Object.fromEntries([
      ...kinds.map(([kind, entry]): [string, number] => [kind, round(entry.requests / records, 4)]),
      ...Object.entries(other)
        .filter(([, count]) => count > 0)
        .map(([service, count]): [string, number] => [service, round(count / records, 4)]),
    ]),
    tableRequestsByKind: Object.fromEntries(
      kinds.map(([kind, entry]) => [
        kind,
        {
          requests: entry.requests,
          rows: entry.rows,
          ms: round(entry.ms),
          ...(Object.keys(entry.failed).length > 0 ? { failedByStatus: entry.failed } : {}),
        },
      ]),
    ),
  };
}

function shuffle<T>(rng: () => number, items: T[]): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
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
