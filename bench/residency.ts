// (e) Residency move (SPEC §8): a tenant of N records (with their lookups, subject rows and expiry entries),
// DSR requests, audit events and export packages moved from EU to CH by the product's mover
// (`services.residency.start`, then `services.mover.run` called until the job is completed: validating,
// copying, verifying, switching, cleaning), against a raw SDK move of an identical copy of the same tenant
// on the same Azurite in the same run: read the rows page by page, upsert them in entity-group transactions
// (per partition, 100 per transaction, 8 partitions at a time), read both sides once more (a verification
// read: the product verifies both sides), then delete the source rows in transactions; blobs downloaded,
// uploaded, read back on both sides and deleted.
//
// The tenant is provisioned (country CH) by services whose configuration has no CH account, so it lands in
// EU; services with every geography then move it (CH is its best geography there). Both have
// RESIDENCY_FENCE_SECONDS=0, so the move does not wait for the write fence. The raw copy is a clone of the
// product tenant's rows and blobs under another tenant id, in tables and containers of its own in the same
// two accounts (Azurite scans a whole table for every query, so neither run's rows slow the other's).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { TableClient, TableEntity, TransactionAction } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';

import { GENESIS_HASH, hashEvent } from '../shared/audit/auditChain';
import type { AuditEvent } from '../shared/audit/auditEvent';
import {
  auditKeys,
  blockOf,
  DEFAULT_BLOCK_SIZE,
  type HeadEntity,
  HEAD_ROW,
  type MarkerEntity,
  toEntity as auditRow,
} from '../shared/audit/auditRows';
import { createServices, type Services } from '../shared/composition';
import { loadConfig, storageSettingName } from '../shared/config';
import { createKeyProviders } from '../shared/crypto/keyProviders';
import { hmacWith, Pseudonymizer } from '../shared/crypto/pseudonymizer';
import { PackageStore } from '../shared/exports/packageStore';
import type { MigrationJob } from '../shared/migration/migrationJob';
import { MOVED_CONTAINERS, MOVED_TABLES } from '../shared/migration/residencyMover';
import type { PersonalDataRecord } from '../shared/records/personalDataRecord';
import { SubjectKeyStore } from '../shared/records/subjectKeys';
import type { DataSubjectRequest, RequestType } from '../shared/requests/dataSubjectRequest';
import { newRequestId } from '../shared/requests/requestRepository';
import type { TenantScope } from '../shared/residency/tenantDirectory';
import { ExpiryIndex } from '../shared/retention/expiryIndex';
import { QUEUES, TABLES } from '../shared/storage/names';
import { PARALLEL_PARTITIONS, submitInBatches } from '../shared/storage/tableBatches';
import { tenantBlobPrefix, tenantPartitionFilter } from '../shared/storage/tenantRows';
import type { Geography } from '../shared/vocabulary/geographies';
import { type BenchSubject, benchSubject, random, subjectRecords, uuid } from './dataset';
import type { Bench } from './environment';
import { measureMemory } from './memorySampler';
import type { SeedStats } from './rawSeeder';
import { type RequestCounts, type TablePolicy, type TableTrace, totalRequests } from './requestCounter';
import type { Scale } from './scale';
import { collectGarbage, cpuMsSince, inPool, now, progress, round } from './util';

const COUNTRY = 'CH';
const SOURCE: Geography = 'EU';
const TARGET: Geography = 'CH';
const BATCH_LIMIT = 100;
const PAGE_SIZE = 1000;
/** Bytes of each export package's ZIP (random data, so the ZIP does not compress it away). */
const PACKAGE_BYTES = 100_000;
const DAY_MS = 24 * 60 * 60 * 1000;
const GOAL_RATIO = 0.7;
const MEMORY_FLAT_MARGIN_MB = 16;
const ACTOR = { type: 'user' as const, id: 'bench-admin', upn: 'admin@contoso.com' };

/** The raw copy's own tables and containers (in both accounts). */
const rawTableName = (name: string) => `rawmove${name}`;
const rawContainerName = (name: string) => `rawmove-${name}`;

type Row = TableEntity<Record<string, unknown>>;

interface Size {
  records: number;
  recordsPerSubject: number;
  requests: number;
  auditEvents: number;
  packages: number;
}

