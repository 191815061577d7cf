import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { LocalFileKeyProvider } from '../../../shared/crypto/localKeyProvider';

const freshFolder = (): string => mkdtempSync(join(tmpdir(), 'tenant-keys-'));

describe('LocalFileKeyProvider', () => {
  it('wraps and unwraps a key with the tenant key, kept in <folder>/<tenantId>.key readable by the owner only', async () => {
    const folder = freshFolder();
    const provider = new LocalFileKeyProvider(folder);
    const tenantId = randomUUID();
    const key = randomBytes(32);

    const wrapped = await provider.wrapKey(tenantId, key);

    expect(wrapped).toEqual({ provider: 'local', keyId: `${tenantId}.key`, value: expect.any(String) });
    expect(wrapped.value).not.toContain(key.toString('base64url'));
    expect(await provider.unwrapKey(tenantId, wrapped)).toEqual(key);
    expect(await new LocalFileKeyProvider(folder).unwrapKey(tenantId, wrapped)).toEqual(key);
    const file = statSync(join(folder, `${tenantId}.key`));
    expect(file.size).toBe(32);
    if (process.platform !== 'win32') expect(file.mode & 0o777).toBe(0o600);
  });

  it("does not let another tenant unwrap a tenant's key, not even with the keyId rewritten", async () => {
    const provider = new LocalFileKeyProvider(freshFolder());
    const [tenantA, tenantB] = [randomUUID(), randomUUID()];
    const wrapped = await provider.wrapKey(tenantA, randomBytes(32));
    await provider.wrapKey(tenantB, randomBytes(32)); // tenant B has a key of its own

    await expect(provider.unwrapKey(tenantB, wrapped)).rejects.toThrow(/not wrapped with the tenant key/);
    await expect(provider.unwrapKey(tenantB, { ...wrapped, keyId: `${tenantB}.key` })).rejects.toThrow(
      /does not open/,
    );
    await expect(provider.unwrapKey(tenantA, { ...wrapped, provider: 'keyvault' })).rejects.toThrow(
      /"keyvault" key provider/,
    );
  });

  it('lets providers on the same folder that race to create a tenant key agree on one key', async () => {
    const folder = freshFolder();
    const tenantId = randomUUID();
    const providers = Array.from({ length: 10 }, () => new LocalFileKeyProvider(folder));
    const keys = providers.map(() => randomBytes(32));

    const wrapped = await Promise.all(providers.map((p, i) => p.wrapKey(tenantId, keys[i]!)));

    for (const provider of providers) {
      for (const [i, w] of wrapped.entries()) expect(await provider.unwrapKey(tenantId, w)).toEqual(keys[i]);
    }
  });

  it('waits for a tenant key file that another process has created but not yet written', async () => {
    const folder = freshFolder();
    const tenantId = randomUUID();
    const path = join(folder, `${tenantId}.key`);
    writeFileSync(path, Buffer.alloc(0), { mode: 0o600 });
    const key = randomBytes(32);

    const [wrapped] = await Promise.all([
      new LocalFileKeyProvider(folder).wrapKey(tenantId, key),
      sleep(30).then(() => writeFile(path, randomBytes(32))),
    ]);

    expect(await new LocalFileKeyProvider(folder).unwrapKey(tenantId, wrapped)).toEqual(key);
  });

  it('refuses a tenant key file that does not hold a 32-byte key, and tenant ids that are not file names', async () => {
    const folder = freshFolder();
    const tenantId = randomUUID();
    writeFileSync(join(folder, `${tenantId}.key`), randomBytes(40));
    const provider = new LocalFileKeyProvider(folder);

    await expect(provider.wrapKey(tenantId, randomBytes(32))).rejects.toThrow(/holds 40 bytes/);
    await expect(provider.wrapKey('../escape', randomBytes(32))).rejects.toThrow(
      /cannot name a tenant key file/,
    );
  });
  it('destroys a tenant key: its file is gone, old wraps no longer open, and a second destroy finds none', async () => {
    const folder = freshFolder();
    const provider = new LocalFileKeyProvider(folder);
    const [tenantId, other] = [randomUUID(), randomUUID()];
    const wrapped = await provider.wrapKey(tenantId, randomBytes(32));
    const kept = await provider.wrapKey(other, randomBytes(32));

    await expect(provider.destroyTenantKey(tenantId)).resolves.toBe(true);
    expect(() => statSync(join(folder, `${tenantId}.key`))).toThrow(/ENOENT/);
    await expect(provider.unwrapKey(tenantId, wrapped)).rejects.toThrow(/no tenant key .* destroyed/);
    await expect(new LocalFileKeyProvider(folder).unwrapKey(tenantId, wrapped)).rejects.toThrow(
      /no tenant key .* destroyed/,
    );
    await expect(provider.destroyTenantKey(tenantId)).resolves.toBe(false);
    // A wrap afterwards makes a new, unrelated key: what the old one wrapped stays shut.
    await provider.wrapKey(tenantId, randomBytes(32));
    await expect(provider.unwrapKey(tenantId, wrapped)).rejects.toThrow(/does not open/);
    await expect(provider.unwrapKey(other, kept)).resolves.toHaveLength(32);
    await expect(provider.destroyTenantKey('../escape')).rejects.toThrow(/cannot name a tenant key file/);
  });
});
