// The token of a package download link: a compact JWS (HS256) naming one package of one request for 15
// minutes, signed with a key derived from the tenant's pseudonymisation key, so no secret is stored for it.
import { hkdfSync } from 'node:crypto';

import { decodeJwt, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';

import { subjectRows } from '../records/recordKeys';
import { REQUEST_ID_PATTERN } from './requestRepository';

export const LINK_PURPOSE = 'package-download';
export const LINK_TOKEN_TYPE = 'pkg-link+jwt';
/** The most a link is honoured after its `exp`, for clocks that differ between instances. */
export const LINK_CLOCK_TOLERANCE_SECONDS = 30;
const LINK_KEY_INFO = 'package-download-link';

/**
 * What made a package, and what its link's audit events name as their target: a data subject request, or
 * an alert data request (SPEC §9). Links of data subject requests carry no claim for it.
 */
export const PACKAGE_SOURCES = ['dataSubjectRequest', 'alertDataRequest'] as const;
export type PackageSourceType = (typeof PACKAGE_SOURCES)[number];

export interface PackageLinkClaims {
  tenantId: string;
  requestId: string;
  /** The kind of request `requestId` is; absent: a data subject request. */
  source?: PackageSourceType;
  /** The subject whose data key wraps the package key, when the link was issued. */
  subjectKey: string;
  packageRow: string;
  /** Names the link in the audit log (`export.linkIssued`, `export.downloaded`). */
  linkId: string;
  expiresAt: Date;
}

const claimsSchema = z.object({
  tid: z.uuid(),
  rid: z.string().regex(REQUEST_ID_PATTERN),
  sub: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
  pkg: z.string().max(256),
  jti: z.string().min(1).max(64),
  exp: z.number().int(),
  purpose: z.literal(LINK_PURPOSE),
  src: z.enum(PACKAGE_SOURCES).optional(),
});

/**
 * The tenant's link signing key: HKDF-SHA256 of its pseudonymisation key. The info string keeps it apart
 * from every other use of that key; erasing the tenant's keys invalidates its links too.
 */
export function linkSigningKey(pseudonymKey: Buffer): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', pseudonymKey, Buffer.alloc(0), LINK_KEY_INFO, 32));
}

export function signPackageLink(claims: PackageLinkClaims, key: Uint8Array): Promise<string> {
  return new SignJWT({
    tid: claims.tenantId,
    rid: claims.requestId,
    pkg: claims.packageRow,
    purpose: LINK_PURPOSE,
    ...(claims.source && claims.source !== 'dataSubjectRequest' ? { src: claims.source } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: LINK_TOKEN_TYPE })
    .setSubject(claims.subjectKey)
    .setJti(claims.linkId)
    .setExpirationTime(Math.floor(claims.expiresAt.getTime() / 1000))
    .sign(key);
}

/**
 * The tenant a token says it belongs to, read without verifying anything (the signing key is the tenant's,
 * so it is needed first); undefined unless the token is a JWS whose `tid` is a UUID.
 */
export function claimedTenant(token: string): string | undefined {
  try {
    return z.uuid().safeParse(decodeJwt(token).tid).data;
  } catch {
    return undefined;
  }
}

/**
 * The claims of a download link signed with `key`, of type pkg-link+jwt, for this purpose, not expired at
 * `now` (30 s of tolerance); undefined for any other token, without saying which check failed.
 */
export async function verifyPackageLink(
  token: string,
  key: Uint8Array,
  now: Date,
): Promise<PackageLinkClaims | undefined> {
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: ['HS256'],
      typ: LINK_TOKEN_TYPE,
      currentDate: now,
      clockTolerance: LINK_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['exp', 'jti', 'sub'],
    }));
  } catch {
    return undefined;
  }
  const parsed = claimsSchema.safeParse(payload);
  if (!parsed.success) return undefined;
  const claims = parsed.data;
  // The package must be one of the request's: a link never serves another request's package by its name.
  if (!claims.pkg.startsWith(subjectRows.package(claims.rid, ''))) return undefined;
  return {
    tenantId: claims.tid,
    requestId: claims.rid,
    ...(claims.src ? { source: claims.src } : {}),
    subjectKey: claims.sub,
    packageRow: claims.pkg,
    linkId: claims.jti,
    expiresAt: new Date(claims.exp * 1000),
  };
}
