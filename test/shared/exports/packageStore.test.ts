// Integration (Azurite): export packages at rest are encrypted, their keys wrapped by the subject's data key,
// so destroying that key makes every copy unreadable; removal, moves between subjects and crashes part-way.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';

import type { TableClient } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';

import type { Clock } from '../../../shared/clock';
import {
  createPackageDecryptor,
  encryptedSize,
  PackageCipherError,
} from '../../../shared/crypto/packageCipher';
import { Pseudonymizer } from '../../../shared/crypto/pseudonymizer';
import { open as openSealed, SealedBoxError } from '../../../shared/crypto/sealedBox';
import { SubjectKeyStore } from '../../../shared/records/subjectKeys';
import { DomainError } from '../../../shared/errors';
import type { PackageManifest } from '../../../shared/exports/exportPackage';
import { PACKAGE_FORMAT, type PackageInput, PackageStore } from '../../../shared/exports/packageStore';
import { ownIdentifiers } from '../../../shared/exports/redaction';
import type { PersonalDataRecord } from '../../../shared/records/personalDataRecord';
import { recordsPartition, subjectRows } from '../../../shared/records/recordKeys';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { ExpiryIndex, type StoredExpiryEntry } from '../../../shared/retention/expiryIndex';
import { CONTAINERS, TABLES } from '../../../shared/storage/names';
import { testTenantScope } from '../../support/testStorage';
import { readZip } from '../../support/zip';

const NOW = new Date(Date.UTC(2026, 0, 10, 12, 0));
const clock: Clock = () => NOW;
const subjectKey = () => randomBytes(16).toString('hex');
const requestId = () => `${randomBytes(5).toString('hex').slice(0, 9)}${randomBytes(8).toString('hex')}`;
const SUBJECT = { upn: 'adele@contoso.com', objectId: randomUUID() };

let tenant: TenantScope;
let keys: SubjectKeyStore;
let expiry: ExpiryIndex;
let store: PackageStore;
let records: TableClient;
let container: ContainerClient;

beforeAll(async () => {
  tenant = testTenantScope();
  keys = new SubjectKeyStore();
  expiry = new ExpiryIndex();
  store = new PackageStore(keys, expiry, clock);
  records = await tenant.account.table(TABLES.records);
  container = await tenant.account.container(CONTAINERS.exportPackages);
});

async function* from<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

const record = (category: PersonalDataRecord['category'], recordId: string, data: Record<string, unknown>) =>
  ({
    category,
    recordId,
    occurredAt: '2026-01-02T08:00:00.000Z',
    subject: SUBJECT,
    data,
  }) as PersonalDataRecord;

/** Over 64 KiB of ZIP, so the package spans several cipher segments. */
const USAGE = Array.from({ length: 300 }, (_, i) =>
  record('usage', `usage-${i}`, { app: 'Teams', trace: randomBytes(300).toString('hex') }),
);

