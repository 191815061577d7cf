// The tenant key providers the configuration names, one per geography (SPEC §8: a tenant's keys live in its
// geography): key folders in development, one Azure Key Vault per geography in Azure.
import { join } from 'node:path';

import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';

import type { ServiceConfig } from '../config';
import type { Geography } from '../vocabulary/geographies';
import type { KeyProvider } from './keyProvider';
import { KeyVaultKeyProvider } from './keyVaultKeyProvider';
import { LocalFileKeyProvider } from './localKeyProvider';

/** Each geography's tenant key provider: the keys of a tenant are only ever wrapped in its own geography. */
export interface GeographyKeys {
  forGeography(geography: Geography): KeyProvider;
}

/** The folder of a geography's local tenant keys, under the configured folder. */
export const localKeyFolder = (folder: string, geography: Geography): string =>
  join(folder, geography.toLowerCase());

export function createKeyProviders(config: ServiceConfig['keys']): GeographyKeys {
  const providers = new Map<Geography, KeyProvider>();
  let credential: TokenCredential | undefined;
  const create = (geography: Geography): KeyProvider => {
    if (config.kind === 'local') return new LocalFileKeyProvider(localKeyFolder(config.folder, geography));
    const vaultUrl = config.vaultUrls[geography];
    if (!vaultUrl) throw new Error(`No Key Vault is configured for geography ${geography}.`);
    return new KeyVaultKeyProvider(vaultUrl, (credential ??= new DefaultAzureCredential()));
  };
  return {
    forGeography(geography) {
      let provider = providers.get(geography);
      if (!provider) {
        provider = create(geography);
        providers.set(geography, provider);
      }
      return provider;
    },
  };
}
