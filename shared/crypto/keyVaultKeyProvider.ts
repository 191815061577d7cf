// Tenant keys in Azure Key Vault: one RSA 3072 key `tenant-<tenantId>` per tenant wraps that tenant's
// data keys with RSA-OAEP-256 inside the vault; the private key never leaves it.
import type { TokenCredential } from '@azure/identity';
import {
  CryptographyClient,
  KeyClient,
  type KeyOperation,
  parseKeyVaultKeyIdentifier,
} from '@azure/keyvault-keys';

import { type Clock, systemClock } from '../clock';
import type { KeyProvider, WrappedKey } from './keyProvider';

export const TENANT_KEY_SIZE = 3072;
export const WRAP_ALGORITHM = 'RSA-OAEP-256';
const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,100}$/;

/** What the provider needs of a `KeyClient`; unit tests give a fake. */
export interface TenantKeyClient {
  getKey(name: string): Promise<{ id?: string }>;
  createRsaKey(name: string, options: { keySize: number; keyOps: KeyOperation[] }): Promise<{ id?: string }>;
  /** Deletes every version of the key (soft delete); resolves once the vault has done it. */
  beginDeleteKey(name: string): Promise<{ pollUntilDone(): Promise<unknown> }>;
}

/** What the provider needs of a `CryptographyClient` bound to one key version. */
export interface TenantKeyCryptography {
  wrapKey(algorithm: typeof WRAP_ALGORITHM, key: Uint8Array): Promise<{ result: Uint8Array }>;
  unwrapKey(algorithm: typeof WRAP_ALGORITHM, encryptedKey: Uint8Array): Promise<{ result: Uint8Array }>;
}

export interface KeyVaultClientFactories {
  keys(vaultUrl: string, credential: TokenCredential): TenantKeyClient;
  /** `keyId` is a versioned key identifier (`https://<vault>/keys/<name>/<version>`). */
  cryptography(keyId: string, credential: TokenCredential): TenantKeyCryptography;
}

export interface KeyVaultKeyProviderOptions {
  clients?: Partial<KeyVaultClientFactories>;
  /**
   * How long new wraps use the key version last read from the vault (default 1 h): a rotated tenant key
   * is used for new wraps after at most this long. Unwrapping always uses the version a wrap names.
   */
  keyRefreshMs?: number;
  clock?: Clock;
}

const sdkClients: KeyVaultClientFactories = {
  keys: (vaultUrl, credential) => new KeyClient(vaultUrl, credential),
  cryptography: (keyId, credential) => new CryptographyClient(keyId, credential),
};

export class KeyVaultKeyProvider implements KeyProvider {
  readonly name = 'keyvault';
  private readonly keyClient: TenantKeyClient;
  private readonly factories: KeyVaultClientFactories;
  private readonly keyRefreshMs: number;
  private readonly clock: Clock;
  /** The current version of each tenant's key, and when it was read. */
  private readonly currentKeys = new Map<string, { keyId: Promise<string>; readAt: number }>();
  /** One CryptographyClient per key version: a tenant's current one, and older ones that old wraps name. */
  private readonly cryptography = new Map<string, TenantKeyCryptography>();

  constructor(
    private readonly vaultUrl: string,
    private readonly credential: TokenCredential,
    options: KeyVaultKeyProviderOptions = {},
  ) {
    this.factories = { ...sdkClients, ...options.clients };
    this.keyClient = this.factories.keys(vaultUrl, credential);
    this.keyRefreshMs = options.keyRefreshMs ?? 60 * 60 * 1000;
    this.clock = options.clock ?? systemClock;
  }

  async wrapKey(tenantId: string, key: Buffer): Promise<WrappedKey> {
    const keyId = await this.currentKeyId(tenantId);
    const wrapped = await this.cryptographyFor(keyId).wrapKey(WRAP_ALGORITHM, key);
    return { provider: this.name, keyId, value: Buffer.from(wrapped.result).toString('base64') };
  }

