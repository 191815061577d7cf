// Development tokens: an RS256 key pair kept under .local/ (never committed) whose public JWKS the local
// host trusts through AUTH_JWKS_FILE, and a minting function with the claims Entra ID would put in.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';

import { issuerFor } from '../shared/auth/tokenVerifier';

export const DEV_AUDIENCE = 'api://privacy-data-service';
export const DEV_ISSUER_TEMPLATE = 'https://login.microsoftonline.com/{tenantid}/v2.0';

export interface DevSigningKey {
  kid: string;
  privateJwk: JWK;
  jwks: { keys: JWK[] };
}

export async function createSigningKey(): Promise<DevSigningKey> {
  const kid = `dev-${randomUUID()}`;
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256' };
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return { kid, privateJwk, jwks: { keys: [publicJwk] } };
}

/** Paths of the development key files inside a folder (default `.local/`). */
export const devKeyPaths = (folder: string) => ({
  privateKey: join(folder, 'dev-signing-key.json'),
  jwks: join(folder, 'dev-jwks.json'),
});

/** Loads the development key, creating it on first use. Returns the key and the JWKS file path. */
export async function loadOrCreateDevKey(folder: string): Promise<{ key: DevSigningKey; jwksPath: string }> {
  const paths = devKeyPaths(folder);
  if (existsSync(paths.privateKey) && existsSync(paths.jwks)) {
    const key = JSON.parse(readFileSync(paths.privateKey, 'utf8')) as DevSigningKey;
    return { key, jwksPath: paths.jwks };
  }
  const key = await createSigningKey();
  mkdirSync(dirname(paths.privateKey), { recursive: true });
  writeFileSync(paths.privateKey, JSON.stringify(key, null, 2), { mode: 0o600 });
  writeFileSync(paths.jwks, JSON.stringify(key.jwks, null, 2));
  return { key, jwksPath: paths.jwks };
}

export interface TokenClaims {
  tenantId: string;
  roles?: string[];
  objectId?: string;
  upn?: string;
  amr?: string[];
  /** Conditional Access authentication contexts (`acrs`), e.g. `c1` for a privileged workstation. */
  acrs?: string[];
  audience?: string;
  issuerTemplate?: string;
  /** Seconds from now; negative for an already expired token. */
  expiresInSeconds?: number;
  notBeforeSeconds?: number;
  /** Overrides the issuer (tests of untrusted issuers). */
  issuer?: string;
  kid?: string;
}

export async function mintToken(key: DevSigningKey, claims: TokenClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const tenantId = claims.tenantId.toLowerCase();
  const privateKey = await importJWK(key.privateJwk, 'RS256');
  const jwt = new SignJWT({
    tid: tenantId,
    oid: claims.objectId ?? randomUUID(),
    roles: claims.roles ?? [],
    ...(claims.upn ? { preferred_username: claims.upn } : {}),
    amr: claims.amr ?? ['pwd'],
    ...(claims.acrs?.length ? { acrs: claims.acrs } : {}),
    ver: '2.0',
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: claims.kid ?? key.kid })
    .setIssuer(claims.issuer ?? issuerFor(claims.issuerTemplate ?? DEV_ISSUER_TEMPLATE, tenantId))
    .setAudience(claims.audience ?? DEV_AUDIENCE)
    .setIssuedAt(now)
    .setNotBefore(now + (claims.notBeforeSeconds ?? 0))
    .setExpirationTime(now + (claims.expiresInSeconds ?? 3600));
  return jwt.sign(privateKey);
}
