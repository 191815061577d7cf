import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createKeyProvider } from '../../../shared/crypto/keyProviders';
import { KeyVaultKeyProvider } from '../../../shared/crypto/keyVaultKeyProvider';
import { LocalFileKeyProvider } from '../../../shared/crypto/localKeyProvider';

describe('createKeyProvider', () => {
  it('builds the provider the configuration names', () => {
    const local = createKeyProvider({ kind: 'local', folder: mkdtempSync(join(tmpdir(), 'tenant-keys-')) });
    expect(local).toBeInstanceOf(LocalFileKeyProvider);
    expect(local.name).toBe('local');
    const vault = createKeyProvider({ kind: 'keyvault', vaultUrl: 'https://privacy-kv.vault.azure.net' });
    expect(vault).toBeInstanceOf(KeyVaultKeyProvider);
    expect(vault.name).toBe('keyvault');
  });
});
