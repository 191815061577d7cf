// Tokens an attacker can craft without the signing key (unsigned, HMAC-signed with the public key, tampered
// with, signed by a key of their own), and ones the trusted key signs with claims the minting helper always
// sets left out (no `exp`), for the tests that prove each one is refused.
import { createPublicKey, randomUUID } from 'node:crypto';

import {
  base64url,
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';

import { DEV_AUDIENCE, DEV_ISSUER_TEMPLATE, type DevSigningKey } from '../../local/devTokens';
import { issuerFor } from '../../shared/auth/tokenVerifier';

/** The claims a valid access token of the tenant would carry (as local/devTokens mints them), valid for 1 h. */
export function accessClaims(tenantId: string, roles: readonly string[]): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    tid: tenantId,
    oid: randomUUID(),
    roles: [...roles],
    amr: ['pwd'],
    ver: '2.0',
    iss: issuerFor(DEV_ISSUER_TEMPLATE, tenantId),
    aud: DEV_AUDIENCE,
    iat: now,
    nbf: now,
    exp: now + 3600,
  };
}

const encodeJson = (value: unknown) => base64url.encode(JSON.stringify(value));

/** `alg: none`, with an empty signature. */
export const unsignedToken = (payload: JWTPayload, header: Record<string, unknown> = {}): string =>
  `${encodeJson({ alg: 'none', typ: 'JWT', ...header })}.${encodeJson(payload)}.`;

/** The algorithm-confusion attack: HS256 with the trusted RSA public key (SPKI PEM, as JWKS publishes it) as secret. */
export async function hmacWithPublicKey(
  payload: JWTPayload,
  key: DevSigningKey,
  header: Record<string, unknown> = {},
): Promise<string> {
  const [publicJwk] = key.jwks.keys;
  if (!publicJwk) throw new Error('The signing key has no public JWK.');
  const pem = createPublicKey({ key: publicJwk as never, format: 'jwk' }).export({
    type: 'spki',
    format: 'pem',
  });
  return new SignJWT(payload)
    .setProtectedHeader({ typ: 'JWT', kid: key.kid, ...header, alg: 'HS256' })
    .sign(new TextEncoder().encode(String(pem)));
}

/** The token with its payload replaced by `change(payload)`; header and signature kept as they were. */
export function tamperedPayload(token: string, change: (payload: JWTPayload) => JWTPayload): string {
  const [header, payload, signature] = token.split('.');
  if (header === undefined || payload === undefined || signature === undefined) {
    throw new Error('Not a compact JWS.');
  }
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as JWTPayload;
  return `${header}.${encodeJson(change(claims))}.${signature}`;
}

let stranger: Promise<{ privateKey: CryptoKey; jwk: JWK }> | undefined;
/** One key pair of the attacker's for the whole run: RSA key generation is slow. */
const strangerKey = () =>
  (stranger ??= (async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    return { privateKey, jwk: await exportJWK(publicKey) };
  })());

/**
 * RS256 with a key pair of the attacker's own: under the trusted `kid` (a forged signature), or, with
 * `embedKey`, carrying its public key in the `jwk` header for a verifier naive enough to use it.
 */
export async function signedByStranger(
  payload: JWTPayload,
  options: { kid?: string; embedKey?: boolean } = {},
): Promise<string> {
  const { privateKey, jwk } = await strangerKey();
  return new SignJWT(payload)
    .setProtectedHeader({
      alg: 'RS256',
      typ: 'JWT',
      ...(options.kid ? { kid: options.kid } : {}),
      ...(options.embedKey ? { jwk } : {}),
    })
    .sign(privateKey);
}

/** Signed with the trusted key itself, whatever the payload holds (claims the minting helper always sets). */
export async function signedWithTrustedKey(payload: JWTPayload, key: DevSigningKey): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
    .sign(await importJWK(key.privateJwk, 'RS256'));
}
