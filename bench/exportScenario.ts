// (b) Export of a subject with 10k records: an approved export request fulfilled by the real dsr-work step
// (services.fulfilment.run, which reads every category with records.listPages and streams the ZIP, encrypted,
// into Blob Storage through PackageStore and writeExportPackage), against the floor of the same run: a raw SDK
// listing of the subject's partition (no decryption), then as many bytes as the ZIP has encrypted with the
// same package cipher and uploaded with the raw SDK, so that both sides pay for the encryption.
// Then the download: the last measured export's package through a download link (services.downloads, which
// decrypts as it streams), against the raw SDK download of the same encrypted blob; and the same for a package
// of a second subject with as many records of 4x the data (so 4x the package), to show that the download's
// memory does not grow with the package.
import { createHash, randomBytes } from 'node:crypto';
import { finished } from 'node:stream/promises';
import { setImmediate } from 'node:timers/promises';

import { odata } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';

import { createPackageEncryptor, encryptedSize } from '../shared/crypto/packageCipher';
import { recordsPartition } from '../shared/records/recordKeys';
import type { PackageDownload } from '../shared/requests/packageLinks';
import type { TenantScope } from '../shared/residency/tenantDirectory';
import { CONTAINERS, TABLES } from '../shared/storage/names';
import { type BenchSubject, benchSubject, random, subjectRecords } from './dataset';
import type { Bench } from './environment';
import { measureMemory, measureRetainedMemory, type MemoryGrowth } from './memorySampler';
import { type RequestCounts, totalRequests } from './requestCounter';
import type { Scale } from './scale';
import { cpuMsSince, median, now, progress, round } from './util';

const ADMIN = {
  actor: { type: 'user' as const, id: 'bench-admin', upn: 'admin@contoso.com' },
  correlationId: 'bench',
};

/**
 * The second, larger package of the download figures: a subject with as many records as the export subject,
 * each with this many times its data. (4x the records would make the same package, but Azurite writes a
 * partition of 40k records in about 3 minutes against 10 s for 10k.)
 */
const LARGER_PACKAGE_FACTOR = 4;
/** A full GC this often during the untimed download that measures the memory really held. */
const RETAINED_GC_INTERVAL_MS = 10;
/** Downloads take tens of ms: each package is downloaded this many times the export's repetitions. */
const DOWNLOADS_PER_EXPORT_REPETITION = 3;
/** The download's memory is flat when the larger package's heap growth is at most the smaller's plus this. */
const MEMORY_FLAT_MARGIN_MB = 16;
const MB = 1024 * 1024;

