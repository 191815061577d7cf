import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createKeyProviders, localKeyFolder } from '../../../shared/crypto/keyProviders';
import { KeyVaultKeyProvider } from '../../../shared/crypto/keyVaultKeyProvider';
import { LocalFileKeyProvider } from '../../../shared/crypto/localKeyProvider';

describe('createKeyProviders', () => {
  it('builds one local provider per geography, each with its own key folder', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'tenant-keys-'));
    const keys = createKeyProviders({ kind: 'local', folder });
    const eu = keys.forGeography('EU');
    expect(eu).toBeInstanceOf(LocalFileKeyProvider);
    expect(keys.forGeography('EU')).toBe(eu);
    const tenantId = 'c0ffee00-0000-4000-8000-00000000000a';
    const wrapped = await eu.wrapKey(tenantId, Buffer.alloc(32, 7));
    // The same tenant's key in another geography is another key: what EU wrapped does not open in CH.
    await expect(keys.forGeography('CH').unwrapKey(tenantId, wrapped)).rejects.toThrow();
    expect(await eu.unwrapKey(tenantId, wrapped)).toEqual(Buffer.alloc(32, 7));
    expect(localKeyFolder(folder, 'APAC')).toBe(join(folder, 'apac'));
  });

  it("builds a Key Vault provider per geography from that geography's vault only", () => {
    const keys = createKeyProviders({
      kind: 'keyvault',
      vaultUrls: { EU: 'https://kv-eu.vault.azure.net', CH: 'https://kv-ch.vault.azure.net' },
    });
    expect(keys.forGeography('EU')).toBeInstanceOf(KeyVaultKeyProvider);
    expect(keys.forGeography('EU').name).toBe('keyvault');
    expect(keys.forGeography('CH')).not.toBe(keys.forGeography('EU'));
    expect(() => keys.forGeography('NA')).toThrow('No Key Vault is configured for geography NA.');
  });
});