export async function residencyScenario(bench: Bench, scale: Scale) {
  const { repetitions, ...sizes } = scale.residency;
  const size: Size = sizes;
  const quarter: Size = {
    records: Math.max(1, Math.round(size.records / 4)),
    recordsPerSubject: size.recordsPerSubject,
    requests: Math.round(size.requests / 4),
    auditEvents: Math.round(size.auditEvents / 4),
    packages: Math.ceil(size.packages / 4),
  };
  const env = await moveServices(bench);
  try {
    const runs: { order: string; product: ProductMove; raw: RawMove }[] = [];
    const seeding: Record<string, unknown>[] = [];
    for (let repetition = 0; repetition < repetitions; repetition++) {
      progress(
        `residency ${repetition + 1}/${repetitions}: seeding a tenant of ${size.records} records, ${size.requests} requests, ${size.auditEvents} audit events, ${size.packages} packages`,
      );
      const seeded = await seedTenant(bench, env.source, scale, size, `n${repetition}`, 31 + repetition);
      const rawTenantId = randomUUID();
      const cloneStarted = now();
      const cloned = await cloneTenant(bench, seeded.tenant.tenantId, rawTenantId);
      seeding.push({
        ...seeded.seeding,
        rawClone: { ms: round(now() - cloneStarted), rows: cloned.rows, blobs: cloned.blobs },
      });
      progress(`residency: cloned for the raw move (${sum(cloned.rows)} rows, ${sum(cloned.blobs)} blobs)`);
      // Alternately raw first and product first, so that what one run leaves in Azurite weighs on both.
      const rawFirst = repetition % 2 === 0;
      const runRaw = async () => {
        const raw = await rawMove(bench, rawTenantId);
        progress(`residency: raw ${round(raw.ms)} ms (${raw.rows} rows, ${raw.blobs} blobs)`);
        return raw;
      };
      const runProduct = async () => {
        const product = await productMove(bench, env, seeded.tenant.tenantId);
        progress(`residency: product ${round(product.ms)} ms (${product.rows} rows, ${product.blobs} blobs)`);
        return product;
      };
      if (rawFirst) {
        const raw = await runRaw();
        runs.push({ order: 'raw, product', raw, product: await runProduct() });
      } else {
        const product = await runProduct();
        runs.push({ order: 'product, raw', product, raw: await runRaw() });
      }
    }

    progress(`residency: seeding a tenant of ${quarter.records} records for the memory comparison`);
    const seededQuarter = await seedTenant(bench, env.source, scale, quarter, 'q', 30);
    const productQuarter = await productMove(bench, env, seededQuarter.tenant.tenantId);
    progress(`residency: product (N/4) ${round(productQuarter.ms)} ms (${productQuarter.rows} rows)`);

    await dropRawCopies(bench);
    const queue = await env.target.storage.global.queue(QUEUES.residencyWork);
    await queue.clearMessages();

    // Pooled over the repetitions: all rows moved over all the time it took, on each side.
    const total = (pick: (run: (typeof runs)[number]) => number) => runs.reduce((n, run) => n + pick(run), 0);
    const productRps = total((run) => run.product.rows) / (total((run) => run.product.ms) / 1000);
    const rawRps = total((run) => run.raw.rows) / (total((run) => run.raw.ms) / 1000);
    const ratio = productRps / rawRps;
    const rawCopyAndDeleteRps =
      total((run) => run.raw.rows) / (total((run) => run.raw.phases.copyMs + run.raw.phases.deleteMs) / 1000);
    const ratioToCopyAndDelete = productRps / rawCopyAndDeleteRps;
    const first = runs[0]!;
    const peak = (pick: (run: (typeof runs)[number]) => number | null) =>
      Math.max(...runs.map((run) => pick(run) ?? Number.NaN));
    const qMemory = productQuarter.memory;
    return {
      seeding: { tenants: seeding, quarterTenant: seededQuarter.seeding },
      result: {
        from: SOURCE,
        to: TARGET,
        size,
        repetitions,
        rowsMoved: first.product.rows,
        blobsMoved: first.product.blobs,
        blobBytesMoved: first.product.blobBytes,
        productMs: runs.map((run) => run.product.ms),
        rawMs: runs.map((run) => run.raw.ms),
        productRowsPerSecond: round(productRps),
        rawRowsPerSecond: round(rawRps),
        ratio: round(ratio, 2),
        goal: `ratio >= ${GOAL_RATIO}: product rows/s over raw rows/s, pooled over the repetitions, the raw move counting its verification read`,
        meetsGoal: ratio >= GOAL_RATIO,
        ratioToRawCopyAndDelete: round(ratioToCopyAndDelete, 2),
        meetsGoalAgainstRawCopyAndDelete: ratioToCopyAndDelete >= GOAL_RATIO,
        writePauseMs: runs.map((run) => run.product.writePauseMs),
        totalFromFenceMs: runs.map((run) => run.product.totalFromFenceMs),
        requestsPerRow: { product: first.product.requestsPerRow, raw: first.raw.requestsPerRow },
        runs: runs.map((run) => ({
          order: run.order,
          productMs: run.product.ms,
          rawMs: run.raw.ms,
          ratio: round(run.product.rows / run.product.ms / (run.raw.rows / run.raw.ms), 2),
          writePauseMs: run.product.writePauseMs,
          productPhasesMs: Object.fromEntries(
            Object.entries(run.product.phases).map(([status, phase]) => [status, phase.ms]),
          ),
          rawPhasesMs: run.raw.phases,
          cpuMs: { product: run.product.cpuMs, raw: run.raw.cpuMs },
        })),
        memoryBySize: {
          tenantRows: { n: first.product.rows, quarter: productQuarter.rows },
          heapPeakGrowthMB: {
            n: peak((run) => run.product.memory.heapPeakGrowthMB),
            quarter: qMemory.heapPeakGrowthMB,
          },
          rssPeakGrowthMB: {
            n: peak((run) => run.product.memory.rssPeakGrowthMB),
            quarter: qMemory.rssPeakGrowthMB,
          },
          retainedPeakGrowthMB: {
            n: peak((run) => run.product.memory.retainedPeakGrowthMB),
            quarter: qMemory.retainedPeakGrowthMB,
          },
          raw: {
            heapPeakGrowthMB: peak((run) => run.raw.memory.heapPeakGrowthMB),
            retainedPeakGrowthMB: peak((run) => run.raw.memory.retainedPeakGrowthMB),
          },
        },
        memoryFlat: memoryFlat(
          peak((run) => run.product.memory.retainedPeakGrowthMB),
          qMemory.retainedPeakGrowthMB,
        ),
        product: first.product,
        raw: first.raw,
        quarter: productQuarter,
        notes: [
          'product and raw are the first repetition in detail; runs has every repetition. N figures of memoryBySize are the largest of the repetitions.',
          'Rows of the product move are what its manifest counts (source side); its audit table holds 2 or 3 rows more than the raw copy (the residency.migrationRequested event and its id marker, and a block head when that event starts a block, appended by residency.start before the move).',
          'DSR requests and audit events are written as raw rows in the product layout (requests: RequestRepository entities with a complete request document; audit: the hash chain of auditRows/auditChain in blocks of 1000 with id markers and block heads, checked with services.audit.verify); records, lookups and expiry entries by the raw seeder (layoutCheck); packages by the real PackageStore.write (index row, expiry entry, encrypted blob).',
          'Not seeded: idempotency keys, restrictions, the expiry entries of requests, poisoned events (those tables and the poisoned-events container are moved empty).',
          'The raw move reads with disableTypeConversion (exact copies) and batches the rows of each page of 1000 by partition, as the product does (pages come in partition order, so a partition is split only at page boundaries); its target tables and containers exist before it is timed.',
          `Memory: heapPeakGrowthMB is the peak of heapUsed + arrayBuffers sampled every 20 ms (garbage included, so it grows with the length of the run); retainedPeakGrowthMB samples what is held after a full GC every ${RETAINED_SAMPLE_MS} ms, in the timed runs of both the product and the raw move (retainedSamplingGcMs: the time those GCs took).`,
          `Both services have RESIDENCY_FENCE_SECONDS=0: no fence wait is part of the product figures (in Azure the copy starts 2 x the fence bound after the flag).`,
        ],
      },
    };
  } finally {
    await env.close();
  }
}