export async function exportScenario(bench: Bench, scale: Scale) {
  const { services } = bench;
  const records = scale.export.subjectRecords;
  const tenant = await bench.newTenant('US');
  const owner = benchSubject(random(3), 'megan.bowen');
  progress(`export: seeding ${records} records of one subject`);
  const seeder = await bench.seeder(tenant, scale.seedConcurrency);
  const seeding = await seeder.seed(1, () => ({
    subject: owner.subject,
    records: subjectRecords(random(4), owner, records, scale.recordBytes, 'megan'),
  }));
  const { subjectKey } = await services.records.subjectOf(tenant, owner.subject);
  const partitionKey = recordsPartition(tenant.tenantId, subjectKey);
  const rawRecords = await bench.rawTable(tenant.geography, TABLES.records);
  const container = bench.rawBlobs(tenant.geography).getContainerClient(CONTAINERS.exportPackages);

  /** A new export request of the subject, discovered and approved: ready for its fulfil step. */
  const approvedExport = async (of: BenchSubject = owner): Promise<string> => {
    const request = await services.requests.create(
      tenant,
      { type: 'export', regulation: 'GDPR', subject: of.subject, dataSubjectType: 'currentEmployee' },
      ADMIN,
    );
    await services.fulfilment.run({ tenantId: tenant.tenantId, requestId: request.id, step: 'discover' });
    await services.requests.decide(tenant, request.id, 'approve', ADMIN);
    return request.id;
  };

  /** The completed export's package size; throws unless the request completed with every record. */
  const completedExport = async (requestId: string, expected: number): Promise<number> => {
    const done = await services.requests.load(tenant, requestId);
    const result = done.result as
      { package?: { sizeBytes: number }; counts?: Record<string, number> } | undefined;
    const exported = Object.entries(result?.counts ?? {})
      .filter(([name]) => name !== 'auditEvents')
      .reduce((sum, [, n]) => sum + n, 0);
    if (done.status !== 'completed' || !result?.package || exported !== expected) {
      throw new Error(`The export ended ${done.status} with ${exported} records, not ${expected}.`);
    }
    return result.package.sizeBytes;
  };

  const runs: {
    requestId: string;
    ms: number;
    cpuMs: number;
    memory: MemoryGrowth;
    counts: RequestCounts;
    zipBytes: number;
  }[] = [];
  const floors: {
    listMs: number;
    encryptMs: number;
    uploadMs: number;
    cpuMs: number;
    entities: number;
    counts: RequestCounts;
  }[] = [];
  for (let repetition = 0; repetition < scale.export.repetitions; repetition++) {
    const requestId = await approvedExport();
    const message = { tenantId: tenant.tenantId, requestId };

    const before = bench.counter.snapshot();
    const cpuBefore = process.cpuUsage();
    const started = now();
    const { memory } = await measureMemory(() => services.fulfilment.run({ ...message, step: 'fulfil' }));
    const ms = now() - started;
    const cpuMs = cpuMsSince(cpuBefore);
    const counts = bench.counter.since(before);
    const zipBytes = await completedExport(requestId, records);
    runs.push({ requestId, ms, cpuMs, memory, counts, zipBytes });
    progress(
      `export: run ${repetition + 1}: ${round(ms)} ms, ZIP ${zipBytes} bytes, rss +${memory.rssPeakGrowthMB} MB, heap +${memory.heapPeakGrowthMB} MB`,
    );

    // The floor: the same entities listed, and as many bytes encrypted and uploaded, with the raw SDK.
    const payload = randomBytes(zipBytes);
    const floorBlob = `bench-floor/${requestId}.bin`;
    const floorBefore = bench.counter.snapshot();
    const floorCpu = process.cpuUsage();
    const listStarted = now();
    let entities = 0;
    for await (const _row of rawRecords.listEntities({
      queryOptions: { filter: odata`PartitionKey eq ${partitionKey}` },
    })) {
      entities++;
    }
    const listMs = now() - listStarted;
    const encryptStarted = now();
    const sealed = await encrypt(payload, `${tenant.tenantId}|${requestId}|${floorBlob}`);
    const encryptMs = now() - encryptStarted;
    const uploadStarted = now();
    await container.getBlockBlobClient(floorBlob).uploadData(sealed);
    const uploadMs = now() - uploadStarted;
    floors.push({
      listMs,
      encryptMs,
      uploadMs,
      cpuMs: cpuMsSince(floorCpu),
      entities,
      counts: bench.counter.since(floorBefore),
    });
    progress(
      `export: floor ${repetition + 1}: list ${round(listMs)} ms + encrypt ${round(encryptMs)} ms + upload ${round(uploadMs)} ms`,
    );
  }

  // One more, untimed export with a full GC every 250 ms: the memory actually held, garbage aside.
  const retainedRequest = await approvedExport();
  const retained = await measureRetainedMemory(() =>
    services.fulfilment.run({ tenantId: tenant.tenantId, requestId: retainedRequest, step: 'fulfil' }),
  );
  progress(`export: retained memory run: ${JSON.stringify(retained)}`);

  // The download of the last measured export's package, then of a package of a subject with as many records
  // of 4x the data (seeded only now, so that its rows do not slow the export figures above).
  const smaller = await downloadFigures(bench, tenant, container, runs[runs.length - 1]!.requestId, scale);
  const largerRecordBytes = scale.recordBytes * LARGER_PACKAGE_FACTOR;
  const largerOwner = benchSubject(random(6), 'adele.vance');
  progress(`export: seeding ${records} records of ${largerRecordBytes} bytes of a second subject`);
  const largerSeeding = await seeder.seed(1, () => ({
    subject: largerOwner.subject,
    records: subjectRecords(random(7), largerOwner, records, largerRecordBytes, 'adele'),
  }));
  const largerRequest = await approvedExport(largerOwner);
  const largerStarted = now();
  const { memory: largerExportMemory } = await measureMemory(() =>
    services.fulfilment.run({ tenantId: tenant.tenantId, requestId: largerRequest, step: 'fulfil' }),
  );
  const largerExportMs = now() - largerStarted;
  await completedExport(largerRequest, records);
  progress(
    `export: larger export: ${round(largerExportMs)} ms, heap +${largerExportMemory.heapPeakGrowthMB} MB`,
  );
  const larger = await downloadFigures(bench, tenant, container, largerRequest, scale);
  const sizeDifferenceMB = (larger.packageBytes - smaller.packageBytes) / MB;

  const exportMs = median(runs.map((run) => run.ms));
  const floorMs = median(floors.map((floor) => floor.listMs + floor.encryptMs + floor.uploadMs));
  const rssPeak = Math.max(...runs.map((run) => run.memory.rssPeakGrowthMB));
  const heapPeak = Math.max(...runs.map((run) => run.memory.heapPeakGrowthMB));
  const last = runs[runs.length - 1]!;
  const lastFloor = floors[floors.length - 1]!;
  return {
    seeding: { ...seeding, largerPackageSubject: largerSeeding },
    result: {
      records,
      recordDataBytes: scale.recordBytes,
      zipBytes: last.zipBytes,
      exportMs: round(exportMs),
      exportMsRuns: runs.map((run) => round(run.ms)),
      exportCpuMs: round(median(runs.map((run) => run.cpuMs))),
      requests: totalRequests(last.counts),
      requestsByService: last.counts,
      floor: {
        ms: round(floorMs),
        listMs: round(median(floors.map((floor) => floor.listMs))),
        encryptMs: round(median(floors.map((floor) => floor.encryptMs))),
        uploadMs: round(median(floors.map((floor) => floor.uploadMs))),
        msRuns: floors.map((floor) => round(floor.listMs + floor.encryptMs + floor.uploadMs)),
        cpuMs: round(median(floors.map((floor) => floor.cpuMs))),
        entitiesListed: lastFloor.entities,
        requests: totalRequests(lastFloor.counts),
      },
      speedVsFloor: round(floorMs / exportMs, 2),
      memory: {
        rssPeakGrowthMB: rssPeak,
        heapPeakGrowthMB: heapPeak,
        runs: runs.map((run) => run.memory),
        retainedPeakGrowthMB: retained?.retainedPeakGrowthMB ?? 'needs --expose-gc',
      },
      goal: 'speedVsFloor >= 0.5, memory growth < 64 MB',
      meetsGoal: floorMs / exportMs >= 0.5 && rssPeak < 64 && heapPeak < 64,
      msIs: `median of ${runs.length} runs; memory is the largest peak of those runs`,
      download: {
        ...smaller,
        larger: {
          records,
          recordDataBytes: largerRecordBytes,
          export: {
            ms: round(largerExportMs),
            heapPeakGrowthMB: largerExportMemory.heapPeakGrowthMB,
            rssPeakGrowthMB: largerExportMemory.rssPeakGrowthMB,
          },
          ...larger,
        },
        packageBytesBySize: { smaller: smaller.packageBytes, larger: larger.packageBytes },
        heapPeakGrowthMBBySize: { smaller: smaller.heapPeakGrowthMB, larger: larger.heapPeakGrowthMB },
        rssPeakGrowthMBBySize: { smaller: smaller.rssPeakGrowthMB, larger: larger.rssPeakGrowthMB },
        retainedPeakGrowthMBBySize: {
          smaller: smaller.retainedPeakGrowthMB,
          larger: larger.retainedPeakGrowthMB,
        },
        memoryFlat: larger.heapPeakGrowthMB <= smaller.heapPeakGrowthMB + MEMORY_FLAT_MARGIN_MB,
        memoryFlatIs: `larger.heapPeakGrowthMB <= heapPeakGrowthMB + ${MEMORY_FLAT_MARGIN_MB}`,
        // Below the margin, a download holding the whole package would pass memoryFlat as well.
        packageSizeDifferenceMB: round(sizeDifferenceMB),
        sizeDifferenceExceedsMargin: sizeDifferenceMB > MEMORY_FLAT_MARGIN_MB,
        // A download holding the package would retain about the size difference more for the larger one.
        retainedFlat:
          typeof smaller.retainedPeakGrowthMB === 'number' && typeof larger.retainedPeakGrowthMB === 'number'
            ? larger.retainedPeakGrowthMB - smaller.retainedPeakGrowthMB < sizeDifferenceMB / 2
            : 'needs --expose-gc',
        retainedFlatIs: 'larger.retainedPeakGrowthMB - retainedPeakGrowthMB < packageSizeDifferenceMB / 2',
        msIs: `median of ${smaller.downloadMsRuns.length} downloads of each package; memory is the largest peak of those downloads`,
      },
    },
  };
}

