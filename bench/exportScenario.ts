// (b) Export of a subject with 10k records: an approved export request fulfilled by the real dsr-work step
// (services.fulfilment.run, which reads every category with records.listPages and streams the ZIP, encrypted,
// into Blob Storage through PackageStore and writeExportPackage), against the floor of the same run: a raw SDK
// listing of the subject's partition (no decryption), then as many bytes as the ZIP has encrypted with the
// same package cipher and uploaded with the raw SDK, so that both sides pay for the encryption.
import { randomBytes } from 'node:crypto';
import { finished } from 'node:stream/promises';

import { odata } from '@azure/data-tables';

import { createPackageEncryptor } from '../shared/crypto/packageCipher';
import { recordsPartition } from '../shared/records/recordKeys';
import { CONTAINERS, TABLES } from '../shared/storage/names';
import { benchSubject, random, subjectRecords } from './dataset';
import type { Bench } from './environment';
import { measureMemory, measureRetainedMemory, type MemoryGrowth } from './memorySampler';
import { type RequestCounts, totalRequests } from './requestCounter';
import type { Scale } from './scale';
import { cpuMsSince, median, now, progress, round } from './util';

const ADMIN = {
  actor: { type: 'user' as const, id: 'bench-admin', upn: 'admin@contoso.com' },
  correlationId: 'bench',
};

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
  const approvedExport = async (): Promise<string> => {
    const request = await services.requests.create(
      tenant,
      { type: 'export', regulation: 'GDPR', subject: owner.subject, dataSubjectType: 'currentEmployee' },
      ADMIN,
    );
    await services.fulfilment.run({ tenantId: tenant.tenantId, requestId: request.id, step: 'discover' });
    await services.requests.decide(tenant, request.id, 'approve', ADMIN);
    return request.id;
  };

  const runs: { ms: number; cpuMs: number; memory: MemoryGrowth; counts: RequestCounts; zipBytes: number }[] =
    [];
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
    const done = await services.requests.load(tenant, requestId);
    const result = done.result as
      { package?: { sizeBytes: number }; counts?: Record<string, number> } | undefined;
    const exported = Object.entries(result?.counts ?? {})
      .filter(([name]) => name !== 'auditEvents')
      .reduce((sum, [, n]) => sum + n, 0);
    if (done.status !== 'completed' || !result?.package || exported !== records) {
      throw new Error(`The export ended ${done.status} with ${exported} records, not ${records}.`);
    }
    const zipBytes = result.package.sizeBytes;
    runs.push({ ms, cpuMs, memory, counts, zipBytes });
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

  const exportMs = median(runs.map((run) => run.ms));
  const floorMs = median(floors.map((floor) => floor.listMs + floor.encryptMs + floor.uploadMs));
  const rssPeak = Math.max(...runs.map((run) => run.memory.rssPeakGrowthMB));
  const heapPeak = Math.max(...runs.map((run) => run.memory.heapPeakGrowthMB));
  const last = runs[runs.length - 1]!;
  const lastFloor = floors[floors.length - 1]!;
  return {
    seeding,
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
    },
  };
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
