import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';

import { BlobServiceClient, type BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import yauzl from 'yauzl';

import type { AuditEvent } from '../../../shared/audit/auditEvent';
import { createPackageEncryptor } from '../../../shared/crypto/packageCipher';
import {
  type ExportPackageInput,
  type PackageManifest,
  packageIntegrity,
  type PackageResult,
  writeExportPackage,
} from '../../../shared/exports/exportPackage';
import { ownIdentifiers, REDACTED } from '../../../shared/exports/redaction';
import type { PersonalDataRecord } from '../../../shared/records/personalDataRecord';
import { CONTAINERS } from '../../../shared/storage/names';
import { StorageAccount } from '../../../shared/storage/storageAccount';
import { testStorage } from '../../support/testStorage';

const TENANT = randomUUID();
const SUBJECT = { upn: 'adele@contoso.com', objectId: randomUUID() };
const BOB_OID = randomUUID();
const GENERATED_AT = new Date(Date.UTC(2025, 2, 14, 9, 30));

const record = (fields: Partial<PersonalDataRecord> & Pick<PersonalDataRecord, 'category' | 'recordId'>) =>
  ({
    occurredAt: '2025-03-01T08:00:00.000Z',
    subject: SUBJECT,
    data: {},
    ...fields,
  }) as PersonalDataRecord;

const DEVICE_RECORDS = [
  record({
    category: 'device',
    recordId: 'device-1',
    deviceName: 'ADELE-LAPTOP',
    data: {
      model: 'Surface Laptop 5',
      primaryUserUpn: 'adele@contoso.com',
      note: 'Handed over by bob@contoso.com on Monday',
      enrolledByUserId: BOB_OID,
      azureAdDeviceId: 'd0d0d0d0-aaaa-4bbb-8ccc-dddddddddddd',
    },
  }),
  record({
    category: 'device',
    recordId: 'device-2',
    deviceName: 'ADELE-PHONE',
    deletedAt: '2025-03-10T12:00:00.000Z',
    data: { model: 'Pixel 8' },
  }),
];
const DIRECTORY_RECORDS = [
  record({
    category: 'directory',
    recordId: 'directory-1',
    data: {
      displayName: 'Adele Vance',
      jobTitle: '<script>alert("owned")</script> & co',
      manager: { id: BOB_OID, displayName: 'Bob Kelly' },
      mail: 'adele@contoso.com',
    },
  }),
];
const USAGE_RECORDS = [
  record({ category: 'usage', recordId: 'usage-1', data: { app: 'Teams', minutes: 42, sessions: [1, 2] } }),
];

const AUDIT_EVENTS: AuditEvent[] = [
  auditEvent(1, { type: 'user', id: randomUUID(), upn: 'admin@contoso.com' }, 'dsr.created'),
  auditEvent(2, { type: 'system', id: 'personalDataEvents' }, 'record.created'),
  auditEvent(3, { type: 'user', id: SUBJECT.objectId, upn: SUBJECT.upn }, 'device.enrolled'),
];

function auditEvent(sequence: number, actor: AuditEvent['actor'], action: string): AuditEvent {
  return {
    id: `event-${sequence}`,
    sequence,
    time: `2025-03-0${sequence}T10:00:00.000Z`,
    tenantId: TENANT,
    actor,
    action,
    target: { type: 'dataSubjectRequest', id: 'request-1' },
    outcome: 'success',
    correlationId: `correlation-${sequence}`,
    details: {},
    previousHash: 'a'.repeat(64),
    hash: 'b'.repeat(64),
  };
}

async function* from<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

/** Records as storage gives them: in pages (of 2 here, so that categories span several). */
async function* pages<T>(items: readonly T[], size = 2): AsyncGenerator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

const CATEGORIES = [
  { category: 'device', records: DEVICE_RECORDS },
  { category: 'directory', records: DIRECTORY_RECORDS },
  { category: 'usage', records: USAGE_RECORDS },
];

let account: StorageAccount;
let container: ContainerClient;

beforeAll(async () => {
  account = testStorage().geography('EU');
  container = await account.container(CONTAINERS.exportPackages);
});

const blobNameFor = (kind: string) => `${TENANT}/test/${randomUUID()}.${kind}.zip`;

function packageInput(
  kind: 'access' | 'export',
  categories: readonly { category: string; records: readonly PersonalDataRecord[] }[] = CATEGORIES,
  overrides: Partial<ExportPackageInput> = {},
): ExportPackageInput {
  return {
    container,
    blobName: blobNameFor(kind),
    kind,
    request: {
      id: 'request-1',
      tenantId: TENANT,
      type: kind,
      regulation: 'GDPR',
      receivedAt: '2025-03-01T07:00:00.000Z',
      subject: SUBJECT,
    },
    generatedAt: GENERATED_AT,
    own: ownIdentifiers(SUBJECT),
    categories: from(categories.map(({ category, records }) => ({ category, records: pages(records) }))),
    auditEvents: from(AUDIT_EVENTS),
    metadata: { requestId: 'request-1', tenantId: TENANT },
    ...overrides,
  };
}

interface ZipEntry {
  name: string;
  bytes: Buffer;
}

/** Unzips in entry order; yauzl checks each entry's CRC-32 and sizes as it reads. */
function unzip(zip: Buffer): Promise<ZipEntry[]> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (error, zipfile) => {
      if (error || !zipfile) return reject(error ?? new Error('not a ZIP'));
      const entries: ZipEntry[] = [];
      zipfile.on('error', reject);
      zipfile.on('end', () => resolve(entries));
      zipfile.on('entry', (entry: yauzl.Entry) => {
        zipfile.openReadStream(entry, (streamError, stream) => {
          if (streamError || !stream) return reject(streamError ?? new Error('no stream'));
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('error', reject);
          stream.on('end', () => {
            entries.push({ name: entry.fileName, bytes: Buffer.concat(chunks) });
            zipfile.readEntry();
          });
        });
      });
      zipfile.readEntry();
    });
  });
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

