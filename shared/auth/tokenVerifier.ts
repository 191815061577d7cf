// Verifies bearer tokens with jose: RS256 only, keys from a JWKS (Entra ID's in Azure, a development key
// file locally), per-tenant issuer, audience, exp/nbf with bounded skew. Every failure is 401.
import { readFileSync } from 'node:fs';

import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { z } from 'zod';

import type { ServiceConfig } from '../config';
import { DomainError } from '../errors';
import type { Principal } from './principal';

const claimsSchema = z.object({
  tid: z.uuid(),
  oid: z.string().min(1).max(128),
  iss: z.string(),
  roles: z.array(z.string()).max(100).optional(),
  preferred_username: z.string().max(320).optional(),
  amr: z.array(z.string()).max(20).optional(),
  acrs: z.array(z.string().max(64)).max(50).optional(),
});

export type TokenVerifier = (authorization: string | null | undefined) => Promise<Principal>;

const unauthenticated = (message: string) =>
  new DomainError('Unauthenticated', message, [], { 'WWW-Authenticate': 'Bearer' });

export const issuerFor = (template: string, tenantId: string): string =>
  template.replaceAll('{tenantid}', tenantId);

export function createTokenVerifier(auth: ServiceConfig['auth']): TokenVerifier {
  const keys: JWTVerifyGetKey =
    auth.jwks.kind === 'uri'
      ? createRemoteJWKSet(new URL(auth.jwks.uri))
      : createLocalJWKSet(
          JSON.parse(readFileSync(auth.jwks.path, 'utf8')) as Parameters<typeof createLocalJWKSet>[0],
        );

  return async (authorization) => {
    const match = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(authorization?.trim() ?? '');
    if (!match?.[1]) throw unauthenticated('A bearer token is required.');
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(match[1], keys, {
        algorithms: ['RS256'],
        audience: auth.audience,
        clockTolerance: auth.clockSkewSeconds,
        requiredClaims: ['exp', 'tid', 'oid', 'iss'],
      }));
    } catch (error) {
      throw unauthenticated(describeJoseError(error));
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) throw unauthenticated('The token lacks a valid tid or oid claim.');
    const c = claims.data;
    if (c.iss !== issuerFor(auth.issuerTemplate, c.tid))
      throw unauthenticated('The token issuer is not trusted.');
    return {
      tenantId: c.tid.toLowerCase(),
      objectId: c.oid,
      roles: new Set(c.roles ?? []),
      upn: c.preferred_username,
      amr: c.amr ?? [],
      acrs: c.acrs ?? [],
    };
  };
}

function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'The token has expired.';
  if (error instanceof joseErrors.JWTClaimValidationFailed)
    return `The token's ${error.claim} claim is not valid.`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'The token algorithm is not allowed.';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'The token signing key is unknown.';
  return 'The token is not valid.';
}