function packageInput(
  id: string,
  categories: AsyncIterable<{
    category: string;
    records: AsyncIterable<readonly PersonalDataRecord[]>;
  }> = from([
    { category: 'directory', records: from([[record('directory', 'dir-1', { department: 'Sales' })]]) },
    { category: 'usage', records: from([USAGE]) },
  ]),
): PackageInput {
  return {
    kind: 'export',
    request: {
      id,
      tenantId: tenant.tenantId,
      type: 'export',
      regulation: 'GDPR',
      receivedAt: NOW.toISOString(),
      subject: SUBJECT,
    },
    generatedAt: NOW,
    own: ownIdentifiers(SUBJECT),
    categories,
    auditEvents: from([]),
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function decrypt(bytes: Buffer, key: Buffer, context: string): Promise<Buffer> {
  const decryptor = createPackageDecryptor(key, context);
  const chunks: Buffer[] = [];
  decryptor.on('data', (chunk: Buffer) => chunks.push(chunk));
  decryptor.end(bytes);
  await finished(decryptor);
  return Buffer.concat(chunks);
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const rawBlob = (blobName: string) => container.getBlockBlobClient(blobName).downloadToBuffer();
const rawRow = (owner: string, packageRow: string) =>
  records.getEntity<Record<string, unknown>>(recordsPartition(tenant.tenantId, owner), packageRow);
const contextOf = (id: string, blobName: string) => `${tenant.tenantId}|${id}|${blobName}`;

async function expiryEntries(blobName: string): Promise<StoredExpiryEntry[]> {
  const found: StoredExpiryEntry[] = [];
  for await (const page of expiry.due(tenant, '2999-12-31')) {
    found.push(...page.filter((entry) => entry.kind === 'package' && entry.blobName === blobName));
  }
  return found;
}

async function notFound(promise: Promise<unknown>): Promise<void> {
  await expect(promise).rejects.toBeInstanceOf(DomainError);
  await expect(promise).rejects.toMatchObject({ code: 'NotFound' });
}

describe('PackageStore', () => {
  it('stores the package encrypted: the blob is no ZIP, names none of its files, and is the ZIP sealed with the wrapped key', async () => {
    const owner = subjectKey();
    const id = requestId();
    const written = await store.write(tenant, owner, id, packageInput(id));

    expect(written.blobName).toBe(`${tenant.tenantId}/${id}/${written.packageRow.split('_').pop()}.zip.enc`);
    expect(written.packageRow.startsWith(subjectRows.package(id, ''))).toBe(true);
    const raw = await rawBlob(written.blobName);
    expect(raw.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))).toBe(false);
    for (const name of ['manifest.json', 'directory.json', 'usage.json', 'audit-events.json', SUBJECT.upn]) {
      expect(raw.includes(Buffer.from(name))).toBe(false);
    }
    expect(raw.length).toBe(encryptedSize(written.sizeBytes));
    const properties = await container.getBlobClient(written.blobName).getProperties();
    expect(properties.contentType).toBe('application/octet-stream');
    expect(properties.metadata).toMatchObject({
      format: PACKAGE_FORMAT,
      sha256: written.sha256,
      sizebytes: String(written.sizeBytes),
    });

    // The one key that opens it is the one the index row holds, wrapped by the subject's data key.
    const row = await rawRow(owner, written.packageRow);
    const packageKey = openSealed(
      (await keys.find(tenant, owner))!,
      row.wrappedKey as string,
      `${recordsPartition(tenant.tenantId, owner)}|${written.packageRow}`,
    );
    const zip = await decrypt(raw, packageKey, contextOf(id, written.blobName));
    expect(sha256(zip)).toBe(written.sha256);
    // Copied under another name, the same bytes do not open.
    await expect(decrypt(raw, packageKey, contextOf(id, `${written.blobName}.copy`))).rejects.toBeInstanceOf(
      PackageCipherError,
    );
  });

  it('opens as exactly the ZIP whose SHA-256 and size write returned, with every file as its manifest says', async () => {
    const owner = subjectKey();
    const id = requestId();
    const written = await store.write(tenant, owner, id, packageInput(id));

    const opened = await store.open(tenant, owner, written.packageRow);
    expect(opened).toMatchObject({
      sha256: written.sha256,
      sizeBytes: written.sizeBytes,
      blobName: written.blobName,
    });
    const zip = await readAll(opened.stream);
    expect(zip.length).toBe(written.sizeBytes);
    expect(sha256(zip)).toBe(written.sha256);
    const files = await readZip(zip);
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8')) as PackageManifest;
    expect(manifest.counts).toMatchObject({ directory: 1, usage: USAGE.length, auditEvents: 0 });
    for (const file of manifest.files) expect(sha256(files.get(file.name)!)).toBe(file.sha256);
    expect(await store.describe(tenant, owner, written.packageRow)).toEqual({
      sha256: written.sha256,
      sizeBytes: written.sizeBytes,
      blobName: written.blobName,
    });
  });

  it('keeps no plaintext package key in the index row', async () => {
    const owner = subjectKey();
    const id = requestId();
    const written = await store.write(tenant, owner, id, packageInput(id));

    const row = await rawRow(owner, written.packageRow);
    expect(
      Object.keys(row)
        .filter((name) => !['etag', 'odata.metadata', 'partitionKey', 'rowKey', 'timestamp'].includes(name))
        .sort(),
    ).toEqual(['blobName', 'createdAt', 'expiresOn', 'requestId', 'wrappedKey']);
    expect(row).toMatchObject({ requestId: id, blobName: written.blobName, createdAt: NOW.toISOString() });
    const packageKey = openSealed(
      (await keys.find(tenant, owner))!,
      row.wrappedKey as string,
      `${recordsPartition(tenant.tenantId, owner)}|${written.packageRow}`,
    );
    const text = JSON.stringify(row);
    for (const encoding of ['base64', 'base64url', 'hex'] as const) {
      expect(text).not.toContain(packageKey.toString(encoding));
      expect(text).not.toContain(packageKey.toString(encoding).slice(0, 16));
    }
  });

  it('after the data key is destroyed, open answers NotFound and no key the service holds opens the package', async () => {
    const owner = subjectKey();
    const id = requestId();
    const written = await store.write(tenant, owner, id, packageInput(id));
    const others = [subjectKey(), subjectKey()];
    const candidates = [
      await new Pseudonymizer().keyFor(tenant),
      ...(await Promise.all(others.map((other) => keys.getOrCreate(tenant, other)))),
    ];
    // Another subject's package, written before the erasure.
    const before = await store.write(tenant, others[0]!, id, packageInput(id));
    const row = await rawRow(owner, written.packageRow);
    const raw = await rawBlob(written.blobName);

    expect(await keys.destroy(tenant, owner)).toBe(true);

    await notFound(store.open(tenant, owner, written.packageRow));
    await notFound(store.describe(tenant, owner, written.packageRow));
    // The bytes are still there (as soft-deleted blobs would be), and nothing the service holds opens them.
    for (const key of candidates) {
      await expect(decrypt(raw, key, contextOf(id, written.blobName))).rejects.toBeInstanceOf(
        PackageCipherError,
      );
      for (const aad of [`${recordsPartition(tenant.tenantId, owner)}|${written.packageRow}`, '']) {
        expect(() => openSealed(key, row.wrappedKey as string, aad)).toThrow(SealedBoxError);
      }
    }
    // Another subject's package is untouched.
    expect(sha256(await readAll((await store.open(tenant, others[0]!, before.packageRow)).stream))).toBe(
      before.sha256,
    );
  });

  it('removes the blob and the index row; a second remove does nothing', async () => {
    const owner = subjectKey();
    const id = requestId();
    const written = await store.write(tenant, owner, id, packageInput(id));

    expect(await store.list(tenant, owner, id)).toEqual([
      expect.objectContaining({ packageRow: written.packageRow, requestId: id, blobName: written.blobName }),
    ]);
    expect(await store.remove(tenant, owner, written.packageRow)).toBe(true);
    expect(await store.remove(tenant, owner, written.packageRow)).toBe(false);
    expect(await container.getBlobClient(written.blobName).exists()).toBe(false);
    expect(await store.list(tenant, owner)).toEqual([]);
    await notFound(store.open(tenant, owner, written.packageRow));
  });

  it('lists the packages of one request apart from those of another with a longer id', async () => {
    const owner = subjectKey();
    const id = requestId();
    const a = await store.write(tenant, owner, id, packageInput(id));
    const b = await store.write(tenant, owner, `${id}0`, packageInput(`${id}0`));
    expect((await store.list(tenant, owner, id)).map((row) => row.packageRow)).toEqual([a.packageRow]);
    expect((await store.list(tenant, owner)).map((row) => row.packageRow).sort()).toEqual(
      [a.packageRow, b.packageRow].sort(),
    );
  });

  it('rewrap moves the packages to another subject: they open there and no longer under the old one', async () => {
    const alias = subjectKey();
    const object = subjectKey();
    const id = requestId();
    const written = await store.write(tenant, alias, id, packageInput(id));

    expect(await store.rewrap(tenant, alias, object)).toBe(1);
    expect(await store.rewrap(tenant, alias, object)).toBe(0);

    await notFound(store.open(tenant, alias, written.packageRow));
    expect(await store.list(tenant, alias)).toEqual([]);
    const opened = await store.open(tenant, object, written.packageRow);
    expect(sha256(await readAll(opened.stream))).toBe(written.sha256);
    // Wrapped for its new place: the old data key does not open it, and expiry finds the row there.
    const row = await rawRow(object, written.packageRow);
    const aliasKey = (await keys.find(tenant, alias))!;
    expect(() =>
      openSealed(
        aliasKey,
        row.wrappedKey as string,
        `${recordsPartition(tenant.tenantId, object)}|${written.packageRow}`,
      ),
    ).toThrow(SealedBoxError);
    expect(await expiryEntries(written.blobName)).toEqual([
      expect.objectContaining({ subjectKey: object, packageRow: written.packageRow }),
    ]);
    // Erasing the new subject now makes it unreadable.
    await keys.destroy(tenant, object);
    await notFound(store.open(tenant, object, written.packageRow));
  });

  it('moves the expiry entry to 30 days after completion when the request completes on a later day', async () => {
    const owner = subjectKey();
    const id = requestId();
    const written = await store.write(tenant, owner, id, packageInput(id));
    expect(await expiryEntries(written.blobName)).toEqual([
      expect.objectContaining({ day: '2026-02-09', subjectKey: owner, packageRow: written.packageRow }),
    ]);

    await store.completed(tenant, owner, written.packageRow, new Date(Date.UTC(2026, 0, 11, 0, 5)));
    expect((await expiryEntries(written.blobName)).map((entry) => entry.day)).toEqual(['2026-02-10']);
    await store.completed(tenant, owner, written.packageRow, new Date(Date.UTC(2026, 0, 11, 0, 5)));
    expect((await expiryEntries(written.blobName)).map((entry) => entry.day)).toEqual(['2026-02-10']);
  });

  it('a crash after the index row and before the upload leaves the row and its expiry entry, no blob, and remove clears it', async () => {
    const owner = subjectKey();
    const id = requestId();
    let crash!: (error: Error) => void;
    const stopped = new Promise<never>((_, reject) => (crash = reject));
    // The first category never comes: the process "stops" with the row written and nothing uploaded.
    const writing = store.write(
      tenant,
      owner,
      id,
      packageInput(
        id,
        (async function* () {
          yield await stopped;
        })(),
      ),
    );
    writing.catch(() => undefined);

    let rows = await store.list(tenant, owner, id);
    for (let i = 0; rows.length === 0 && i < 100; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      rows = await store.list(tenant, owner, id);
    }
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(await expiryEntries(row!.blobName)).toEqual([
      expect.objectContaining({ requestId: id, subjectKey: owner, packageRow: row!.packageRow }),
    ]);
    expect(await container.getBlobClient(row!.blobName).exists()).toBe(false);
    await notFound(store.open(tenant, owner, row!.packageRow));

    expect(await store.remove(tenant, owner, row!.packageRow)).toBe(true);
    expect(await store.list(tenant, owner)).toEqual([]);

    crash(new Error('the process stopped'));
    await expect(writing).rejects.toThrow('the process stopped');
    expect(await container.getBlobClient(row!.blobName).exists()).toBe(false);
  });
});
