// `npm run token -- --tenant <tid> --roles Privacy.Admin`: prints a bearer token signed by the development key
// under .local/, with the audience and issuer of the local settings, so the local host accepts it.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { z } from 'zod';

import { ROLES } from '../shared/auth/principal';
import {
  DEV_AUDIENCE,
  DEV_ISSUER_TEMPLATE,
  devKeyPaths,
  loadOrCreateDevKey,
  mintToken,
  type TokenClaims,
} from './devTokens';
import { loadLocalSettings, repoRoot } from './settings';

export const USAGE = `Usage: npm run token -- --tenant <tenant-guid> [options]

Prints a development bearer token for the local host on stdout.

  --tenant <guid>        tenant id (tid claim); required
  --roles <a,b>          app roles, e.g. Privacy.Admin,Privacy.Reader (${ROLES.join(', ')}); default none
  --oid <id>             caller object id; default a stable id derived from the tenant and --upn
  --upn <upn>            preferred_username claim
  --amr <a,b>            authentication methods, e.g. mfa,pwd; default pwd
  --acrs <a,b>           Conditional Access authentication contexts, e.g. c1 (operators' privileged
                         workstation, OPERATOR_AUTH_CONTEXT); default none
  --expires <seconds>    lifetime; default 3600 (--expires=-60 gives an expired token)
  -h, --help             this text`;

export class UsageError extends Error {}

const ARGUMENTS = {
  tenant: { type: 'string' },
  roles: { type: 'string' },
  oid: { type: 'string' },
  upn: { type: 'string' },
  amr: { type: 'string' },
  acrs: { type: 'string' },
  expires: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/** The claims asked for on the command line; undefined when help was asked for. */
export function parseTokenArguments(args: readonly string[]): TokenClaims | undefined {
  const values = parseOptions(args);
  if (values.help) return undefined;
  const tenantId = values.tenant?.trim().toLowerCase();
  // The same rule as the token verifier's tid check, so a token it prints is never refused for its tenant.
  if (!tenantId || !z.uuid().safeParse(tenantId).success) {
    throw new UsageError(
      '--tenant must be the tenant id, a GUID such as c0ffee00-0000-4000-8000-000000000001.',
    );
  }
  let expiresInSeconds: number | undefined;
  if (values.expires !== undefined) {
    if (!/^-?\d+$/.test(values.expires.trim()))
      throw new UsageError('--expires must be a whole number of seconds.');
    expiresInSeconds = Number(values.expires);
  }
  const upn = values.upn?.trim() || undefined;
  return {
    tenantId,
    roles: list(values.roles),
    // A stable default lets separate tokens of one user (say, for admin-contacts/me) name the same caller.
    objectId: values.oid?.trim() || stableObjectId(tenantId, upn),
    ...(upn ? { upn } : {}),
    ...(values.amr !== undefined ? { amr: list(values.amr) } : {}),
    ...(values.acrs !== undefined ? { acrs: list(values.acrs) } : {}),
    ...(expiresInSeconds !== undefined ? { expiresInSeconds } : {}),
  };
}

function parseOptions(args: readonly string[]) {
  try {
    return parseArgs({ args: [...args], options: ARGUMENTS, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function stableObjectId(tenantId: string, upn: string | undefined): string {
  const hex = createHash('sha256')
    .update(`${tenantId}/${upn ?? 'local-developer'}`)
    .digest('hex');
  // Shaped as a version 4 GUID, like the object ids Entra ID issues.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export async function main(args: readonly string[] = process.argv.slice(2)): Promise<number> {
  let claims: TokenClaims | undefined;
  try {
    claims = parseTokenArguments(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (!claims) {
    process.stderr.write(`${USAGE}\n`);
    return 0;
  }

  const root = repoRoot();
  loadLocalSettings(root);
  const folder = join(root, '.local');
  const { key, jwksPath } = await loadOrCreateDevKey(folder);
  const trusted = process.env.AUTH_JWKS_URI ? undefined : process.env.AUTH_JWKS_FILE;
  if (trusted !== devKeyPaths(folder).jwks) {
    process.stderr.write(
      `Warning: the local settings verify tokens with ${process.env.AUTH_JWKS_URI ?? trusted ?? 'no key set'}, ` +
        `not with ${jwksPath}; the local host will refuse this token.\n`,
    );
  }
  for (const role of claims.roles ?? []) {
    if (!(ROLES as readonly string[]).includes(role))
      process.stderr.write(`Warning: ${role} is not an app role.\n`);
  }
  const token = await mintToken(key, {
    ...claims,
    audience: process.env.AUTH_AUDIENCE || DEV_AUDIENCE,
    issuerTemplate: process.env.AUTH_ISSUER_TEMPLATE || DEV_ISSUER_TEMPLATE,
  });
  process.stdout.write(`${token}\n`);
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
