// Tenant keys in local files, for development and tests: one random 32-byte key per tenant in
// `<folder>/<tenantId>.key`. Losing a file makes everything wrapped with it unreadable.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { KeyProvider, WrappedKey } from './keyProvider';
import { open, seal } from './sealedBox';

const TENANT_KEY_BYTES = 32;
const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

export class LocalFileKeyProvider implements KeyProvider {
  readonly name = 'local';
  private readonly tenantKeys = new Map<string, Promise<Buffer>>();

  constructor(private readonly folder: string) {}

  async wrapKey(tenantId: string, key: Buffer): Promise<WrappedKey> {
    const tenantKey = await this.tenantKey(tenantId);
    // The tenant id as aad: a wrapped key copied to another tenant does not open there, even with its key.
    return { provider: this.name, keyId: keyIdOf(tenantId), value: seal(tenantKey, key, tenantId) };
  }

  async unwrapKey(tenantId: string, wrapped: WrappedKey): Promise<Buffer> {
    if (wrapped.provider !== this.name) {
      throw new Error(`A key wrapped by the "${wrapped.provider}" key provider cannot be unwrapped locally.`);
    }
    if (wrapped.keyId !== keyIdOf(tenantId)) {
      throw new Error(`The key was not wrapped with the tenant key of ${tenantId}.`);
    }
    // Unwrapping never makes a key: a missing one was destroyed (or never made), and a new one would not open.
    return open(await this.tenantKey(tenantId, false), wrapped.value, tenantId);
  }

  async destroyTenantKey(tenantId: string): Promise<boolean> {
    const path = this.pathOf(tenantId);
    this.tenantKeys.delete(tenantId);
    try {
      await unlink(path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  private tenantKey(tenantId: string, create = true): Promise<Buffer> {
    const path = this.pathOf(tenantId);
    let key = this.tenantKeys.get(tenantId);
    if (!key) {
      key = create ? this.loadOrCreate(path) : this.load(path, tenantId);
      key.catch(() => this.tenantKeys.delete(tenantId));
      this.tenantKeys.set(tenantId, key);
    }
    return key;
  }

  private pathOf(tenantId: string): string {
    if (!TENANT_ID.test(tenantId)) throw new Error(`"${tenantId}" cannot name a tenant key file.`);
    return join(this.folder, keyIdOf(tenantId));
  }

  private async load(path: string, tenantId: string): Promise<Buffer> {
    try {
      return await readWhenWritten(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      throw new Error(`There is no tenant key for ${tenantId}: it was destroyed, or never made.`);
    }
  }

  /** The exclusive create decides between racing processes: the loser reads the winner's key. */
  private async loadOrCreate(path: string): Promise<Buffer> {
    await mkdir(this.folder, { recursive: true, mode: 0o700 });
    const key = randomBytes(TENANT_KEY_BYTES);
    try {
      await writeFile(path, key, { flag: 'wx', mode: 0o600 });
      return key;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    return readWhenWritten(path);
  }
}

/** A creator makes the file before it writes the key, so a short read is retried briefly. */
async function readWhenWritten(path: string): Promise<Buffer> {
  for (let attempt = 0; ; attempt++) {
    const existing = await readFile(path);
    if (existing.length === TENANT_KEY_BYTES) return existing;
    if (existing.length > TENANT_KEY_BYTES || attempt === 50) {
      throw new Error(`${path} holds ${existing.length} bytes, not a ${TENANT_KEY_BYTES}-byte tenant key.`);
    }
    await sleep(10);
  }
}

const keyIdOf = (tenantId: string): string => `${tenantId}.key`;
