// Service configuration: every setting is decoded once, at start-up, by one zod schema. A missing or
// malformed setting stops start-up with a message naming it.
import { resolve } from 'node:path';

import { z } from 'zod';

import { GEOGRAPHIES, type Geography } from './vocabulary/geographies';

/** Where one storage account is: a connection string, or (in Azure) an account name used with managed identity. */
export type StorageAccountSetting =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; accountName: string; endpointSuffix: string };

export interface ServiceConfig {
  storage: { global: StorageAccountSetting; geographies: Partial<Record<Geography, StorageAccountSetting>> };
  auth: {
    audience: string;
    issuerTemplate: string;
    jwks: { kind: 'uri'; uri: string } | { kind: 'file'; path: string };
    clockSkewSeconds: number;
  };
  /**
   * Where the tenant keys that wrap every data key are (SPEC §4, §8): local files (one folder per geography
   * under `folder`), or in Azure one Key Vault per open geography, in that geography.
   */
  keys:
    { kind: 'local'; folder: string } | { kind: 'keyvault'; vaultUrls: Partial<Record<Geography, string>> };
  /**
   * Operators (SPEC §9): only users of the service provider's own Entra tenant can be operators (a customer's
   * admin can assign app roles in their own tenant, so a role alone proves nothing), and only from a
   * workstation whose sign-in satisfied the authentication context. Without a tenant, no one is an operator.
   */
  operators: {
    tenantId?: string;
    authContext: string;
    /** Where the operations staff who may hold grants work (the processing register names them). */
    staffLocations: readonly string[];
  };
  /** Residency moves (SPEC §8). */
  residency: {
    /** How stale a directory entry may be when the write fence checks a write against it. */
    fenceSeconds: number;
    /** What a write refused during a move waits before it is retried (HTTP Retry-After, queue delay). */
    retryAfterSeconds: number;
  };
  /** The app's public origin for download links, when it is reached through a gateway (otherwise the request's). */
  publicBaseUrl?: string;
}

/** The app setting prefix of each storage account; `STORAGE_EU` or `STORAGE_EU__accountName`. */
export const storageSettingName = (account: Geography | 'GLOBAL'): string => `STORAGE_${account}`;

/** The app setting of each geography's Key Vault. */
export const keyVaultSettingName = (geography: Geography): string => `KEY_VAULT_URL_${geography}`;

const httpsUrl = z.url({ protocol: /^https$/ });

const nonEmpty = z.string().trim().min(1);

const storageAccountSetting = (env: NodeJS.ProcessEnv, name: string): StorageAccountSetting | undefined => {
  const connectionString = env[name]?.trim();
  if (connectionString) return { kind: 'connectionString', connectionString };
  const accountName = env[`${name}__accountName`]?.trim();
  if (accountName) {
    return {
      kind: 'identity',
      accountName,
      endpointSuffix: env[`${name}__endpointSuffix`]?.trim() || 'core.windows.net',
    };
  }
  return undefined;
};

const envSchema = z.object({
  AUTH_AUDIENCE: nonEmpty,
  AUTH_ISSUER_TEMPLATE: nonEmpty.refine((v) => v.includes('{tenantid}'), {
    message: 'must contain the placeholder {tenantid}',
  }),
  AUTH_JWKS_URI: z.url().optional(),
  AUTH_JWKS_FILE: nonEmpty.optional(),
  AUTH_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(300),
  KEY_PROVIDER: z.enum(['local', 'keyvault']).default('local'),
  KEY_FILE_FOLDER: nonEmpty.default('.local/tenant-keys'),
  PUBLIC_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
  OPERATOR_TENANT_ID: z.uuid().optional(),
  OPERATOR_AUTH_CONTEXT: z
    .string()
    .trim()
    .regex(/^c([1-9]|[1-9][0-9])$/, 'must be an authentication context id, c1..c99')
    .default('c1'),
  OPERATOR_STAFF_LOCATIONS: z
    .string()
    .default('United States, India')
    .transform((v) =>
      v
        .split(',')
        .map((location) => location.trim())
        .filter((location) => location.length > 0),
    )
    .pipe(z.array(z.string().max(100)).max(20)),
  RESIDENCY_FENCE_SECONDS: z.coerce.number().min(0).max(300).default(15),
  RESIDENCY_RETRY_AFTER_SECONDS: z.coerce.number().int().min(1).max(3600).default(60),
});