/**
 * A completed export's package downloaded through a link (`services.downloads`: index row, key, audit, blob
 * download decrypted as it streams), against the raw SDK download of the same encrypted blob. Both are read
 * to the end by the same consumer, which hashes as it reads; the product's must give the link's SHA-256 and
 * size, the floor's exactly the encrypted size of that package, or the bench fails.
 */
async function downloadFigures(
  bench: Bench,
  tenant: TenantScope,
  container: ContainerClient,
  requestId: string,
  scale: Scale,
) {
  const link = await bench.services.downloads.issue(tenant, requestId, ADMIN, 'http://localhost');
  const token = new URL(link.url).pathname.split('/').pop();
  if (!token) throw new Error(`The link ${link.url} names no token.`);
  const blobNames: string[] = [];
  for await (const blob of container.listBlobsFlat({ prefix: `${tenant.tenantId}/${requestId}/` })) {
    blobNames.push(blob.name);
  }
  if (blobNames.length !== 1) {
    throw new Error(
      `Request ${requestId} has ${blobNames.length} package blobs, not 1: ${blobNames.join(', ')}`,
    );
  }
  const blob = container.getBlobClient(blobNames[0]!);
  const encryptedBytes = encryptedSize(link.sizeBytes);
  /** Throws unless the download gave (and announced) exactly the bytes the link names. */
  const verify = (download: PackageDownload, read: { bytes: number; sha256: string }) => {
    if (
      read.sha256 !== link.sha256 ||
      read.bytes !== link.sizeBytes ||
      download.sha256 !== link.sha256 ||
      download.sizeBytes !== link.sizeBytes
    ) {
      throw new Error(
        `The download of request ${requestId} gave ${read.bytes} bytes of SHA-256 ${read.sha256} (announced ` +
          `${download.sizeBytes} bytes, ${download.sha256}); its link says ${link.sizeBytes} bytes, ${link.sha256}.`,
      );
    }
  };

  const runs: { ms: number; cpuMs: number; memory: MemoryGrowth; counts: RequestCounts }[] = [];
  const floors: { ms: number; memory: MemoryGrowth; counts: RequestCounts }[] = [];
  const repetitions = scale.export.repetitions * DOWNLOADS_PER_EXPORT_REPETITION;
  for (let repetition = 0; repetition < repetitions; repetition++) {
    // Timed inside measureMemory, after the full GC it starts with.
    const before = bench.counter.snapshot();
    const { result, memory } = await measureMemory(async () => {
      const cpuBefore = process.cpuUsage();
      const started = now();
      const download = await bench.services.downloads.download(token);
      const read = await readToEnd(download.stream);
      return { download, read, ms: now() - started, cpuMs: cpuMsSince(cpuBefore) };
    });
    const { ms, cpuMs } = result;
    const counts = bench.counter.since(before);
    verify(result.download, result.read);
    runs.push({ ms, cpuMs, memory, counts });

    // The floor: the same encrypted blob, downloaded with the raw SDK and read to the end.
    const floorBefore = bench.counter.snapshot();
    const { result: raw, memory: floorMemory } = await measureMemory(async () => {
      const started = now();
      const body = (await blob.download()).readableStreamBody;
      if (!body) throw new Error(`The raw download of ${blob.name} has no body.`);
      return { ...(await readToEnd(body)), ms: now() - started };
    });
    const floorMs = raw.ms;
    if (raw.bytes !== encryptedBytes) {
      throw new Error(`The raw download of ${blob.name} gave ${raw.bytes} bytes, not ${encryptedBytes}.`);
    }
    floors.push({ ms: floorMs, memory: floorMemory, counts: bench.counter.since(floorBefore) });
    progress(
      `export: download ${repetition + 1} of ${link.sizeBytes} bytes: ${round(ms)} ms, heap +${memory.heapPeakGrowthMB} MB, rss +${memory.rssPeakGrowthMB} MB; floor ${round(floorMs)} ms`,
    );
  }

  // One more, untimed download with a full GC every 10 ms: the memory really held while it streams. Read
  // yielding to the event loop after each chunk, as a socket does, or a download that had buffered the
  // package would be read to the end before the GC timer's next turn.
  const retained = await measureRetainedMemory(async () => {
    const download = await bench.services.downloads.download(token);
    verify(download, await readToEnd(download.stream, { paced: true }));
  }, RETAINED_GC_INTERVAL_MS);
  progress(`export: download of ${link.sizeBytes} bytes, retained memory run: ${JSON.stringify(retained)}`);

  const downloadMs = median(runs.map((run) => run.ms));
  const floorMs = median(floors.map((floor) => floor.ms));
  const last = runs[runs.length - 1]!;
  const lastFloor = floors[floors.length - 1]!;
  return {
    packageBytes: link.sizeBytes,
    encryptedBytes,
    sha256Verified: true,
    downloadMs: round(downloadMs),
    downloadMsRuns: runs.map((run) => round(run.ms)),
    downloadCpuMs: round(median(runs.map((run) => run.cpuMs))),
    floorMs: round(floorMs),
    floorMsRuns: floors.map((floor) => round(floor.ms)),
    speedVsFloor: round(floorMs / downloadMs, 2),
    heapPeakGrowthMB: Math.max(...runs.map((run) => run.memory.heapPeakGrowthMB)),
    rssPeakGrowthMB: Math.max(...runs.map((run) => run.memory.rssPeakGrowthMB)),
    memoryRuns: runs.map((run) => run.memory),
    floorHeapPeakGrowthMB: Math.max(...floors.map((floor) => floor.memory.heapPeakGrowthMB)),
    floorRssPeakGrowthMB: Math.max(...floors.map((floor) => floor.memory.rssPeakGrowthMB)),
    retainedPeakGrowthMB: retained?.retainedPeakGrowthMB ?? 'needs --expose-gc',
    retainedSamples: retained?.samples ?? 0,
    requests: totalRequests(last.counts),
    requestsByService: last.counts,
    floorRequests: totalRequests(lastFloor.counts),
  };
}

/**
 * Reads a stream to the end, hashing it as it goes (backpressure: one chunk at a time); `paced` yields to the
 * event loop (timers included) after each chunk.
 */
async function readToEnd(
  stream: AsyncIterable<unknown>,
  { paced = false } = {},
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    if (!(chunk instanceof Uint8Array)) throw new Error('A package stream gave a chunk that is not bytes.');
    hash.update(chunk);
    bytes += chunk.byteLength;
    if (paced) await setImmediate();
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** The bytes as the product stores a package of that size: sealed by the package cipher under a fresh key. */
async function encrypt(payload: Buffer, context: string): Promise<Buffer> {
  const encryptor = createPackageEncryptor(randomBytes(32), context);
  const chunks: Buffer[] = [];
  encryptor.on('data', (chunk: Buffer) => chunks.push(chunk));
  encryptor.end(payload);
  await finished(encryptor);
  return Buffer.concat(chunks);
}
