// The tenant key provider the configuration names: key files in development, Azure Key Vault in Azure.
import { DefaultAzureCredential } from '@azure/identity';

import type { ServiceConfig } from '../config';
import type { KeyProvider } from './keyProvider';
import { KeyVaultKeyProvider } from './keyVaultKeyProvider';
import { LocalFileKeyProvider } from './localKeyProvider';

export function createKeyProvider(config: ServiceConfig['keys']): KeyProvider {
  return config.kind === 'local'
    ? new LocalFileKeyProvider(config.folder)
    : new KeyVaultKeyProvider(config.vaultUrl, new DefaultAzureCredential());
}