export class ConfigurationError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigurationError';
  }
}

/** Decodes the process environment; throws ConfigurationError listing every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const problems: string[] = [];
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const setting = issue.path.join('.');
      problems.push(
        `${setting}: ${env[setting] === undefined || env[setting] === '' ? 'is required' : issue.message}`,
      );
    }
  }
  const global = storageAccountSetting(env, storageSettingName('GLOBAL'));
  if (!global)
    problems.push(`${storageSettingName('GLOBAL')}: is required (connection string, or __accountName)`);

  const geographies: Partial<Record<Geography, StorageAccountSetting>> = {};
  for (const geography of GEOGRAPHIES) {
    const setting = storageAccountSetting(env, storageSettingName(geography));
    if (setting) geographies[geography] = setting;
  }
  if (Object.keys(geographies).length === 0) {
    problems.push(
      `STORAGE_<GEOGRAPHY>: at least one geography needs a storage account (${GEOGRAPHIES.map(storageSettingName).join(', ')})`,
    );
  }
  if (parsed.success && !parsed.data.AUTH_JWKS_URI && !parsed.data.AUTH_JWKS_FILE) {
    problems.push('AUTH_JWKS_URI or AUTH_JWKS_FILE: one is required');
  }
  const vaultUrls: Partial<Record<Geography, string>> = {};
  if (env.KEY_VAULT_URL?.trim()) {
    problems.push(
      'KEY_VAULT_URL: is no longer read: each geography has its own vault (KEY_VAULT_URL_<GEOGRAPHY>)',
    );
  }
  if (env.KEY_PROVIDER === 'keyvault') {
    // Each open geography's tenant keys live in that geography's vault, never in another's (SPEC §8).
    for (const geography of Object.keys(geographies) as Geography[]) {
      const name = keyVaultSettingName(geography);
      const value = env[name]?.trim();
      if (!value)
        problems.push(
          `${name}: is required when KEY_PROVIDER is keyvault and ${storageSettingName(geography)} is set`,
        );
      else if (!httpsUrl.safeParse(value).success) problems.push(`${name}: must be an https URL`);
      else vaultUrls[geography] = value;
    }
  }
  if (problems.length > 0 || !parsed.success || !global) throw new ConfigurationError(problems);

  const e = parsed.data;
  return {
    storage: { global, geographies },
    auth: {
      audience: e.AUTH_AUDIENCE,
      issuerTemplate: e.AUTH_ISSUER_TEMPLATE,
      jwks: e.AUTH_JWKS_URI
        ? { kind: 'uri', uri: e.AUTH_JWKS_URI }
        : { kind: 'file', path: e.AUTH_JWKS_FILE! },
      clockSkewSeconds: e.AUTH_CLOCK_SKEW_SECONDS,
    },
    keys:
      e.KEY_PROVIDER === 'keyvault'
        ? { kind: 'keyvault', vaultUrls }
        : { kind: 'local', folder: resolve(e.KEY_FILE_FOLDER) },
    operators: {
      ...(e.OPERATOR_TENANT_ID ? { tenantId: e.OPERATOR_TENANT_ID.toLowerCase() } : {}),
      authContext: e.OPERATOR_AUTH_CONTEXT,
      staffLocations: e.OPERATOR_STAFF_LOCATIONS,
    },
    residency: {
      fenceSeconds: e.RESIDENCY_FENCE_SECONDS,
      retryAfterSeconds: e.RESIDENCY_RETRY_AFTER_SECONDS,
    },
    ...(e.PUBLIC_BASE_URL ? { publicBaseUrl: e.PUBLIC_BASE_URL.replace(/\/+$/, '') } : {}),
  };
}