function file(entries: readonly ZipEntry[], name: string): Buffer {
  const entry = entries.find((candidate) => candidate.name === name);
  if (!entry) throw new Error(`${name} is not in the package`);
  return entry.bytes;
}

const json = <T>(entries: readonly ZipEntry[], name: string): T =>
  JSON.parse(file(entries, name).toString('utf8')) as T;

describe('an access package', () => {
  let result: PackageResult;
  let blob: BlockBlobClient;
  let zip: Buffer;
  let entries: ZipEntry[];

  beforeAll(async () => {
    const input = packageInput('access');
    result = await writeExportPackage(input);
    blob = container.getBlockBlobClient(input.blobName);
    zip = await blob.downloadToBuffer();
    entries = await unzip(zip);
  });

  it('holds one JSON file per category, the audit events, the report, and the manifest last', () => {
    expect(entries.map((entry) => entry.name)).toEqual([
      'device.json',
      'directory.json',
      'usage.json',
      'audit-events.json',
      'report.html',
      'manifest.json',
    ]);
    expect(result.files.map((listed) => listed.name)).toEqual(entries.map((entry) => entry.name));
  });

  it('lists every other file in the manifest with the SHA-256 and size of its uncompressed bytes', () => {
    const manifest = json<PackageManifest>(entries, 'manifest.json');
    expect(manifest.files.map((listed) => listed.name)).toEqual(
      entries.slice(0, -1).map((entry) => entry.name),
    );
    for (const listed of manifest.files) {
      const bytes = file(entries, listed.name);
      expect({ name: listed.name, sha256: sha256(bytes), sizeBytes: bytes.length }).toEqual({
        name: listed.name,
        sha256: listed.sha256,
        sizeBytes: listed.sizeBytes,
      });
    }
    expect(manifest.files.map((listed) => listed.records)).toEqual([2, 1, 1, 3, undefined]);
    const manifestBytes = file(entries, 'manifest.json');
    expect(result.files.at(-1)).toEqual({
      name: 'manifest.json',
      sha256: sha256(manifestBytes),
      sizeBytes: manifestBytes.length,
    });
  });

  it('names the request, the generation time and the counts in the manifest', () => {
    const manifest = json<PackageManifest>(entries, 'manifest.json');
    expect(manifest.request).toEqual({
      id: 'request-1',
      tenantId: TENANT,
      type: 'access',
      regulation: 'GDPR',
      receivedAt: '2025-03-01T07:00:00.000Z',
      subject: SUBJECT,
    });
    expect(manifest.generatedAt).toBe(GENERATED_AT.toISOString());
    expect(manifest.counts).toEqual({ device: 2, directory: 1, usage: 1, auditEvents: 3 });
    expect(result.counts).toEqual(manifest.counts);
  });

  it('gives the SHA-256 and size of the stored ZIP in the result and in the blob metadata', async () => {
    expect(result.sha256).toBe(sha256(zip));
    expect(result.sizeBytes).toBe(zip.length);
    const properties = await blob.getProperties();
    expect(properties.contentType).toBe('application/zip');
    expect(properties.contentLength).toBe(zip.length);
    expect(packageIntegrity(properties.metadata)).toEqual({
      sha256: result.sha256,
      sizeBytes: result.sizeBytes,
    });
    expect(properties.metadata).toMatchObject({ requestid: 'request-1', tenantid: TENANT });
  });

  it('exports the records redacted, with soft-deleted ones marked as deleted', () => {
    expect(json(entries, 'device.json')).toEqual([
      {
        category: 'device',
        recordId: 'device-1',
        occurredAt: '2025-03-01T08:00:00.000Z',
        deleted: false,
        deviceName: 'ADELE-LAPTOP',
        subject: SUBJECT,
        data: {
          model: 'Surface Laptop 5',
          primaryUserUpn: 'adele@contoso.com',
          note: `Handed over by ${REDACTED} on Monday`,
          enrolledByUserId: REDACTED,
          azureAdDeviceId: 'd0d0d0d0-aaaa-4bbb-8ccc-dddddddddddd',
        },
      },
      {
        category: 'device',
        recordId: 'device-2',
        occurredAt: '2025-03-01T08:00:00.000Z',
        deleted: true,
        deletedAt: '2025-03-10T12:00:00.000Z',
        deviceName: 'ADELE-PHONE',
        subject: SUBJECT,
        data: { model: 'Pixel 8' },
      },
    ]);
    expect(json(entries, 'directory.json')).toEqual([
      expect.objectContaining({
        recordId: 'directory-1',
        deleted: false,
        data: {
          displayName: 'Adele Vance',
          jobTitle: '<script>alert("owned")</script> & co',
          manager: { id: REDACTED, displayName: REDACTED },
          mail: 'adele@contoso.com',
        },
      }),
    ]);
    expect(json(entries, 'usage.json')).toEqual([
      expect.objectContaining({ recordId: 'usage-1', data: { app: 'Teams', minutes: 42, sessions: [1, 2] } }),
    ]);
  });

  it('exports the audit events with other people redacted, apps and the service kept', () => {
    const events = json<AuditEvent[]>(entries, 'audit-events.json');
    expect(events.map((event) => event.actor)).toEqual([
      { type: 'user', id: REDACTED, upn: REDACTED },
      { type: 'system', id: 'personalDataEvents' },
      { type: 'user', id: SUBJECT.objectId, upn: SUBJECT.upn },
    ]);
    expect(events.map((event) => event.hash)).toEqual(AUDIT_EVENTS.map((event) => event.hash));
  });

  it('writes a readable report that escapes everything it shows', () => {
    const report = file(entries, 'report.html').toString('utf8');
    expect(report).toMatch(/^<!DOCTYPE html>/);
    expect(report).toContain('&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; &amp; co');
    expect(report).not.toMatch(/<script/i);
    expect(report).toContain('adele@contoso.com');
    expect(report).not.toContain('bob@contoso.com');
    expect(report).not.toContain(BOB_OID);
    expect(report).toContain('<td>Device data (device)</td><td>2 (1 deleted, not yet purged)</td>');
    expect(report).toContain('<td>Audit events</td><td>3</td>');
    expect(report).toContain('ADELE-PHONE');
    expect(report).toContain('deleted 2025-03-10T12:00:00.000Z');
    expect(report).toContain('<dt>manager.displayName</dt><dd>[redacted]</dd>');
    expect(report).toMatch(/<\/html>\n$/);
  });
});

