import {
  constants,
  generateKeyPairSync,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  randomUUID,
} from 'node:crypto';

import type { TokenCredential } from '@azure/identity';

import {
  KeyVaultKeyProvider,
  type TenantKeyClient,
  type TenantKeyCryptography,
} from '../../../shared/crypto/keyVaultKeyProvider';

const VAULT_URL = 'https://privacy-kv.vault.azure.net';
const credential: TokenCredential = { getToken: () => Promise.resolve(null) };

interface FakeKeyVersion {
  id: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** An in-memory Key Vault: keys with versions, RSA-OAEP-256 wrapping with real RSA keys. */
class FakeVault {
  readonly keys = new Map<string, FakeKeyVersion[]>();
  readonly calls = {
    getKey: 0,
    createRsaKey: [] as unknown[],
    beginDeleteKey: [] as string[],
    wrapKey: [] as string[],
    unwrapKey: [] as string[],
  };

  readonly keyClient: TenantKeyClient = {
    getKey: async (name) => {
      this.calls.getKey++;
      await Promise.resolve();
      const current = this.keys.get(name)?.at(-1);
      if (!current)
        throw Object.assign(new Error(`A key with (name/id) ${name} was not found`), { statusCode: 404 });
      return { id: current.id };
    },
    createRsaKey: async (name, options) => {
      this.calls.createRsaKey.push({ name, ...options });
      await Promise.resolve();
      return { id: this.addVersion(name).id };
    },
    beginDeleteKey: async (name) => {
      this.calls.beginDeleteKey.push(name);
      await Promise.resolve();
      if (!this.keys.delete(name))
        throw Object.assign(new Error(`A key with (name/id) ${name} was not found`), { statusCode: 404 });
      return { pollUntilDone: () => Promise.resolve({ name }) };
    },
  };

  /** A deleted key's versions no longer wrap or unwrap, whoever holds a client bound to them. */
  private live(keyId: string): FakeKeyVersion {
    const version = [...this.keys.values()].flat().find((v) => v.id === keyId);
    if (!version) throw Object.assign(new Error(`Key ${keyId} is deleted`), { statusCode: 404 });
    return version;
  }

  cryptography = (keyId: string): TenantKeyCryptography => {
    const version = [...this.keys.values()].flat().find((v) => v.id === keyId);
    if (!version) throw new Error(`No key ${keyId}`);
    const oaep256 = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' };
    return {
      wrapKey: async (algorithm, key) => {
        expect(algorithm).toBe('RSA-OAEP-256');
        this.calls.wrapKey.push(keyId);
        return { result: publicEncrypt({ key: this.live(keyId).publicKey, ...oaep256 }, key) };
      },
      unwrapKey: async (algorithm, encryptedKey) => {
        expect(algorithm).toBe('RSA-OAEP-256');
        this.calls.unwrapKey.push(keyId);
        return { result: privateDecrypt({ key: this.live(keyId).privateKey, ...oaep256 }, encryptedKey) };
      },
    };
  };

  /** Adds a version, as Key Vault's create and rotate do. 2048 bits keeps the test fast; the provider asks for 3072. */
  addVersion(name: string): FakeKeyVersion {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const version = {
      id: `${VAULT_URL}/keys/${name}/${randomBytes(16).toString('hex')}`,
      privateKey,
      publicKey,
    };
    this.keys.set(name, [...(this.keys.get(name) ?? []), version]);
    return version;
  }