  async unwrapKey(tenantId: string, wrapped: WrappedKey): Promise<Buffer> {
    if (wrapped.provider !== this.name) {
      throw new Error(
        `A key wrapped by the "${wrapped.provider}" key provider cannot be unwrapped by Key Vault.`,
      );
    }
    // The vault would unwrap with whatever key a row names; checking the name keeps tenants apart.
    const id = parseKeyVaultKeyIdentifier(wrapped.keyId);
    if (id.name !== tenantKeyName(tenantId) || !id.version || !sameVault(id.vaultUrl, this.vaultUrl)) {
      throw new Error(
        `The key was not wrapped with a version of ${tenantKeyName(tenantId)} in ${this.vaultUrl}.`,
      );
    }
    const unwrapped = await this.cryptographyFor(wrapped.keyId).unwrapKey(
      WRAP_ALGORITHM,
      Buffer.from(wrapped.value, 'base64'),
    );
    return Buffer.from(unwrapped.result);
  }

  /**
   * Deletes the tenant key, every version. The vault keeps it soft-deleted for its retention period
   * (purge protection, infra/main.bicep: 90 days), unusable meanwhile and recoverable only by a vault
   * administrator; it cannot be purged earlier. Needs `keys/delete` (Key Vault Crypto Officer).
   */
  async destroyTenantKey(tenantId: string): Promise<boolean> {
    if (!TENANT_ID.test(tenantId)) throw new Error(`"${tenantId}" cannot name a Key Vault key.`);
    this.currentKeys.delete(tenantId);
    const name = tenantKeyName(tenantId);
    try {
      const poller = await this.keyClient.beginDeleteKey(name);
      await poller.pollUntilDone();
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw new Error(`Tenant key ${name} could not be deleted.`, { cause: error });
    }
  }

  private currentKeyId(tenantId: string): Promise<string> {
    const now = this.clock().getTime();
    const cached = this.currentKeys.get(tenantId);
    if (cached && now - cached.readAt < this.keyRefreshMs) return cached.keyId;
    const keyId = this.readOrCreateKey(tenantId);
    keyId.catch(() => this.currentKeys.delete(tenantId));
    this.currentKeys.set(tenantId, { keyId, readAt: now });
    return keyId;
  }

  /**
   * Creating adds a version even when the key exists, so two instances creating at once leave two
   * versions; that is harmless, as each wrap names the version it used.
   */
  private async readOrCreateKey(tenantId: string): Promise<string> {
    if (!TENANT_ID.test(tenantId)) throw new Error(`"${tenantId}" cannot name a Key Vault key.`);
    const name = tenantKeyName(tenantId);
    let key: { id?: string };
    try {
      key = await this.keyClient.getKey(name);
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
      try {
        key = await this.keyClient.createRsaKey(name, {
          keySize: TENANT_KEY_SIZE,
          keyOps: ['wrapKey', 'unwrapKey'],
        });
      } catch (createError) {
        // 403: the app may only use keys (Crypto User); 409: the key is soft-deleted and must be recovered.
        throw new Error(`Tenant key ${name} does not exist and could not be created.`, {
          cause: createError,
        });
      }
    }
    if (!key.id) throw new Error(`Key Vault returned ${name} without its identifier.`);
    return key.id;
  }

  private cryptographyFor(keyId: string): TenantKeyCryptography {
    let client = this.cryptography.get(keyId);
    if (!client) {
      client = this.factories.cryptography(keyId, this.credential);
      this.cryptography.set(keyId, client);
    }
    return client;
  }
}

export const tenantKeyName = (tenantId: string): string => `tenant-${tenantId}`;

const sameVault = (a: string, b: string): boolean =>
  a.replace(/\/+$/, '').toLowerCase() === b.replace(/\/+$/, '').toLowerCase();

const statusOf = (error: unknown): number | undefined =>
  (error as { statusCode?: number } | null)?.statusCode;