describe('an export package', () => {
  it('has no report, and an empty category is an empty array', async () => {
    const input = packageInput('export', [...CATEGORIES, { category: 'policy', records: [] }]);
    const result = await writeExportPackage(input);
    const entries = await unzip(await container.getBlockBlobClient(input.blobName).downloadToBuffer());
    expect(entries.map((entry) => entry.name)).toEqual([
      'device.json',
      'directory.json',
      'usage.json',
      'policy.json',
      'audit-events.json',
      'manifest.json',
    ]);
    expect(json(entries, 'policy.json')).toEqual([]);
    expect(result.counts).toEqual({ device: 2, directory: 1, usage: 1, policy: 0, auditEvents: 3 });
  });

  it('is not stored at all when a source fails part-way', async () => {
    async function* failing(): AsyncGenerator<PersonalDataRecord[]> {
      yield* pages(DEVICE_RECORDS);
      throw new Error('the record store went away');
    }
    const input = packageInput('access', [], {
      categories: from([
        { category: 'usage', records: pages(USAGE_RECORDS) },
        { category: 'device', records: failing() },
      ]),
    });
    await expect(writeExportPackage(input)).rejects.toThrow('the record store went away');
    expect(await container.getBlockBlobClient(input.blobName).exists()).toBe(false);
  });

  it('is not stored at all when a source fails part-way while the package is encrypted', async () => {
    async function* failing(): AsyncGenerator<PersonalDataRecord[]> {
      yield* pages(DEVICE_RECORDS);
      throw new Error('the record store went away');
    }
    const input = packageInput('export', [], {
      categories: from([{ category: 'device', records: failing() }]),
      encrypt: createPackageEncryptor(randomBytes(32), 'context'),
    });
    await expect(writeExportPackage(input)).rejects.toThrow('the record store went away');
    expect(await container.getBlockBlobClient(input.blobName).exists()).toBe(false);
  });

  it('fails with the error of its encryption, without hanging, and stores nothing', async () => {
    const many = Array.from({ length: 2_000 }, (_, n) =>
      record({
        category: 'usage',
        recordId: `usage-${n}`,
        data: { payload: randomBytes(900).toString('base64') },
      }),
    );
    let seen = 0;
    const encrypt = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        seen += chunk.length;
        callback(seen > 256 * 1024 ? new Error('the cipher gave up') : null, chunk);
      },
    });
    const input = packageInput('export', [{ category: 'usage', records: many }], { encrypt });
    await expect(writeExportPackage(input)).rejects.toThrow('the cipher gave up');
    expect(await container.getBlockBlobClient(input.blobName).exists()).toBe(false);
  });

  it.each([
    ['a small package', 1],
    ['a package spanning several upload blocks', 8_000],
  ])("fails with storage's error, without hanging, when storage refuses %s", async (_, count) => {
    const missing = new ContainerClient(`${container.url}-missing-${randomUUID()}`, container.credential);
    const many = Array.from({ length: count }, (_, n) =>
      record({
        category: 'usage',
        recordId: `usage-${n}`,
        data: { payload: randomBytes(900).toString('base64') },
      }),
    );
    const input = packageInput('access', [{ category: 'usage', records: many }], { container: missing });
    await expect(writeExportPackage(input)).rejects.toMatchObject({ statusCode: 404 });
  });

  it.each(['manifest', 'audit-events', 'auditEvents', '../device', 'usage'])(
    'refuses the category name %s, which would collide or escape',
    async (category) => {
      const input = packageInput('export', [...CATEGORIES, { category, records: [] }]);
      await expect(writeExportPackage(input)).rejects.toThrow('Invalid or repeated category name');
      expect(await container.getBlockBlobClient(input.blobName).exists()).toBe(false);
    },
  );
});