  provider(options: { keyRefreshMs?: number; clock?: () => Date } = {}): KeyVaultKeyProvider {
    return new KeyVaultKeyProvider(VAULT_URL, credential, {
      ...options,
      clients: { keys: () => this.keyClient, cryptography: this.cryptography },
    });
  }
}

describe('KeyVaultKeyProvider', () => {
  it('creates the tenant key once, as RSA 3072 for wrapping only, even for concurrent first wraps', async () => {
    const vault = new FakeVault();
    const provider = vault.provider();
    const tenantId = randomUUID();

    await Promise.all(Array.from({ length: 5 }, () => provider.wrapKey(tenantId, randomBytes(32))));
    await provider.wrapKey(tenantId, randomBytes(32));

    expect(vault.calls.getKey).toBe(1);
    expect(vault.calls.createRsaKey).toEqual([
      { name: `tenant-${tenantId}`, keySize: 3072, keyOps: ['wrapKey', 'unwrapKey'] },
    ]);
    expect(vault.calls.wrapKey).toHaveLength(6);
  });

  it('wraps with RSA-OAEP-256 in the vault and unwraps with the key version the wrap names', async () => {
    const vault = new FakeVault();
    const tenantId = randomUUID();
    const key = randomBytes(32);

    const wrapped = await vault.provider().wrapKey(tenantId, key);

    const [version] = vault.keys.get(`tenant-${tenantId}`)!;
    expect(wrapped).toEqual({ provider: 'keyvault', keyId: version!.id, value: expect.any(String) });
    const oaep256 = {
      key: version!.privateKey,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha256',
    };
    expect(privateDecrypt(oaep256, Buffer.from(wrapped.value, 'base64'))).toEqual(key);
    // A fresh instance (another host) has nothing cached and still unwraps it.
    expect(await vault.provider().unwrapKey(tenantId, wrapped)).toEqual(key);
    expect(vault.calls.unwrapKey).toEqual([version!.id]);
  });

  it('uses an existing tenant key without creating one', async () => {
    const vault = new FakeVault();
    const tenantId = randomUUID();
    const existing = vault.addVersion(`tenant-${tenantId}`);

    const wrapped = await vault.provider().wrapKey(tenantId, randomBytes(32));

    expect(wrapped.keyId).toBe(existing.id);
    expect(vault.calls.createRsaKey).toEqual([]);
  });

  it('keeps unwrapping old wraps after a rotation, and wraps with the new version once it rereads the key', async () => {
    const vault = new FakeVault();
    const tenantId = randomUUID();
    let now = Date.UTC(2025, 0, 1);
    const provider = vault.provider({ keyRefreshMs: 60_000, clock: () => new Date(now) });
    const oldKey = randomBytes(32);
    const oldWrap = await provider.wrapKey(tenantId, oldKey);

    const rotated = vault.addVersion(`tenant-${tenantId}`);
    expect((await provider.wrapKey(tenantId, randomBytes(32))).keyId).toBe(oldWrap.keyId);
    now += 60_000;
    const newKey = randomBytes(32);
    const newWrap = await provider.wrapKey(tenantId, newKey);

    expect(newWrap.keyId).toBe(rotated.id);
    expect(await provider.unwrapKey(tenantId, oldWrap)).toEqual(oldKey);
    expect(await provider.unwrapKey(tenantId, newWrap)).toEqual(newKey);
  });

  it("refuses to unwrap another tenant's wrap, another vault's or another provider's, without asking the vault", async () => {
    const vault = new FakeVault();
    const provider = vault.provider();
    const [tenantA, tenantB] = [randomUUID(), randomUUID()];
    const wrapped = await provider.wrapKey(tenantA, randomBytes(32));

    await expect(provider.unwrapKey(tenantB, wrapped)).rejects.toThrow(`version of tenant-${tenantB}`);
    const otherVault = { ...wrapped, keyId: wrapped.keyId.replace('privacy-kv', 'other-kv') };
    await expect(provider.unwrapKey(tenantA, otherVault)).rejects.toThrow(/not wrapped with a version/);
    const unversioned = { ...wrapped, keyId: `${VAULT_URL}/keys/tenant-${tenantA}` };
    await expect(provider.unwrapKey(tenantA, unversioned)).rejects.toThrow(/not wrapped with a version/);
    await expect(provider.unwrapKey(tenantA, { ...wrapped, provider: 'local' })).rejects.toThrow(
      /"local" key provider/,
    );
    expect(vault.calls.unwrapKey).toEqual([]);
  });

  it('says which tenant key is missing when it cannot be created, and tries again on the next wrap', async () => {
    const vault = new FakeVault();
    const forbidden = Object.assign(new Error('Forbidden'), { statusCode: 403 });
    const createRsaKey = vault.keyClient.createRsaKey;
    vault.keyClient.createRsaKey = () => Promise.reject(forbidden);
    const provider = vault.provider();
    const tenantId = randomUUID();

    const failure = provider.wrapKey(tenantId, randomBytes(32));
    await expect(failure).rejects.toThrow(
      `Tenant key tenant-${tenantId} does not exist and could not be created.`,
    );
    await expect(failure.catch((e: Error) => e.cause)).resolves.toBe(forbidden);

    vault.keyClient.createRsaKey = createRsaKey;
    await expect(provider.wrapKey(tenantId, randomBytes(32))).resolves.toMatchObject({
      provider: 'keyvault',
    });
  });
  it('destroys the tenant key, every version: old wraps no longer open, and a second destroy finds none', async () => {
    const vault = new FakeVault();
    const provider = vault.provider();
    const tenantId = randomUUID();
    const key = randomBytes(32);
    const wrapped = await provider.wrapKey(tenantId, key);
    vault.addVersion(`tenant-${tenantId}`);

    await expect(provider.destroyTenantKey(tenantId)).resolves.toBe(true);
    expect(vault.calls.beginDeleteKey).toEqual([`tenant-${tenantId}`]);
    expect(vault.keys.has(`tenant-${tenantId}`)).toBe(false);
    await expect(provider.unwrapKey(tenantId, wrapped)).rejects.toMatchObject({ statusCode: 404 });
    await expect(provider.destroyTenantKey(tenantId)).resolves.toBe(false);
    // A wrap afterwards does not reach for the destroyed key: it makes a new, unrelated one.
    const after = await provider.wrapKey(tenantId, key);
    expect(after.keyId).not.toBe(wrapped.keyId);
  });

  it('says which tenant key could not be deleted when the vault refuses', async () => {
    const vault = new FakeVault();
    const forbidden = Object.assign(new Error('Forbidden'), { statusCode: 403 });
    vault.keyClient.beginDeleteKey = () => Promise.reject(forbidden);
    const tenantId = randomUUID();
    const failure = vault.provider().destroyTenantKey(tenantId);
    await expect(failure).rejects.toThrow(`Tenant key tenant-${tenantId} could not be deleted.`);
    await expect(failure.catch((e: Error) => e.cause)).resolves.toBe(forbidden);
  });
});