/**
 * Reported, not a goal: what the move holds (retainedPeakGrowthMB) at N exceeds what it holds at N/4 by less
 * than MEMORY_FLAT_MARGIN_MB (transient buffers: a page of rows and its transactions, a blob being copied).
 */
const memoryFlat = (n: number, quarter: number | null) =>
  Number.isFinite(n) && quarter !== null ? n <= quarter + MEMORY_FLAT_MARGIN_MB : null;

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------------------------------------------------
// Services: one set without a CH account (where the tenant is provisioned), one with every geography (which
// moves it); the same tenant keys, no fence wait, and a policy that notes when the job's status changes.

/** Where the job stands from `at` on: its status and, while copying, verifying or cleaning, the item. */
interface PhaseMark {
  status: string;
  item?: string | undefined;
  at: number;
  counts: RequestCounts;
  cpu: NodeJS.CpuUsage;
  trace?: TableTrace;
}

interface MoveServices {
  source: Services;
  target: Services;
  /**
   * Starts noting the job's status and item changes (from the saves of its `migrations` row, which name the
   * status and the cursor's item being worked on next); the function stops it.
   */
  watchPhases(): () => PhaseMark[];
  close(): Promise<void>;
}

async function moveServices(bench: Bench): Promise<MoveServices> {
  const keyFolder = await mkdtemp(join(tmpdir(), 'privacy-bench-residency-keys-'));
  const settings = bench.azurite.storageSettings();
  const common = {
    AUTH_AUDIENCE: 'api://privacy-data-service',
    AUTH_ISSUER_TEMPLATE: 'https://login.microsoftonline.com/{tenantid}/v2.0',
    AUTH_JWKS_URI: 'https://login.microsoftonline.com/common/discovery/v2.0/keys',
    KEY_FILE_FOLDER: keyFolder,
    RESIDENCY_FENCE_SECONDS: '0',
  };
  const { [storageSettingName(TARGET)]: _target, ...withoutTarget } = settings;
  const allConfig = loadConfig({ ...common, ...settings });
  const sourceConfig = loadConfig({ ...common, ...withoutTarget });
  const keys = createKeyProviders(allConfig.keys);

  let marks: PhaseMark[] | undefined;
  let stopTrace: (() => TableTrace) | undefined;
  const phasePolicy: TablePolicy = {
    name: 'benchMigrationPhases',
    sendRequest: async (request, next) => {
      const response = await next(request);
      const list = marks;
      if (
        list &&
        response.status < 300 &&
        typeof request.body === 'string' &&
        /\/migrations(\(|$)/.test(new URL(request.url).pathname)
      ) {
        const { status, item } = jobPosition(request.body);
        const previous = list.at(-1);
        if (status && (previous?.status !== status || previous.item !== item)) {
          if (previous && stopTrace) previous.trace = stopTrace();
          stopTrace = bench.counter.startTrace();
          list.push({ status, item, at: now(), counts: bench.counter.snapshot(), cpu: process.cpuUsage() });
        }
      }
      return response;
    },
  };
  const tablePolicies = [
    { policy: bench.counter.tablePolicy, position: 'perRetry' as const },
    { policy: phasePolicy, position: 'perCall' as const },
  ];
  return {
    source: createServices(sourceConfig, { keys, storage: { tablePolicies } }),
    target: createServices(allConfig, { keys, storage: { tablePolicies } }),
    watchPhases() {
      const list: PhaseMark[] = [
        { status: 'starting', at: now(), counts: bench.counter.snapshot(), cpu: process.cpuUsage() },
      ];
      stopTrace = bench.counter.startTrace();
      marks = list;
      return () => {
        marks = undefined;
        const last = list.at(-1);
        if (last && stopTrace) last.trace = stopTrace();
        stopTrace = undefined;
        return list;
      };
    },
    close: () => rm(keyFolder, { recursive: true, force: true }),
  };
}

const ITEM_STATUSES = ['copying', 'verifying', 'cleaning'];

/** The status and item a saved job entity names (its cursor is JSON in a string column). */
function jobPosition(body: string): { status?: string; item?: string } {
  try {
    const entity = JSON.parse(body) as { status?: unknown; cursor?: unknown };
    if (typeof entity.status !== 'string') return {};
    if (!ITEM_STATUSES.includes(entity.status) || typeof entity.cursor !== 'string') {
      return { status: entity.status };
    }
    const { item } = JSON.parse(entity.cursor) as { item: number };
    return { status: entity.status, item: [...MOVED_TABLES, ...MOVED_CONTAINERS][item] ?? 'end' };
  } catch {
    return {};
  }
}

// ---------------------------------------------------------------------------------------------------------
// Seeding: records (raw seeder), requests and audit events (raw rows in the product layout), packages
// (PackageStore.write), all in the source geography.

async function seedTenant(
  bench: Bench,
  services: Services,
  scale: Scale,
  size: Size,
  label: string,
  seed: number,
): Promise<{ tenant: TenantScope; seeding: Record<string, unknown> }> {
  const { entry } = await services.directory.provision({
    tenantId: randomUUID(),
    countryCode: COUNTRY,
    displayName: `Bench residency ${label}`,
  });
  if (entry.geography !== SOURCE) throw new Error(`Residency: the tenant landed in ${entry.geography}.`);
  const tenant = services.directory.scopeOf(entry);
  const perSubject = size.recordsPerSubject;
  const rng = random(seed);
  const owners: BenchSubject[] = [];

  // Raw clients on the product's own tables (no write fence: one directory read per write otherwise).
  const seeder = await bench.seeder(tenant, scale.seedConcurrency, {
    records: TABLES.records,
    lookups: TABLES.recordLookup,
    expiry: TABLES.expiry,
  });
  const records: SeedStats = await seeder.seed(Math.ceil(size.records / perSubject), (index) => {
    const owner = benchSubject(rng, `move.${label}${index}`);
    if (owners.length < size.packages) owners.push(owner);
    const count = Math.min(perSubject, size.records - index * perSubject);
    return {
      subject: owner.subject,
      records: subjectRecords(rng, owner, count, scale.recordBytes, `m${index}`),
    };
  });

  let started = now();
  const requestTable = await bench.rawTable(SOURCE, TABLES.requests);
  await submitInBatches(
    requestTable,
    requestRows(rng, tenant.tenantId, size.requests, services.clock()).map((row): TransactionAction => [
      'create',
      row,
    ]),
  );
  const requestsMs = now() - started;

  started = now();
  const auditTable = await bench.rawTable(SOURCE, TABLES.audit);
  await submitInBatches(
    auditTable,
    auditRows(rng, tenant.tenantId, size.auditEvents, services.clock()).map((row): TransactionAction => [
      'create',
      row,
    ]),
  );
  const verification = await services.audit.verify(tenant);
  if (!verification.valid || verification.checked !== size.auditEvents) {
    throw new Error(`Residency: the seeded audit chain does not verify: ${JSON.stringify(verification)}.`);
  }
  const auditMs = now() - started;

  started = now();
  const pseudonymKey = await new Pseudonymizer().keyFor(tenant);
  const store = new PackageStore(new SubjectKeyStore(), new ExpiryIndex(), services.clock);
  const packageBytes: number[] = [];
  for (const [index, owner] of owners.entries()) {
    const generatedAt = new Date(services.clock().getTime() - (index + 1) * DAY_MS);
    const requestId = newRequestId(generatedAt);
    const written = await store.write(
      tenant,
      hmacWith(pseudonymKey, 'objectId', owner.subject.objectId),
      requestId,
      {
        kind: 'export',
        request: {
          id: requestId,
          tenantId: tenant.tenantId,
          type: 'export',
          regulation: 'GDPR',
          receivedAt: generatedAt.toISOString(),
          subject: owner.subject,
        },
        generatedAt,
        own: { has: () => true },
        categories: packageCategories(owner, generatedAt),
        auditEvents: noAuditEvents(),
      },
    );
    packageBytes.push(written.sizeBytes);
  }
  const packagesMs = now() - started;
  return {
    tenant,
    seeding: {
      records,
      requests: { count: size.requests, ms: round(requestsMs) },
      auditEvents: { count: size.auditEvents, ms: round(auditMs), verified: verification },
      packages: {
        count: owners.length,
        zipBytes: packageBytes.reduce((a, b) => a + b, 0),
        ms: round(packagesMs),
      },
    },
  };
}

const REQUEST_TYPES: readonly RequestType[] = ['access', 'export', 'delete', 'rectify', 'restrict'];

/** Completed requests as RequestRepository stores them (PartitionKey the tenant, RowKey the request id). */
function requestRows(rng: () => number, tenantId: string, count: number, clock: Date): Row[] {
  const rows: Row[] = [];
  const first = clock.getTime() - 400 * DAY_MS;
  for (let i = 0; i < count; i++) {
    const received = new Date(first + Math.floor((i * 390 * DAY_MS) / Math.max(1, count)));
    const at = (days: number) => new Date(received.getTime() + days * DAY_MS).toISOString();
    const type = REQUEST_TYPES[i % REQUEST_TYPES.length]!;
    const id = newRequestId(received);
    const request: DataSubjectRequest = {
      id,
      tenantId,
      type,
      regulation: i % 3 === 0 ? 'CCPA' : 'GDPR',
      subject: { upn: `move.subject${i}@contoso.com`, objectId: uuid(rng) },
      dataSubjectType: 'currentEmployee',
      notes: `ticket ${1000 + i}`,
      status: 'completed',
      receivedAt: received.toISOString(),
      dueAt: at(30),
      history: [
        { action: 'received', to: 'received', at: at(0), actor: ACTOR },
        { action: 'discovered', from: 'discovering', to: 'awaitingReview', at: at(0.01), actor: ACTOR },
        { action: 'approved', from: 'awaitingReview', to: 'inProgress', at: at(1), actor: ACTOR },
        { action: 'completed', from: 'inProgress', to: 'completed', at: at(1.01), actor: ACTOR },
      ],
      discovery: {
        counts: { directory: 3, device: 4, usage: 2, auditEvents: 3 },
        completedAt: at(0.01),
      },
      result: { completedAt: at(1.01) },
      createdBy: ACTOR,
      subjectKey: createHash('sha256').update(`${tenantId}${i}`).digest('hex'),
      subjectHolder: 'object',
    };
    rows.push({
      partitionKey: tenantId,
      rowKey: id,
      type: request.type,
      status: request.status,
      document: JSON.stringify(request),
      outbox: '[]',
    });
  }
  return rows;
}

const AUDIT_ACTIONS = ['dsr.created', 'dsr.discovered', 'dsr.approved', 'dsr.completed', 'export.downloaded'];

/** A hash chain of `count` events as AuditAppender writes it: events, id markers and each block's head. */
function auditRows(rng: () => number, tenantId: string, count: number, clock: Date): Row[] {
  const rows: Row[] = [];
  const first = clock.getTime() - 300 * DAY_MS;
  let previousHash = GENESIS_HASH;
  for (let sequence = 1; sequence <= count; sequence++) {
    const requestNo = Math.floor((sequence - 1) / AUDIT_ACTIONS.length);
    const content: Omit<AuditEvent, 'hash'> = {
      id: uuid(rng),
      sequence,
      time: new Date(first + sequence * 60_000).toISOString(),
      tenantId,
      actor: ACTOR,
      action: AUDIT_ACTIONS[(sequence - 1) % AUDIT_ACTIONS.length]!,
      target: { type: 'dsr', id: `request-${requestNo}` },
      outcome: 'success',
      correlationId: uuid(rng),
      details: {
        requestId: `request-${requestNo}`,
        type: 'export',
        subjectRef: createHash('sha256').update(`${tenantId}${requestNo}`).digest('hex'),
      },
      previousHash,
    };
    const event: AuditEvent = { ...content, hash: hashEvent(content) };
    previousHash = event.hash;
    const { partitionKey } = auditKeys.event(tenantId, sequence);
    const marker: MarkerEntity = { partitionKey, rowKey: auditKeys.idMarkerRow(event.id), sequence };
    rows.push(auditRow(partitionKey, event), marker);
    const lastOfBlock =
      sequence === count ||
      blockOf(sequence + 1, DEFAULT_BLOCK_SIZE) !== blockOf(sequence, DEFAULT_BLOCK_SIZE);
    if (lastOfBlock) {
      const head: HeadEntity = {
        partitionKey,
        rowKey: HEAD_ROW,
        sequence,
        hash: event.hash,
        lastEventId: event.id,
      };
      rows.push(head);
    }
  }
  return rows;
}

/** One category of records holding PACKAGE_BYTES of random data (base64), so the ZIP is about that size. */
async function* packageCategories(owner: BenchSubject, at: Date) {
  const perRecord = 1000;
  const records: PersonalDataRecord[] = Array.from(
    { length: Math.ceil(PACKAGE_BYTES / perRecord) },
    (_, i) => ({
      category: 'directory',
      recordId: `package-${i}`,
      occurredAt: at.toISOString(),
      subject: owner.subject,
      data: { attachment: randomBytes(perRecord).toString('base64') },
    }),
  );
  yield {
    category: 'directory',
    records: (async function* () {
      yield records;
    })(),
  };
}

// eslint-disable-next-line require-yield
async function* noAuditEvents(): AsyncGenerator<AuditEvent> {
  return;
}

/**
 * The raw move's tenant: every row and blob of the product tenant in the source account, under another tenant
 * id, in the raw copy's own tables and containers.
 */
async function cloneTenant(bench: Bench, tenantId: string, cloneId: string) {
  const renamed = (key: string) => (key === tenantId ? cloneId : `${cloneId}${key.slice(tenantId.length)}`);
  const rows: Record<string, number> = {};
  const blobs: Record<string, number> = {};
  for (const name of MOVED_TABLES) {
    const source = await bench.rawTable(SOURCE, name);
    const target = await bench.rawTable(SOURCE, rawTableName(name));
    await bench.rawTable(TARGET, rawTableName(name));
    rows[name] = 0;
    for await (const page of tenantPages(source, tenantId)) {
      const copies = page.map((row) => ({ ...row, partitionKey: renamed(row.partitionKey) }));
      await submitInBatches(
        target,
        copies.map((row): TransactionAction => ['create', row]),
      );
      rows[name] += copies.length;
    }
  }
  for (const name of MOVED_CONTAINERS) {
    const source = bench.rawBlobs(SOURCE).getContainerClient(name);
    await source.createIfNotExists();
    const target = bench.rawBlobs(SOURCE).getContainerClient(rawContainerName(name));
    await target.createIfNotExists();
    await bench.rawBlobs(TARGET).getContainerClient(rawContainerName(name)).createIfNotExists();
    blobs[name] = 0;
    for await (const blob of source.listBlobsFlat({ prefix: tenantBlobPrefix(tenantId) })) {
      await copyBlob(source, target, blob.name, `${cloneId}/${blob.name.slice(tenantId.length + 1)}`);
      blobs[name]++;
    }
  }
  return { rows, blobs };
}

async function dropRawCopies(bench: Bench): Promise<void> {
  for (const geography of [SOURCE, TARGET]) {
    const tables = bench.rawTables(geography);
    for (const name of MOVED_TABLES) await tables.deleteTable(rawTableName(name));
    for (const name of MOVED_CONTAINERS) {
      await bench.rawBlobs(geography).getContainerClient(rawContainerName(name)).deleteIfExists();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The raw SDK move.

/** A row as read, without its ETag, timestamp and OData annotations, so that it can be written as it is. */
function stored(entity: Record<string, unknown>): Row {
  const row: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(entity)) {
    if (name === 'etag' || name === 'timestamp' || name.startsWith('odata.')) continue;
    row[name] = value;
  }
  return row as Row;
}

/** The tenant's rows of a table, a page at a time, each value with its Edm type (exact copies). */
async function* tenantPages(table: TableClient, tenantId: string, select?: string[]): AsyncGenerator<Row[]> {
  const pages = table
    .listEntities<Record<string, unknown>>({
      queryOptions: { filter: tenantPartitionFilter(tenantId), ...(select ? { select } : {}) },
      disableTypeConversion: true,
    })
    .byPage({ maxPageSize: PAGE_SIZE });
  for await (const page of pages) yield page.map(stored);
}

/** Raw transactions: grouped by partition, 100 per transaction, PARALLEL_PARTITIONS partitions at once. */
async function rawBatches(table: TableClient, actions: readonly TransactionAction[]): Promise<number> {
  const byPartition = new Map<string, TransactionAction[]>();
  for (const action of actions) {
    const key = action[1].partitionKey!;
    const group = byPartition.get(key);
    if (group) group.push(action);
    else byPartition.set(key, [action]);
  }
  const counts = await inPool([...byPartition.values()], PARALLEL_PARTITIONS, async (group) => {
    for (let i = 0; i < group.length; i += BATCH_LIMIT) {
      await table.submitTransaction(group.slice(i, i + BATCH_LIMIT));
    }
    return Math.ceil(group.length / BATCH_LIMIT);
  });
  return counts.reduce((a, b) => a + b, 0);
}

async function readBody(stream: NodeJS.ReadableStream | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (stream) for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function copyBlob(
  source: ContainerClient,
  target: ContainerClient,
  name: string,
  targetName = name,
): Promise<number> {
  const download = await source.getBlobClient(name).download();
  const body = await readBody(download.readableStreamBody);
  await target.getBlockBlobClient(targetName).upload(body, body.length, {
    ...(download.metadata ? { metadata: download.metadata } : {}),
    blobHTTPHeaders: download.contentType ? { blobContentType: download.contentType } : {},
  });
  return body.length;
}

const blobDigest = async (container: ContainerClient, name: string) =>
  createHash('sha256')
    .update(await readBody((await container.getBlobClient(name).download()).readableStreamBody))
    .digest('hex');

type RawMove = Awaited<ReturnType<typeof rawMove>>;

async function rawMove(bench: Bench, tenantId: string) {
  const tables = async (geography: Geography) =>
    Object.fromEntries(
      await Promise.all(
        MOVED_TABLES.map(
          async (name) => [name, await bench.rawTable(geography, rawTableName(name))] as const,
        ),
      ),
    );
  const containers = (geography: Geography) =>
    Object.fromEntries(
      MOVED_CONTAINERS.map((name) => [
        name,
        bench.rawBlobs(geography).getContainerClient(rawContainerName(name)),
      ]),
    );
  const source = await tables(SOURCE);
  const target = await tables(TARGET);
  const sourceBlobs = containers(SOURCE);
  const targetBlobs = containers(TARGET);
  const prefix = tenantBlobPrefix(tenantId);
  const copied: Record<string, number> = {};
  const verified: Record<string, { source: number; target: number }> = {};
  const deleted: Record<string, number> = {};
  const phases = { copyMs: 0, verifyMs: 0, deleteMs: 0 };
  const byItem: Record<string, number> = {};
  const timed = async (key: string, work: () => Promise<void>) => {
    const itemStarted = now();
    await work();
    byItem[key] = round(now() - itemStarted);
  };
  let transactions = 0;
  let blobBytes = 0;
  let ms = 0;

  collectGarbage();
  const counts = bench.counter.snapshot();
  const stopTrace = bench.counter.startTrace();
  const cpu = process.cpuUsage();
  const {
    result: { samples },
    memory,
  } = await measureMemory(() =>
    sampleRetained(async () => {
      const started = now();
      // Copy: each page of rows upserted in transactions by partition; blobs downloaded and uploaded.
      for (const name of MOVED_TABLES) {
        copied[name] = 0;
        await timed(`copy/${name}`, async () => {
          for await (const rows of tenantPages(source[name]!, tenantId)) {
            transactions += await rawBatches(
              target[name]!,
              rows.map((row): TransactionAction => ['upsert', row, 'Replace']),
            );
            copied[name] = (copied[name] ?? 0) + rows.length;
          }
        });
      }
      for (const name of MOVED_CONTAINERS) {
        copied[name] = 0;
        await timed(`copy/${name}`, async () => {
          for await (const blob of sourceBlobs[name]!.listBlobsFlat({ prefix })) {
            blobBytes += await copyBlob(sourceBlobs[name]!, targetBlobs[name]!, blob.name);
            copied[name] = (copied[name] ?? 0) + 1;
          }
        });
      }
      phases.copyMs = now() - started;

      // Verification read: every row and blob of the tenant on both sides, once.
      const verifyStarted = now();
      const count = async (table: TableClient) => {
        let n = 0;
        for await (const rows of tenantPages(table, tenantId)) n += rows.length;
        return n;
      };
      for (const name of MOVED_TABLES) {
        await timed(`verify/${name}`, async () => {
          verified[name] = { source: await count(source[name]!), target: await count(target[name]!) };
        });
      }
      for (const name of MOVED_CONTAINERS) {
        const sides = (verified[name] = { source: 0, target: 0 });
        await timed(`verify/${name}`, async () => {
          for await (const blob of sourceBlobs[name]!.listBlobsFlat({ prefix })) {
            const [a, b] = await Promise.all([
              blobDigest(sourceBlobs[name]!, blob.name),
              blobDigest(targetBlobs[name]!, blob.name),
            ]);
            sides.source++;
            if (a === b) sides.target++;
          }
        });
      }
      phases.verifyMs = now() - verifyStarted;

      // Delete: the source rows in transactions by partition (listing keys only), then the blobs.
      const deleteStarted = now();
      for (const name of MOVED_TABLES) {
        deleted[name] = 0;
        await timed(`delete/${name}`, async () => {
          for await (const rows of tenantPages(source[name]!, tenantId, ['PartitionKey', 'RowKey'])) {
            transactions += await rawBatches(
              source[name]!,
              rows.map((row): TransactionAction => [
                'delete',
                { partitionKey: row.partitionKey, rowKey: row.rowKey },
              ]),
            );
            deleted[name] = (deleted[name] ?? 0) + rows.length;
          }
        });
      }
      for (const name of MOVED_CONTAINERS) {
        deleted[name] = 0;
        await timed(`delete/${name}`, async () => {
          for await (const blob of sourceBlobs[name]!.listBlobsFlat({ prefix })) {
            await sourceBlobs[name]!.getBlobClient(blob.name).delete();
            deleted[name] = (deleted[name] ?? 0) + 1;
          }
        });
      }
      phases.deleteMs = now() - deleteStarted;
      ms = now() - started;
    }),
  );
  const cpuMs = cpuMsSince(cpu);
  const trace = stopTrace();
  const requests = bench.counter.since(counts);
  const rows = MOVED_TABLES.reduce((n, name) => n + copied[name]!, 0);
  const blobs = MOVED_CONTAINERS.reduce((n, name) => n + copied[name]!, 0);
  for (const [name, sides] of Object.entries(verified)) {
    if (sides.source !== copied[name] || sides.target !== copied[name] || deleted[name] !== copied[name]) {
      throw new Error(
        `Residency raw move: ${name} copied ${copied[name]}, verified ${JSON.stringify(sides)}, deleted ${deleted[name]}.`,
      );
    }
  }
  return {
    includes:
      'read + upsert in transactions (copy), one full read of both sides (verification: row counts, blob SHA-256), delete in transactions',
    ms: round(ms),
    phases: {
      copyMs: round(phases.copyMs),
      verifyMs: round(phases.verifyMs),
      deleteMs: round(phases.deleteMs),
    },
    msByItem: byItem,
    rows,
    blobs,
    blobBytes,
    byTable: copied,
    rowsPerSecond: round(rows / (ms / 1000)),
    cpuMs: round(cpuMs),
    transactions,
    requests: totalRequests(requests),
    requestsPerRow: round(totalRequests(requests) / rows, 3),
    requestsByService: requests,
    tableRequests: traceSummary(trace),
    memory: { ...memory, ...retainedOf(samples) },
    concurrency: PARALLEL_PARTITIONS,
  };
}

function mergeTraces(traces: readonly TableTrace[]): TableTrace {
  const merged: TableTrace = {};
  for (const trace of traces) {
    for (const [kind, t] of Object.entries(trace)) {
      const entry = (merged[kind] ??= { requests: 0, rows: 0, ms: 0 });
      entry.requests += t.requests;
      entry.rows += t.rows;
      entry.ms += t.ms;
    }
  }
  return merged;
}

function traceSummary(trace: TableTrace) {
  return Object.fromEntries(
    Object.entries(trace)
      .sort(([, a], [, b]) => b.ms - a.ms)
      .map(([kind, t]) => [kind, { requests: t.requests, rows: t.rows, ms: round(t.ms) }]),
  );
}

/** A full GC this often during the timed runs, to sample what is really held (~2% of their time). */
const RETAINED_SAMPLE_MS = 2000;

interface RetainedSample {
  at: number;
  mb: number;
  /** How long the full GC took (the event loop waits for it). */
  gcMs: number;
}

/**
 * What is really held while `run` runs: every RETAINED_SAMPLE_MS a full GC, then heapUsed + arrayBuffers against
 * the same after a full GC just before (no samples without --expose-gc). The peak of measureMemory counts
 * garbage not yet collected, which grows with the length of the run whatever is held; this does not.
 */
async function sampleRetained<T>(run: () => Promise<T>): Promise<{ result: T; samples: RetainedSample[] }> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const samples: RetainedSample[] = [];
  const heap = () => {
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  };
  collectGarbage();
  const baseline = heap();
  const timer = gc
    ? setInterval(() => {
        const at = now();
        gc();
        samples.push({ at, mb: (heap() - baseline) / (1024 * 1024), gcMs: now() - at });
      }, RETAINED_SAMPLE_MS)
    : undefined;
  try {
    return { result: await run(), samples };
  } finally {
    clearInterval(timer);
  }
}

/** The peak retained growth, how many samples, and the time their full GCs took in all. */
const retainedOf = (samples: readonly RetainedSample[]) => ({
  retainedPeakGrowthMB: peakOf(samples),
  retainedSamples: samples.length,
  retainedSamplingGcMs: round(samples.reduce((total, sample) => total + sample.gcMs, 0)),
});

const peakOf = (samples: readonly RetainedSample[]): number | null =>
  samples.length > 0 ? round(Math.max(...samples.map((sample) => sample.mb))) : null;

// ---------------------------------------------------------------------------------------------------------
// The product's move.

type ProductMove = Awaited<ReturnType<typeof productMove>>;

async function productMove(bench: Bench, env: MoveServices, tenantId: string) {
  const services = env.target;
  const tenant = await services.directory.resolve(tenantId);
  const calls: { ms: number; from: string; to: string }[] = [];
  let ms = 0;
  let end: Omit<PhaseMark, 'status'> | undefined;
  let stopPhases: (() => PhaseMark[]) | undefined;
  collectGarbage();
  const counts = bench.counter.snapshot();
  const cpu = process.cpuUsage();
  const {
    result: { result: job, samples },
    memory,
  } = await measureMemory(() =>
    sampleRetained(async () => {
      stopPhases = env.watchPhases();
      const started = now();
      const first = await services.residency.start(tenant, ACTOR, 'bench-residency');
      let job: MigrationJob = first;
      while (job.status !== 'completed') {
        const callStarted = now();
        const next = await services.mover.run({ tenantId, migrationId: first.migrationId });
        if (!next) throw new Error(`Residency: migration ${first.migrationId} is gone.`);
        calls.push({ ms: round(now() - callStarted), from: job.status, to: next.status });
        if (next.status === 'failed')
          throw new Error(`Residency: the move failed: ${JSON.stringify(next.failure)}.`);
        job = next;
      }
      ms = now() - started;
      end = { at: now(), counts: bench.counter.snapshot(), cpu: process.cpuUsage() };
      return job;
    }),
  );
  const cpuMs = cpuMsSince(cpu);
  const marks = stopPhases!();
  const requests = bench.counter.since(counts);
  const trace = mergeTraces(marks.map((mark) => mark.trace ?? {}));

  const manifest = job.manifest;
  if (!manifest) throw new Error('Residency: the completed job has no manifest.');
  const entry = await services.directory.get(tenantId);
  if (entry?.geography !== TARGET || entry.migration) {
    throw new Error(`Residency: after the move the directory says ${JSON.stringify(entry)}.`);
  }
  const unmatched = [...Object.entries(manifest.tables), ...Object.entries(manifest.containers)]
    .filter(([, sides]) => !sides.matched)
    .map(([name]) => name);
  const left = Object.entries(manifest.sourceRemaining ?? {}).filter(([, n]) => n > 0);
  if (unmatched.length > 0 || left.length > 0) {
    throw new Error(
      `Residency: unmatched ${unmatched.join(', ')}; left in the source ${JSON.stringify(left)}.`,
    );
  }
  const rows = Object.values(manifest.tables).reduce((n, t) => n + t.source.count, 0);
  const blobs = Object.values(manifest.containers).reduce((n, c) => n + c.source.count, 0);
  const blobBytes = Object.values(manifest.containers).reduce((n, c) => n + c.source.bytes, 0);

  // Per status: from the save that entered it to the save that entered the next one (the last ends with the
  // run); and the time of each item (table, container) of the copy, the verification and the cleaning.
  interface Phase {
    ms: number;
    cpuMs: number;
    requests: number;
    retained: RetainedSample[];
    traces: TableTrace[];
  }
  const phases = new Map<string, Phase>();
  const byItem: Record<string, number> = {};
  for (const [i, mark] of marks.entries()) {
    const next = marks[i + 1] ?? end!;
    let phase = phases.get(mark.status);
    if (!phase) {
      phase = { ms: 0, cpuMs: 0, requests: 0, retained: [], traces: [] };
      phases.set(mark.status, phase);
    }
    phase.ms += next.at - mark.at;
    phase.cpuMs += (next.cpu.user - mark.cpu.user + next.cpu.system - mark.cpu.system) / 1000;
    phase.requests += totalRequests(next.counts) - totalRequests(mark.counts);
    phase.retained.push(...samples.filter((sample) => sample.at >= mark.at && sample.at < next.at));
    if (mark.trace) phase.traces.push(mark.trace);
    if (mark.item) {
      const key = `${mark.status}/${mark.item}`;
      byItem[key] = round((byItem[key] ?? 0) + next.at - mark.at);
    }
  }
  const byPhase = Object.fromEntries(
    [...phases].map(([status, phase]) => [
      status,
      {
        ms: round(phase.ms),
        cpuMs: round(phase.cpuMs),
        requests: phase.requests,
        retainedPeakGrowthMB: peakOf(phase.retained),
        tableRequests: traceSummary(mergeTraces(phase.traces)),
      },
    ]),
  );
  const fencedAt = Date.parse(job.fencedAt);
  return {
    ms: round(ms),
    rows,
    blobs,
    blobBytes,
    byTable: Object.fromEntries(Object.entries(manifest.tables).map(([name, t]) => [name, t.source.count])),
    byContainer: Object.fromEntries(
      Object.entries(manifest.containers).map(([name, c]) => [
        name,
        { blobs: c.source.count, bytes: c.source.bytes },
      ]),
    ),
    rowsPerSecond: round(rows / (ms / 1000)),
    cpuMs: round(cpuMs),
    writePauseMs: Date.parse(job.switchedAt!) - fencedAt,
    totalFromFenceMs: Date.parse(job.completedAt!) - fencedAt,
    moverRuns: calls,
    phases: byPhase,
    msByItem: byItem,
    resynced: manifest.resynced,
    requests: totalRequests(requests),
    requestsPerRow: round(totalRequests(requests) / rows, 3),
    requestsByService: requests,
    tableRequests: traceSummary(trace),
    memory: { ...memory, ...retainedOf(samples) },
  };
}