describe('a package of 10,000 records', () => {
  const RECORDS = 10_000;

  it('streams into storage while the records are still being read', async () => {
    const input = packageInput('access', []);
    const blob = container.getBlockBlobClient(input.blobName);
    let blocksStagedBeforeLastRecord = 0;
    // About 1.2 KB per record, mostly incompressible, so the ZIP spans several 4 MiB upload blocks.
    async function* records(
      category: string,
      count: number,
      last: boolean,
    ): AsyncGenerator<PersonalDataRecord[]> {
      const pageSize = 100;
      for (let start = 0; start < count; start += pageSize) {
        const end = Math.min(count, start + pageSize);
        if (last && end === count) blocksStagedBeforeLastRecord = await stagedBlocks(blob);
        yield Array.from({ length: end - start }, (_, i) => {
          const n = start + i;
          return record({
            category: category as PersonalDataRecord['category'],
            recordId: `${category}-${n}`,
            deviceName: `DEVICE-${n % 7}`,
            ...(n % 100 === 0 ? { deletedAt: '2025-03-10T12:00:00.000Z' } : {}),
            data: {
              n,
              reportedBy: 'bob@contoso.com',
              payload: randomBytes(600).toString('base64'),
              nested: { ok: true, user: SUBJECT.upn },
            },
          });
        });
      }
    }
    const perCategory = RECORDS / 4;
    input.categories = from([
      { category: 'device', records: records('device', perCategory, false) },
      { category: 'deviceHealth', records: records('deviceHealth', perCategory, false) },
      { category: 'usage', records: records('usage', perCategory, false) },
      { category: 'alert', records: records('alert', perCategory, true) },
    ]);

    const baseline = process.memoryUsage();
    const peak = { rss: baseline.rss, heap: baseline.heapUsed + baseline.arrayBuffers };
    const sampler = setInterval(() => {
      const now = process.memoryUsage();
      peak.rss = Math.max(peak.rss, now.rss);
      peak.heap = Math.max(peak.heap, now.heapUsed + now.arrayBuffers);
    }, 5);
    const started = performance.now();
    let result: PackageResult;
    try {
      result = await writeExportPackage(input);
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - started) / 1000;
    const uncompressed = result.files.reduce((total, listed) => total + listed.sizeBytes, 0);
    const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
    console.log(
      `10,000-record access package: ${seconds.toFixed(2)} s, ZIP ${mb(result.sizeBytes)} MB ` +
        `(${mb(uncompressed)} MB uncompressed); peak growth: rss ${mb(peak.rss - baseline.rss)} MB, ` +
        `heap+buffers ${mb(peak.heap - baseline.heapUsed - baseline.arrayBuffers)} MB`,
    );

    expect(result.counts).toEqual({
      device: 2500,
      deviceHealth: 2500,
      usage: 2500,
      alert: 2500,
      auditEvents: 3,
    });
    expect(result.sizeBytes).toBeGreaterThan(8 * 1024 * 1024);
    // Blocks were in storage before the last record was read: the ZIP was never held whole in memory.
    expect(blocksStagedBeforeLastRecord).toBeGreaterThan(0);
    const properties = await blob.getProperties();
    expect(packageIntegrity(properties.metadata)).toEqual({
      sha256: result.sha256,
      sizeBytes: result.sizeBytes,
    });
  }, 120_000);
});

