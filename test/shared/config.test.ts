import { resolve } from 'node:path';

import { ConfigurationError, loadConfig } from '../../shared/config';

const valid = {
  AUTH_AUDIENCE: 'api://privacy',
  AUTH_ISSUER_TEMPLATE: 'https://login.microsoftonline.com/{tenantid}/v2.0',
  AUTH_JWKS_URI: 'https://login.microsoftonline.com/common/discovery/v2.0/keys',
  STORAGE_GLOBAL: 'UseDevelopmentStorage=true',
  STORAGE_EU: 'UseDevelopmentStorage=true',
};

const problemsOf = (env: Record<string, string | undefined>): string[] => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigurationError) return error.problems;
    throw error;
  }
  return [];
};

describe('loadConfig', () => {
  it('decodes a complete configuration; a geography is open when it has an account', () => {
    const config = loadConfig({ ...valid, STORAGE_NA__accountName: 'privacyna' });
    expect(Object.keys(config.storage.geographies).sort()).toEqual(['EU', 'NA']);
    expect(config.storage.geographies.NA).toEqual({
      kind: 'identity',
      accountName: 'privacyna',
      endpointSuffix: 'core.windows.net',
    });
    expect(config.auth.clockSkewSeconds).toBe(300);
    expect(config.auth.jwks).toEqual({ kind: 'uri', uri: valid.AUTH_JWKS_URI });
  });

  it('names every missing setting at once', () => {
    const problems = problemsOf({});
    expect(problems.join('\n')).toMatch(/AUTH_AUDIENCE: is required/);
    expect(problems.join('\n')).toMatch(/AUTH_ISSUER_TEMPLATE: is required/);
    expect(problems.join('\n')).toMatch(/STORAGE_GLOBAL: is required/);
    expect(problems.join('\n')).toMatch(/STORAGE_<GEOGRAPHY>/);
  });

  it('names a malformed setting', () => {
    expect(problemsOf({ ...valid, AUTH_CLOCK_SKEW_SECONDS: '900' })).toEqual([
      expect.stringMatching(/^AUTH_CLOCK_SKEW_SECONDS: /),
    ]);
    expect(problemsOf({ ...valid, AUTH_ISSUER_TEMPLATE: 'https://issuer' })).toEqual([
      'AUTH_ISSUER_TEMPLATE: must contain the placeholder {tenantid}',
    ]);
    expect(problemsOf({ ...valid, AUTH_JWKS_URI: undefined })).toEqual([
      'AUTH_JWKS_URI or AUTH_JWKS_FILE: one is required',
    ]);
  });

  it('keeps tenant keys in local files by default, in a folder resolved against the current directory', () => {
    expect(loadConfig(valid).keys).toEqual({ kind: 'local', folder: resolve('.local/tenant-keys') });
    expect(loadConfig({ ...valid, KEY_PROVIDER: 'local', KEY_FILE_FOLDER: 'keys' }).keys).toEqual({
      kind: 'local',
      folder: resolve('keys'),
    });
    expect(loadConfig({ ...valid, KEY_FILE_FOLDER: '/var/keys' }).keys).toEqual({
      kind: 'local',
      folder: '/var/keys',
    });
  });

  it('uses one Key Vault per open geography when KEY_PROVIDER is keyvault, each an https URL', () => {
    const eu = 'https://privacy-kv-eu.vault.azure.net/';
    const na = 'https://privacy-kv-na.vault.azure.net/';
    const env = { ...valid, STORAGE_NA: 'UseDevelopmentStorage=true', KEY_PROVIDER: 'keyvault' };
    expect(loadConfig({ ...env, KEY_VAULT_URL_EU: eu, KEY_VAULT_URL_NA: na }).keys).toEqual({
      kind: 'keyvault',
      vaultUrls: { EU: eu, NA: na },
    });
    // A vault for a geography without a storage account is not used: no tenant can live there.
    expect(
      loadConfig({ ...env, KEY_VAULT_URL_EU: eu, KEY_VAULT_URL_NA: na, KEY_VAULT_URL_CH: eu }).keys,
    ).toEqual({ kind: 'keyvault', vaultUrls: { EU: eu, NA: na } });
    expect(problemsOf({ ...env, KEY_VAULT_URL_EU: eu })).toEqual([
      'KEY_VAULT_URL_NA: is required when KEY_PROVIDER is keyvault and STORAGE_NA is set',
    ]);
    expect(
      problemsOf({ ...env, KEY_VAULT_URL_EU: eu, KEY_VAULT_URL_NA: 'http://kv.vault.azure.net' }),
    ).toEqual(['KEY_VAULT_URL_NA: must be an https URL']);
    expect(problemsOf({ ...valid, KEY_PROVIDER: 'hsm' })).toEqual([expect.stringMatching(/^KEY_PROVIDER: /)]);
  });

  it("refuses the single KEY_VAULT_URL of old: one vault would hold every geography's keys", () => {
    expect(problemsOf({ ...valid, KEY_VAULT_URL: 'https://privacy-kv.vault.azure.net/' })).toEqual([
      expect.stringMatching(/^KEY_VAULT_URL: is no longer read/),
    ]);
  });

  it('names a missing geography vault together with the other problems', () => {
    const problems = problemsOf({ KEY_PROVIDER: 'keyvault', STORAGE_EU: 'UseDevelopmentStorage=true' }).join(
      '\n',
    );
    expect(problems).toMatch(/AUTH_AUDIENCE: is required/);
    expect(problems).toMatch(/STORAGE_GLOBAL: is required/);
    expect(problems).toMatch(/KEY_VAULT_URL_EU: is required when KEY_PROVIDER is keyvault/);
  });

  it('takes PUBLIC_BASE_URL as the address of download links, when set, and only as an http(s) URL', () => {
    expect(loadConfig(valid)).not.toHaveProperty('publicBaseUrl');
    expect(loadConfig({ ...valid, PUBLIC_BASE_URL: 'https://privacy.contoso.com/' }).publicBaseUrl).toBe(
      'https://privacy.contoso.com',
    );
    expect(problemsOf({ ...valid, PUBLIC_BASE_URL: 'ftp://privacy.contoso.com' })).toEqual([
      expect.stringMatching(/^PUBLIC_BASE_URL: /),
    ]);
  });
});
