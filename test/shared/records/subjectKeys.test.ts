import { randomBytes } from 'node:crypto';

import type { Clock } from '../../../shared/clock';
import { open, seal, SealedBoxError } from '../../../shared/crypto/sealedBox';
import { SUBJECT_KEY_ROW, SubjectKeyStore } from '../../../shared/records/subjectKeys';
import { recordsPartition } from '../../../shared/records/recordKeys';
import type { TenantScope } from '../../../shared/residency/tenantDirectory';
import { TABLES } from '../../../shared/storage/names';
import { testStorage, testTenantScope } from '../../support/testStorage';

const subject = (): string => randomBytes(16).toString('hex');

async function rawKeyRow(tenant: TenantScope, subjectKey: string): Promise<Record<string, unknown>> {
  const table = await tenant.account.table(TABLES.records);
  return table.getEntity(recordsPartition(tenant.tenantId, subjectKey), SUBJECT_KEY_ROW);
}

/** A tenant scope whose Table requests are counted. */
function countedTenant(): { tenant: TenantScope; requests: string[] } {
  const requests: string[] = [];
  const storage = testStorage({
    tablePolicies: [
      {
        position: 'perCall',
        policy: {
          name: 'countRequests',
          sendRequest: (request, next) => (requests.push(`${request.method} ${request.url}`), next(request)),
        },
      },
    ],
  });
  return { tenant: testTenantScope(storage), requests };
}

describe('SubjectKeyStore', () => {
  it('gives 20 concurrent callers on separate instances one and the same key', async () => {
    const tenant = testTenantScope();
    const subjectKey = subject();

    const keys = await Promise.all(
      Array.from({ length: 20 }, () => new SubjectKeyStore().getOrCreate(tenant, subjectKey)),
    );

    expect(new Set(keys.map((k) => k.toString('hex'))).size).toBe(1);
    expect(keys[0]).toHaveLength(32);
    expect(await new SubjectKeyStore().find(tenant, subjectKey)).toEqual(keys[0]);
  });

  it('stores the key wrapped, in the subject records partition: neither its hex nor its base64 is in the row', async () => {
    const tenant = testTenantScope();
    const subjectKey = subject();
    const key = await new SubjectKeyStore().getOrCreate(tenant, subjectKey);

    const row = await rawKeyRow(tenant, subjectKey);

    expect(row).toMatchObject({
      partitionKey: `${tenant.tenantId}_${subjectKey}`,
      rowKey: '~key',
      provider: 'local',
      keyId: `${tenant.tenantId}.key`,
      value: expect.stringMatching(/^v1\./),
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    const text = JSON.stringify(row);
    for (const encoding of ['hex', 'base64', 'base64url'] as const) {
      expect(text).not.toContain(key.toString(encoding).replace(/=+$/, ''));
    }
  });

  it('destroys a key: gone for a fresh instance, and what was sealed with it no longer opens through the store', async () => {
    const tenant = testTenantScope();
    const subjectKey = subject();
    const store = new SubjectKeyStore();
    const aad = `${tenant.tenantId}|${subjectKey}|record-1`;
    const sealed = seal(await store.getOrCreate(tenant, subjectKey), 'adele@contoso.com', aad);

    expect(await store.destroy(tenant, subjectKey)).toBe(true);
    expect(await store.destroy(tenant, subjectKey)).toBe(false);

    expect(await store.find(tenant, subjectKey)).toBeUndefined();
    const fresh = new SubjectKeyStore();
    expect(await fresh.find(tenant, subjectKey)).toBeUndefined();
    const newKey = await fresh.getOrCreate(tenant, subjectKey);
    expect(() => open(newKey, sealed, aad)).toThrow(SealedBoxError);
  });

  it('keeps tenants apart: the same subject key under two tenants has two keys, and a row copied across does not unwrap', async () => {
    const storage = testStorage();
    const [tenantA, tenantB] = [testTenantScope(storage), testTenantScope(storage)];
    const subjectKey = subject();
    const store = new SubjectKeyStore();

    const keyA = await store.getOrCreate(tenantA, subjectKey);
    const keyB = await store.getOrCreate(tenantB, subjectKey);
    expect(keyA).not.toEqual(keyB);

    const table = await tenantA.account.table(TABLES.records);
    const other = subject();
    const { provider: p, keyId, value } = await rawKeyRow(tenantA, subjectKey);
    await table.createEntity({
      partitionKey: recordsPartition(tenantB.tenantId, other),
      rowKey: '~key',
      provider: p,
      keyId,
      value,
    });
    await expect(new SubjectKeyStore().find(tenantB, other)).rejects.toThrow(
      /not wrapped with the tenant key/,
    );
  });

  it('serves a cached key without a round trip and reads its row again after cacheTtlMs, so a destroy elsewhere takes effect', async () => {
    const { tenant, requests } = countedTenant();
    const subjectKey = subject();
    let now = Date.UTC(2025, 0, 1);
    const clock: Clock = () => new Date(now);
    const store = new SubjectKeyStore({ cacheTtlMs: 60_000, clock });
    const key = await store.getOrCreate(tenant, subjectKey);
    const afterCreate = requests.length;

    expect(await store.getOrCreate(tenant, subjectKey)).toEqual(key);
    expect(await store.find(tenant, subjectKey)).toEqual(key);
    expect(requests.length).toBe(afterCreate);

    await new SubjectKeyStore().destroy(tenant, subjectKey);
    now += 59_999;
    expect(await store.find(tenant, subjectKey)).toEqual(key);
    now += 1;
    expect(await store.find(tenant, subjectKey)).toBeUndefined();
  });

  it('evicts the least recently used key beyond cacheSize', async () => {
    const { tenant, requests } = countedTenant();
    const store = new SubjectKeyStore({ cacheSize: 2 });
    const [a, b, c] = [subject(), subject(), subject()];
    await store.getOrCreate(tenant, a);
    await store.getOrCreate(tenant, b);
    await store.getOrCreate(tenant, a); // a is now the most recent
    await store.getOrCreate(tenant, c); // evicts b

    const before = requests.length;
    await store.getOrCreate(tenant, a);
    await store.getOrCreate(tenant, c);
    expect(requests.length).toBe(before);
    await store.getOrCreate(tenant, b);
    expect(requests.slice(before)).toEqual([expect.stringMatching(/^GET .*records/)]);
  });

  it('shares one read among concurrent callers on one instance, and hands each caller its own copy', async () => {
    const { tenant, requests } = countedTenant();
    const subjectKey = subject();
    await new SubjectKeyStore().getOrCreate(tenant, subjectKey);
    const store = new SubjectKeyStore();
    const before = requests.length;

    const keys = await Promise.all(Array.from({ length: 10 }, () => store.getOrCreate(tenant, subjectKey)));

    expect(requests.length - before).toBe(1);
    keys[0]!.fill(0);
    expect(keys[1]).not.toEqual(keys[0]);
    expect(await store.getOrCreate(tenant, subjectKey)).toEqual(keys[1]);
  });

  it('refuses subject keys that Table storage cannot hold in a key', async () => {
    const store = new SubjectKeyStore();
    await expect(store.getOrCreate(testTenantScope(), 'a/b')).rejects.toThrow(/subject key must be/);
    await expect(store.find(testTenantScope(), '')).rejects.toThrow(/subject key must be/);
  });
});