/** Uncommitted blocks of a blob being uploaded; waits a little for the upload to catch up with the reader. */
async function stagedBlocks(blob: BlockBlobClient): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const list = await blob.getBlockList('uncommitted').catch(() => undefined);
    const count = list?.uncommittedBlocks?.length ?? 0;
    if (count > 0) return count;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return 0;
}

describe('download links', () => {
  let blobName: string;
  let zip: Buffer;

  beforeAll(async () => {
    const input = packageInput('export');
    await writeExportPackage(input);
    blobName = input.blobName;
    zip = await container.getBlockBlobClient(blobName).downloadToBuffer();
  });

  const inMinutes = (minutes: number) => new Date(Date.now() + minutes * 60_000);

  it('read the package with a plain GET', async () => {
    const url = await account.readOnlyBlobUrl(CONTAINERS.exportPackages, blobName, inMinutes(15));
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/zip');
    expect(Buffer.from(await response.arrayBuffer()).equals(zip)).toBe(true);
    const signed = new URL(url).searchParams;
    expect(signed.get('sp')).toBe('r');
    expect(signed.get('sr')).toBe('b');
  });

  it('do not allow writing the blob', async () => {
    const url = await account.readOnlyBlobUrl(CONTAINERS.exportPackages, blobName, inMinutes(15));
    const response = await fetch(url, {
      method: 'PUT',
      headers: { 'x-ms-blob-type': 'BlockBlob', 'content-type': 'application/zip' },
      body: 'not a package',
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('x-ms-error-code')).toBe('AuthorizationPermissionMismatch');
    expect((await container.getBlockBlobClient(blobName).downloadToBuffer()).equals(zip)).toBe(true);
  });

  it('under managed identity are https-only and signed with a user delegation key, reused while it lasts', async () => {
    // Azurite hands out no user delegation keys without OAuth, so the one call that asks for a key is faked.
    const getKey = jest.spyOn(BlobServiceClient.prototype, 'getUserDelegationKey').mockImplementation((async (
      startsOn: Date,
      expiresOn: Date,
    ) => ({
      signedObjectId: 'app-object-id',
      signedTenantId: TENANT,
      signedStartsOn: startsOn,
      signedExpiresOn: expiresOn,
      signedService: 'b',
      signedVersion: '2025-01-05',
      value: randomBytes(32).toString('base64'),
    })) as never);
    try {
      const identity = new StorageAccount('EU', {
        kind: 'identity',
        accountName: 'privacyeu',
        endpointSuffix: 'core.windows.net',
      });
      const links = await Promise.all([
        identity.readOnlyBlobUrl(CONTAINERS.exportPackages, blobName, inMinutes(15)),
        identity.readOnlyBlobUrl(CONTAINERS.exportPackages, blobName, inMinutes(15)),
      ]);
      await identity.readOnlyBlobUrl(CONTAINERS.exportPackages, 'other.zip', inMinutes(15));
      expect(getKey).toHaveBeenCalledTimes(1);
      const url = new URL(links[0] ?? '');
      expect(`${url.origin}${url.pathname}`).toBe(
        `https://privacyeu.blob.core.windows.net/${CONTAINERS.exportPackages}/${blobName}`,
      );
      expect(Object.fromEntries(url.searchParams)).toMatchObject({
        sp: 'r',
        sr: 'b',
        spr: 'https',
        skoid: 'app-object-id',
      });

      // A link that would outlive the key gets a new key.
      await identity.readOnlyBlobUrl(CONTAINERS.exportPackages, blobName, inMinutes(24 * 60));
      expect(getKey).toHaveBeenCalledTimes(2);
    } finally {
      getKey.mockRestore();
    }
  });

  it('are refused once expired', async () => {
    const url = await account.readOnlyBlobUrl(CONTAINERS.exportPackages, blobName, inMinutes(-1));
    const response = await fetch(url);
    expect(response.status).toBe(403);
  });
});
