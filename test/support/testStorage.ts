// Storage for integration tests: the Azurite that globalSetup started, and tenant scopes on it.
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadConfig, type ServiceConfig } from '../../shared/config';
import { localKeyFolder } from '../../shared/crypto/keyProviders';
import { LocalFileKeyProvider } from '../../shared/crypto/localKeyProvider';
import type { Geography } from '../../shared/vocabulary/geographies';
import type { TenantDirectory, TenantScope } from '../../shared/residency/tenantDirectory';
import type { StorageClientOptions } from '../../shared/storage/storageAccount';
import { StorageAccounts } from '../../shared/storage/storageAccounts';

/** Tenant key files of the whole test run: shared, like the Azurite whose rows they unwrap. */
export const TEST_KEY_FOLDER = join(tmpdir(), 'privacy-test-keys');

/**
 * Service configuration on the test Azurite; auth settings are placeholders unless given, tenant keys
 * are local files in TEST_KEY_FOLDER unless KEY_FILE_FOLDER is given, and RESIDENCY_FENCE_SECONDS is 0
 * unless given.
 */
export function testConfig(
  overrides: Record<string, string> = {},
  omit: readonly string[] = [],
): ServiceConfig {
  const env: Record<string, string> = {
    AUTH_AUDIENCE: 'api://privacy-data-service',
    AUTH_ISSUER_TEMPLATE: 'https://login.microsoftonline.com/{tenantid}/v2.0',
    ...(overrides.AUTH_JWKS_FILE
      ? {}
      : { AUTH_JWKS_URI: 'https://login.microsoftonline.com/common/discovery/v2.0/keys' }),
    KEY_FILE_FOLDER: TEST_KEY_FOLDER,
    // No fence bound unless a test sets one: nothing cached, and passive deletion does not wait 2 x 15 s.
    RESIDENCY_FENCE_SECONDS: '0',
    ...pickStorageSettings(process.env),
    ...overrides,
  };
  for (const name of omit) delete env[name];
  return loadConfig(env);
}

function pickStorageSettings(env: NodeJS.ProcessEnv): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith('STORAGE_') && value) settings[name] = value;
  }
  if (!settings.STORAGE_GLOBAL)
    throw new Error('The test Azurite is not running (see test/support/globalSetup.ts).');
  return settings;
}

export function testStorage(options?: StorageClientOptions): StorageAccounts {
  return new StorageAccounts(testConfig().storage, options);
}

/** A scope for a fresh tenant in a geography, without a directory entry (for repository tests). */
export function testTenantScope(
  storage: StorageAccounts = testStorage(),
  geography: Geography = 'EU',
  tenantId: string = randomUUID(),
): TenantScope {
  return {
    tenantId,
    geography,
    account: storage.geography(geography),
    keys: new LocalFileKeyProvider(localKeyFolder(TEST_KEY_FOLDER, geography)),
    entry: {
      tenantId,
      countryCode: 'DE',
      displayName: 'Test tenant',
      geography,
      status: 'active',
      provisionedAt: new Date().toISOString(),
    },
  };
}

/** A fresh tenant provisioned in the directory of `services` (country DE unless given), as its scope. */
export async function provisionedTenant(
  services: { directory: TenantDirectory },
  countryCode = 'DE',
): Promise<TenantScope> {
  const { entry } = await services.directory.provision({
    tenantId: randomUUID(),
    countryCode,
    displayName: 'T',
  });
  return services.directory.scopeOf(entry);
}
